"""The ``/jobs`` dashboard: see and steer every job, task and workflow, live.

``aiohttp_jobs.dashboard.setup(app)`` mounts it as a sub-application of *app*
(docs/dashboard.md tells everything: pages, JSON API, live stream, actions,
security). Its templates load only when it is mounted: importing this module
loads no template library.
"""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

from .._checks import check_instance
from ._audit import AuditEntry, audit_log
from ._config import (
    ACTIONS,
    Authorize,
    FormatError,
    FormatResult,
    Identify,
    build_config,
)

__all__ = [
    "ACTIONS",
    "AuditEntry",
    "Authorize",
    "FormatError",
    "FormatResult",
    "Identify",
    "audit_log",
    "setup",
]


def setup(
    app: web.Application,
    *,
    prefix: str = "/jobs",
    authorize: Authorize | None = None,
    title: str | None = None,
    environment: str | None = None,
    trusted_origins: Collection[str] = (),
    format_error: FormatError | None = None,
    format_result: FormatResult | None = None,
    identify: Identify | None = None,
    page_size: int = 50,
    scan_limit: int = 10_000,
    bulk_limit: int = 1000,
    audit_size: int = 1000,
    max_text: int = 20_000,
) -> web.Application:
    """Mount the dashboard on *app* at *prefix*; returns the sub-application.

    Without *authorize*, only direct loopback requests get in (any request
    carrying ``Forwarded``, ``X-Forwarded-*`` or ``X-Real-IP`` is refused).
    ``authorize(request, action)`` (sync or async, returning ``True`` to allow)
    decides instead; *action* is one of :data:`ACTIONS`. A state-changing
    request must come from the same origin (or one of *trusted_origins*).

    *title* and *environment* show in every page's banner; *format_error* and
    *format_result* turn a failed job's exception or a job's result into the
    text its page shows (to redact or format it), cut at *max_text*
    characters; *identify* names the user in the audit log. *page_size* jobs
    per page; a filter or search looks at no more than *scan_limit* finished
    jobs per page; a bulk cancel stops at *bulk_limit* jobs; the audit page
    keeps the last *audit_size* actions.

    Call it before the application starts, with or after
    ``aiohttp_jobs.setup(app)``.
    """
    check_instance("app", app, web.Application, "an aiohttp web.Application")
    from ._app import check_mount, mount  # the templates load only now

    prefix = check_mount(app, prefix)
    config = build_config(
        title=title,
        environment=environment,
        authorize=authorize,
        trusted_origins=trusted_origins,
        format_error=format_error,
        format_result=format_result,
        identify=identify,
        page_size=page_size,
        scan_limit=scan_limit,
        bulk_limit=bulk_limit,
        max_text=max_text,
    )
    return mount(app, prefix=prefix, config=config, audit_size=audit_size)

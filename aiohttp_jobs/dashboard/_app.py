"""Building the dashboard's sub-application: its own Jinja2 environment (under
its own ``app_key``, autoescaping), routes, static files, guard and headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from .._checks import check_count
from .._errors import ConfigError, SetupError
from ._audit import AUDIT_KEY, AuditLog
from ._chart import bars
from ._config import CONFIG_KEY, ROOT_KEY, Config
from ._data import Throughput
from ._live import BROADCASTER_KEY, Broadcaster, note_seq
from ._security import ACTION_OF_ROUTE, add_headers, guard
from ._views import JINJA_KEY, THROUGHPUT_KEY, routes

__all__ = ["mount"]

HERE = Path(__file__).parent
_MOUNTED = web.AppKey("aiohttp_jobs.dashboard.mounted", web.Application)


def _time(ts: Any) -> Markup:
    """A ``<time>``: UTC in the page and on hover; the browser shows it in its
    own time zone."""
    if not isinstance(ts, int | float) or not 0 <= ts < 253402300800:
        return Markup("\u2014")
    when = datetime.fromtimestamp(ts, UTC)
    text = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    # Every part is made here from a number: nothing to escape.
    return Markup(
        f'<time datetime="{when.isoformat(timespec="milliseconds")}" '
        f'title="{text}" data-ts="{ts:.3f}">{text}</time>'
    )


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "\u2014"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = _time
    env.filters["duration"] = _duration
    env.globals["bars"] = bars
    env.globals["escape"] = escape
    return env


def _check_prefix(prefix: object) -> str:
    if (
        not isinstance(prefix, str)
        or not prefix.startswith("/")
        or prefix.endswith("/")
        or "?" in prefix
        or "#" in prefix
        or "//" in prefix
    ):
        raise ConfigError(
            f"prefix must be a path such as '/jobs' (starting with '/', not ending "
            f"with it), got {prefix!r}"
        )
    return prefix


def check_mount(app: web.Application, prefix: object) -> str:
    """*prefix*, checked, for a dashboard not mounted on *app* yet."""
    prefix = _check_prefix(prefix)
    if _MOUNTED in app:
        raise SetupError(
            "aiohttp_jobs.dashboard.setup(app) was called twice for the same "
            "application: mount the dashboard once"
        )
    return prefix


def mount(
    app: web.Application, *, prefix: str, config: Config, audit_size: int
) -> web.Application:
    """Mount the dashboard at *prefix* (from :func:`check_mount`) with *config*
    (from ``build_config()``)."""
    audit = AuditLog(check_count("audit_size", audit_size, minimum=1))
    sub = web.Application(middlewares=[guard, note_seq])
    sub[CONFIG_KEY] = config
    sub[AUDIT_KEY] = audit
    sub[ROOT_KEY] = app
    sub[THROUGHPUT_KEY] = Throughput()
    broadcaster = sub[BROADCASTER_KEY] = Broadcaster()
    # Its own environment under its own key: the application's templates and
    # context processors (aiohttp_jinja2's default key) are not touched.
    sub[JINJA_KEY] = _environment()
    for name, method, path, handler, action in routes():
        sub.router.add_route(method, path, handler, name=name)
        if action is not None:
            ACTION_OF_ROUTE[name] = action
    sub.router.add_static("/static", HERE / "static", name="static")
    sub.on_response_prepare.append(add_headers)

    async def end_streams(_: web.Application) -> None:
        broadcaster.close()

    async def to_overview(request: web.Request) -> web.StreamResponse:
        # "<prefix>" without the slash: on to the overview, relatively.
        raise web.HTTPMovedPermanently(location="./" + prefix.rsplit("/", 1)[1] + "/")

    # Before the sub-application, which would answer "<prefix>" with a 404.
    app.router.add_get(prefix, to_overview)
    app.add_subapp(prefix, sub)
    # First of the root's shutdown hooks: open dashboards end before the
    # scheduler drains, so they never hold the shutdown up.
    app.on_shutdown.insert(0, end_streams)
    app[_MOUNTED] = sub
    app[AUDIT_KEY] = audit

    return sub

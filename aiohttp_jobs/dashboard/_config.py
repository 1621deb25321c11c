"""What ``dashboard.setup()`` keeps: the options, checked once, and the names of
the actions the ``authorize`` hook is asked about."""

from __future__ import annotations

import reprlib
import traceback
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from .._checks import check_callable, check_count, check_text
from .._core.job import Job
from .._errors import ConfigError, ConfigTypeError

__all__ = [
    "ACTIONS",
    "CONFIG_KEY",
    "ROOT_KEY",
    "WRITE_ACTIONS",
    "Authorize",
    "Config",
    "FormatError",
    "FormatResult",
    "Identify",
    "build_config",
]

#: ``authorize(request, action) -> bool`` (or an awaitable of it).
Authorize = Callable[[web.Request, str], "bool | Awaitable[bool]"]
#: ``format_error(job, exception) -> str``: the text shown for a failed job.
FormatError = Callable[[Job[object], BaseException], str]
#: ``format_result(job, result) -> str``: the text shown for a job's result.
FormatResult = Callable[[Job[object], object], str]
#: ``identify(request) -> str``: who the audit log says made a request.
Identify = Callable[[web.Request], str]

#: Actions that change something (POST only, CSRF-checked, audited).
WRITE_ACTIONS: Final = frozenset(
    {
        "cancel",
        "bulk_cancel",
        "run",
        "enable",
        "disable",
        "unschedule",
        "fire",
        "retry",
    }
)
#: Every action ``authorize`` is asked about: ``"view"`` for every page, the
#: JSON reads and the live stream, ``"metrics"`` for ``<prefix>/metrics``.
ACTIONS: Final = WRITE_ACTIONS | {"view", "metrics"}

_repr = reprlib.Repr()
_repr.maxstring = 2000
_repr.maxother = 2000
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 50
_repr.maxlevel = 4


#: Frames of the code that awaited the job: ``job.wait()`` raises the job's
#: own exception again, which adds the waiter's frames to its traceback.
_WAITER_CODES = frozenset((Job.wait.__code__, Job.result.__code__))


def default_format_error(job: Job[object], exc: BaseException) -> str:
    """The exception with the traceback of the job's own code."""
    tb = keep = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in _WAITER_CODES:
            keep = tb.tb_next
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, keep))


def default_format_result(job: Job[object], result: object) -> str:
    """A string as it is; anything else as its ``repr()``, with long
    containers and strings shortened."""
    if isinstance(result, str):
        return result
    return _repr.repr(result)


@dataclass(frozen=True, slots=True)
class Config:
    title: str
    environment: str | None
    authorize: Authorize | None
    trusted_origins: frozenset[str]
    format_error: FormatError
    format_result: FormatResult
    identify: Identify | None
    page_size: int
    scan_limit: int
    bulk_limit: int
    max_text: int


CONFIG_KEY: Final = web.AppKey("aiohttp_jobs.dashboard.config", Config)
#: The application the dashboard is mounted on (its scheduler, its metrics).
ROOT_KEY: Final = web.AppKey("aiohttp_jobs.dashboard.root", web.Application)


def _origin(value: object) -> str:
    if not isinstance(value, str):
        raise ConfigTypeError(
            f"trusted_origins must hold origin strings such as "
            f"'https://admin.example.com', got {value!r} ({type(value).__name__})"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise ConfigError(
            f"trusted_origins: {value!r} is not an origin; write scheme://host[:port]"
            ", e.g. 'https://admin.example.com'"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def build_config(
    *,
    title: str | None,
    environment: str | None,
    authorize: object,
    trusted_origins: Collection[str],
    format_error: object,
    format_result: object,
    identify: object,
    page_size: int,
    scan_limit: int,
    bulk_limit: int,
    max_text: int,
) -> Config:
    """Check every option of ``dashboard.setup()``; errors name the parameter."""
    check_text("title", title, optional=True)
    check_text("environment", environment, optional=True)
    if authorize is not None:
        check_callable("authorize", authorize)
    if format_error is not None:
        check_callable("format_error", format_error)
    if format_result is not None:
        check_callable("format_result", format_result)
    if identify is not None:
        check_callable("identify", identify)
    if isinstance(trusted_origins, str) or not isinstance(trusted_origins, Collection):
        raise ConfigTypeError(
            f"trusted_origins must be a collection of origins, got "
            f"{trusted_origins!r} ({type(trusted_origins).__name__})"
        )
    return Config(
        title=title or "aiohttp-jobs",
        environment=environment,
        authorize=authorize,  # type: ignore[arg-type]
        trusted_origins=frozenset(_origin(o) for o in trusted_origins),
        format_error=format_error or default_format_error,  # type: ignore[arg-type]
        format_result=format_result or default_format_result,  # type: ignore[arg-type]
        identify=identify,  # type: ignore[arg-type]
        page_size=check_count("page_size", page_size, minimum=1, maximum=1000),
        scan_limit=check_count("scan_limit", scan_limit, minimum=100),
        bulk_limit=check_count("bulk_limit", bulk_limit, minimum=1),
        max_text=check_count("max_text", max_text, minimum=100),
    )

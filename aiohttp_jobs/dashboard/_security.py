"""Who may see and do what: the default loopback-only guard, the ``authorize``
hook, the same-origin check for writes, and the security headers.

Without an ``authorize`` hook only requests from a loopback peer get in, and a
request carrying ``Forwarded``, ``X-Forwarded-*`` or ``X-Real-IP`` is refused
(behind a proxy on the same host every request comes from loopback, so such a
request cannot prove where it came from). Nothing is ever read from those
headers. A refused request gets the same short answer, whatever it asked for.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from ._audit import AUDIT_KEY
from ._config import CONFIG_KEY, WRITE_ACTIONS, Config

__all__ = [
    "ACTION_OF_ROUTE",
    "CSP",
    "REFUSED",
    "add_headers",
    "guard",
    "is_loopback",
    "who",
]

logger = logging.getLogger("aiohttp_jobs.dashboard")

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

#: The action of each named route that is not ``"view"``.
ACTION_OF_ROUTE: dict[str, str] = {}

_FORWARDING = ("forwarded", "x-real-ip")


def is_loopback(peer: str | None) -> bool:
    """Whether *peer* (an IP address as text) is a loopback address."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _forwarded(request: web.Request) -> bool:
    for name in request.headers:
        lower = name.lower()
        if lower in _FORWARDING or lower.startswith("x-forwarded-"):
            return True
    return False


def _peer(request: web.Request) -> str | None:
    transport = request.transport
    if transport is None:
        return None
    peername = transport.get_extra_info("peername")
    if isinstance(peername, tuple | list) and peername:
        return str(peername[0])
    return None


def who(request: web.Request) -> str:
    """Who the audit log names: ``identify(request)`` or the peer address."""
    config = request.config_dict[CONFIG_KEY]
    if config.identify is not None:
        try:
            name = config.identify(request)
        except Exception:
            logger.exception("dashboard identify() hook failed")
        else:
            if name:
                return str(name)[:200]
    return _peer(request) or "unknown"


async def _allowed(request: web.Request, config: Config, action: str) -> bool:
    if config.authorize is None:
        return is_loopback(_peer(request)) and not _forwarded(request)
    try:
        verdict = config.authorize(request, action)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except web.HTTPException:
        raise
    except Exception:
        logger.exception("dashboard authorize() hook failed: the request is refused")
        return False
    return verdict is True


def _same_origin(request: web.Request, config: Config) -> bool:
    """A state-changing request must come from the dashboard's own pages."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site == "same-origin":
            return True
        origin = request.headers.get("Origin")
        return origin is not None and origin.lower() in config.trusted_origins
    origin = request.headers.get("Origin")
    if origin is None:
        # Not a browser (browsers send Origin with every POST): curl, scripts.
        return True
    origin = origin.lower()
    if origin in config.trusted_origins:
        return True
    parts = urlsplit(origin)
    host = request.headers.get("Host", "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    return _netloc(parts.scheme, parts.netloc) == _netloc(parts.scheme, host)


def _netloc(scheme: str, netloc: str) -> str:
    default = ":443" if scheme == "https" else ":80"
    return netloc[: -len(default)] if netloc.endswith(default) else netloc


#: The one answer to every refused request: it says why a request can be
#: refused, never anything about the jobs or whether what it asked for exists.
REFUSED = (
    "403 Forbidden: this dashboard did not let the request in. Without an "
    "authorize hook it answers only requests made directly from this machine "
    "(no proxy), and changes only from its own pages.\n"
)


def _refused(status: int = 403) -> web.Response:
    if status == 403:
        return web.Response(status=403, text=REFUSED)
    return web.Response(status=status, text="405 Method Not Allowed\n")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authorize every request before anything else runs, and check the
    origin of every write; refusals of writes are audited."""
    config = request.config_dict[CONFIG_KEY]
    route = request.match_info.route
    name = route.name if route is not None else None
    action = ACTION_OF_ROUTE.get(name or "", "view")
    write = action in WRITE_ACTIONS
    if write and request.method != "POST":
        return _refused(405)
    if not await _allowed(request, config, action):
        if write:
            request.config_dict[AUDIT_KEY].record(
                who(request), action, request.path, "refused", "not authorized"
            )
        return _refused()
    if write and not _same_origin(request, config):
        request.config_dict[AUDIT_KEY].record(
            who(request), action, request.path, "refused", "cross-site request"
        )
        return _refused()
    return await handler(request)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the security headers on every response."""
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cache-Control"] = "no-store"

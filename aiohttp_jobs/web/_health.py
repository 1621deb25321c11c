"""Health checks for load balancers and orchestrators: liveness and readiness.

``setup(app, health="/health")`` adds ``GET /health/live`` and
``GET /health/ready`` to the application; with ``health_port=`` the same two
routes are also served by a listener of their own. Neither is behind the
dashboard's access rules: probes come from other hosts.

* **live**: 200 while the event loop answers (the answer itself is the proof;
  the body says how late a callback scheduled now ran).
* **ready**: 200 when the scheduler runs and is not draining and the task
  store (if the application runs tasks) answers a cheap query within
  :data:`STORE_TIMEOUT`; 503 otherwise, from the first ``on_shutdown`` hook
  on, before the drain ends.

Why a listener of its own: when aiohttp shuts down it first closes its
listening sockets and only then runs ``on_shutdown`` (where the drain runs),
so during the drain the application's port refuses new connections. The
health listener stays open until the drain has ended, answering 503, so a
load balancer that polls it sees the instance leave instead of a timeout.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from .._checks import check_count, check_name
from .._errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from ._state import WebState

__all__ = ["HEALTH_KEY", "STORE_TIMEOUT", "Health", "check_health_options"]

#: Seconds the readiness check waits for the task store's answer.
STORE_TIMEOUT: Final = 1.0

_HEADERS: Final = {"Cache-Control": "no-store"}


def check_health_options(
    health: object, health_port: object, health_host: object
) -> tuple[str | None, int | None, str]:
    """``setup()``'s health arguments, checked: a path prefix (``None``: no
    health routes), a port (``None``: none of its own; 0: any free port) and
    the host that port listens on."""
    prefix = check_name("health", health, optional=True)
    if prefix is not None and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ConfigError(
            f"health must be a path prefix such as '/health' (a leading "
            f"slash, no trailing one), got {prefix!r}"
        )
    port = None
    if health_port is not None:
        if prefix is None:
            raise ConfigError(
                f"health_port={health_port!r} needs health='/health' (the path "
                "prefix of the routes it serves)"
            )
        port = check_count("health_port", health_port, minimum=0, maximum=65535)
    if not isinstance(health_host, str) or not health_host:
        raise ConfigTypeError(
            f"health_host must be a host name or address such as '0.0.0.0', got "
            f"{health_host!r} ({type(health_host).__name__})"
        )
    return prefix, port, health_host


class Health:
    """The health routes of one application: handlers and their listener."""

    __slots__ = ("_runner", "host", "port", "prefix", "shutting_down", "state")

    def __init__(
        self, state: WebState, *, prefix: str, port: int | None, host: str
    ) -> None:
        self.state = state
        self.prefix = prefix
        self.port = port
        self.host = host
        self.shutting_down = False
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"<Health {self.prefix!r} port={self.port}>"

    def install(self, app: web.Application) -> None:
        """Add the routes to *app*; flip readiness first thing in
        ``on_shutdown``; run the listener of its own if a port was given."""
        app[HEALTH_KEY] = self
        self._add_routes(app.router)

        async def shutting_down(app: web.Application) -> None:
            self.shutting_down = True

        # First of the on_shutdown hooks: before any the user registered
        # earlier, which may take a while.
        app.on_shutdown.insert(0, shutting_down)
        if self.port is not None:
            # Started after the scheduler (cleanup contexts run first), stopped
            # in on_cleanup: after the drain has ended.
            app.on_startup.append(self._start)
            app.on_cleanup.append(self._stop)

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get(f"{self.prefix}/live", self.live)
        router.add_get(f"{self.prefix}/ready", self.ready)

    async def _start(self, app: web.Application) -> None:
        health_app = web.Application()
        self._add_routes(health_app.router)
        runner = web.AppRunner(health_app, handle_signals=False, access_log=None)
        await runner.setup()
        self._runner = runner
        # Several worker processes (gunicorn) may each serve the port.
        reuse = hasattr(socket, "SO_REUSEPORT") or None
        site = web.TCPSite(runner, self.host, self.port, reuse_port=reuse)
        await site.start()
        self.port = runner.addresses[0][1]

    async def _stop(self, app: web.Application) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- the handlers ---------------------------------------------------------------

    async def live(self, request: web.Request) -> web.Response:
        """200 while the event loop answers; the body says how late a
        callback scheduled now ran (``loop_lag_seconds``)."""
        loop = asyncio.get_running_loop()
        ran: asyncio.Future[float] = loop.create_future()
        asked = loop.time()
        loop.call_soon(_resolve, ran, loop)
        lag = await ran - asked
        return _answer(200, {"status": "ok", "loop_lag_seconds": round(lag, 6)})

    async def ready(self, request: web.Request) -> web.Response:
        """200 when the instance takes work: the scheduler runs and is not
        draining, the task store answers; 503 with the reasons otherwise."""
        state = self.state
        scheduler = state.scheduler
        reasons: list[str] = []
        body: dict[str, Any] = {}
        if scheduler is None:
            reasons.append("the application has not started")
            body["scheduler"] = {"state": "not started"}
        else:
            phase = (
                "closed"
                if scheduler.closed
                else "draining"
                if scheduler.draining
                else "running"
            )
            body["scheduler"] = {
                "state": phase,
                "active": scheduler.active_count,
                "pending": scheduler.pending_count,
                "limit": scheduler.limit,
            }
            if phase != "running":
                reasons.append(f"the scheduler is {phase}")
        if self.shutting_down or state.protected.stopping:
            reasons.append("a graceful shutdown has begun")
        body["shutting_down"] = self.shutting_down or state.protected.stopping
        runtime = state.runtime
        if runtime is not None:
            store = await _ping(runtime.store)
            body["store"] = store
            if not store["ok"]:
                reasons.append("the task store did not answer")
        if reasons:
            body = {"status": "unavailable", "reasons": reasons, **body}
            return _answer(503, body)
        return _answer(200, {"status": "ok", **body})


def _resolve(fut: asyncio.Future[float], loop: asyncio.AbstractEventLoop) -> None:
    if not fut.done():
        fut.set_result(loop.time())


async def _ping(store: Any) -> dict[str, Any]:
    """Ask the store the cheapest question it has (its next due time)."""
    began = time.perf_counter()
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            await store.next_due()
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {STORE_TIMEOUT} s"}
    except Exception as exc:  # any failure means "not reachable"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "seconds": round(time.perf_counter() - began, 6)}


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=_HEADERS,
    )


HEALTH_KEY: Final = web.AppKey("aiohttp_jobs.health", Health)
"""Where ``setup(health=...)`` keeps the application's :class:`Health`."""

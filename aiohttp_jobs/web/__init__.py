"""aiohttp integration: one scheduler per application, ``spawn``, ``shield`` and
``@atomic`` for handlers, HTTP back-pressure, and an ordered graceful shutdown
(the order and its reasons are in ``aiohttp_jobs.web._state``).

State lives under typed ``web.AppKey``s and is looked up through
``request.config_dict``, so handlers of sub-applications find the root's.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Collection, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar, Unpack

from aiohttp import web

from .._checks import check_instance
from .._core import tracing
from .._core.job import Job
from .._core.priority import Priority
from .._core.scheduler import Scheduler
from .._errors import (
    ConfigTypeError,
    NotAwaitableError,
    SchedulerClosedError,
    SchedulerFullError,
    SetupError,
)
from ._atomic import atomic
from ._health import Health, check_health_options
from ._protect import unavailable
from ._state import (
    NOT_SET_UP,
    SCHEDULER_KEY,
    STATE_KEY,
    TASKS_KEY,
    SchedulerOptions,
    WebState,
    check_retry_after,
    check_setup_options,
    state_of,
)

if TYPE_CHECKING:
    from .._core.clock import Clock
    from .._tasks.declarations import Tasks
    from .._tasks.runtime import TaskRuntime

__all__ = [
    "SCHEDULER_KEY",
    "TASKS_KEY",
    "SchedulerOptions",
    "atomic",
    "get_scheduler",
    "get_scheduler_from_app",
    "get_scheduler_from_request",
    "get_tasks",
    "setup",
    "shield",
    "spawn",
]

_T = TypeVar("_T")


def setup(
    app: web.Application,
    *,
    tasks: Tasks | None = None,
    clock: Clock | None = None,
    reject_when_full: bool = False,
    retry_after: float = 1.0,
    health: str | None = None,
    health_port: int | None = None,
    health_host: str = "0.0.0.0",
    **scheduler_options: Unpack[SchedulerOptions],
) -> None:
    """Give *app* a :class:`Scheduler` that lives as long as the application.

    The scheduler is created when the application starts and drained on
    shutdown (docs/aiohttp.md describes the order). *scheduler_options* go to
    :class:`Scheduler`; its ``wait_timeout`` bounds the graceful part of the
    shutdown and ``close_timeout`` the cancellation after it.

    *tasks* (a :class:`~aiohttp_jobs.Tasks` registry) runs its scheduled tasks
    for the life of the application; :func:`get_tasks` returns the runtime.
    With *reject_when_full*, :func:`spawn` answers ``503 Service Unavailable``
    with ``Retry-After: <retry_after>`` when the pending list is full, instead
    of making the handler wait (per call: ``spawn(..., reject_when_full=...)``).

    *health* (a path prefix such as ``"/health"``) adds the health checks
    ``GET <health>/live`` (200 while the event loop answers) and
    ``GET <health>/ready`` (200 when the scheduler runs, is not draining and the
    task store answers; 503 from the start of a graceful shutdown), with JSON
    bodies. *health_port* also serves them on a listener of their own at
    *health_host*, open until the drain has ended (aiohttp closes the
    application's own port before the drain starts); 0 picks a free port.
    """
    check_instance("app", app, web.Application, "an aiohttp web.Application")
    if STATE_KEY in app:
        raise SetupError(
            "aiohttp_jobs.setup(app) was called twice for the same application: "
            "call it once; sub-applications use the root's scheduler"
        )
    # Every option is checked now, where it was written, not at startup.
    health, health_port, health_host = check_health_options(
        health, health_port, health_host
    )
    retry_after = check_setup_options(
        tasks=tasks,
        clock=clock,
        reject_when_full=reject_when_full,
        retry_after=retry_after,
        scheduler_options=scheduler_options,
    )
    state = WebState(
        options=scheduler_options,
        tasks=tasks,
        clock=clock,
        reject_when_full=reject_when_full,
        retry_after=retry_after,
    )
    app[STATE_KEY] = state

    async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
        await state.start(app)
        try:
            yield
        finally:
            await state.shutdown()

    async def on_shutdown(app: web.Application) -> None:
        await state.shutdown()

    app.cleanup_ctx.append(scheduler_context)
    app.on_shutdown.append(on_shutdown)
    if health is not None:
        Health(state, prefix=health, port=health_port, host=health_host).install(app)


def _state(request: web.Request) -> WebState:
    try:
        state: WebState | None = request.config_dict.get(STATE_KEY)
    except AttributeError:  # not a web.Request: the slow path says what it is
        state = state_of(request)
    if state is None:
        raise SetupError(NOT_SET_UP)
    return state


def get_scheduler(request: web.Request) -> Scheduler:
    """The scheduler of the request's application (or of its root application).

    Raises :class:`SetupError` if ``setup()`` was not called.
    """
    return _state(request).require_scheduler()


def get_scheduler_from_app(app: web.Application) -> Scheduler | None:
    """The scheduler ``setup()`` gave *app* once it started, else ``None``."""
    if not isinstance(app, web.Application):
        raise ConfigTypeError(
            f"app must be an aiohttp web.Application, got {app!r} "
            f"({type(app).__name__}); from a handler, use get_scheduler(request)"
        )
    return app.get(SCHEDULER_KEY)


def get_scheduler_from_request(request: web.Request) -> Scheduler | None:
    """The scheduler for *request* (found through sub-applications), else ``None``."""
    state = state_of(request)
    return None if state is None else state.scheduler


def get_tasks(app_or_request: web.Application | web.Request) -> TaskRuntime:
    """The task runtime started by ``setup(app, tasks=...)``."""
    if isinstance(app_or_request, web.Application):
        state = app_or_request.get(STATE_KEY)
    else:
        state = state_of(app_or_request)
    if state is None:
        raise SetupError(NOT_SET_UP)
    if state.tasks is None:
        raise SetupError(
            "no task registry for this application: pass it to "
            "aiohttp_jobs.setup(app, tasks=tasks)"
        )
    runtime = state.runtime
    if runtime is None:
        raise SetupError(
            "the task runtime starts with the application: get_tasks() works "
            "once the application has started"
        )
    return runtime


async def spawn(
    request: web.Request,
    coro: Coroutine[object, object, _T],
    name: str | None = None,
    *,
    priority: Priority | int | str = Priority.NORMAL,
    tags: Collection[str] = (),
    loop: str | None = None,
    delay: float | timedelta | None = None,
    start_at: float | datetime | None = None,
    reject_when_full: bool | None = None,
    retry_after: float | None = None,
) -> Job[_T]:
    """Spawn *coro* as a job of the request's scheduler.

    *loop*, *delay* and *start_at* are those of :meth:`Scheduler.spawn`: run on
    a named isolated event loop, or start later.

    With back-pressure on (``reject_when_full``, default: ``setup()``'s), a full
    pending list or a shutting-down scheduler raises
    ``web.HTTPServiceUnavailable`` with a ``Retry-After`` header instead of
    waiting, or raising :class:`SchedulerClosedError`.
    """
    try:
        state = _state(request)
        scheduler = state.require_scheduler()
        if reject_when_full is None:
            reject_when_full = state.reject_when_full
        elif reject_when_full is not True and reject_when_full is not False:
            raise ConfigTypeError(
                f"reject_when_full must be True, False or None, got "
                f"{reject_when_full!r} ({type(reject_when_full).__name__})"
            )
        if retry_after is not None:
            retry_after = check_retry_after(retry_after)
    except BaseException:
        if asyncio.iscoroutine(coro):
            coro.close()  # never started: no "coroutine was never awaited"
        raise
    inner = coro
    if tracing.active():  # a span, when the application uses OpenTelemetry
        origin = f"{request.method} {request.path}"
        coro = tracing.wrap_work(coro, "job", name, origin) or coro
    try:
        if not reject_when_full:
            return await scheduler.spawn(
                coro,
                name,
                priority=priority,
                tags=tags,
                loop=loop,
                delay=delay,
                start_at=start_at,
            )
        # The scheduler decides whether the job would wait; both refusals
        # close the coroutine.
        try:
            return scheduler.spawn_nowait(
                coro,
                name,
                priority=priority,
                tags=tags,
                loop=loop,
                delay=delay,
                start_at=start_at,
            )
        except SchedulerClosedError:
            reason = "the server is shutting down"
        except SchedulerFullError:
            reason = "too much background work is waiting"
        raise unavailable(
            reason, state.retry_after if retry_after is None else retry_after
        )
    except BaseException:
        if coro is not inner:  # refused: as without the span's wrapper
            tracing.close_unstarted(coro)
            if reject_when_full:  # spawn_nowait() closes what it refuses
                tracing.close_unstarted(inner)
        raise


def shield(request: web.Request, arg: Awaitable[_T]) -> asyncio.Future[_T]:
    """Protect *arg* (a coroutine or future) from the cancellation of the
    handler that awaits it.

    The work runs on even when the client disconnects; a graceful shutdown
    waits up to ``wait_timeout`` for it, and lets a coroutine shielded before
    the shutdown spawn the jobs it needs meanwhile. Awaiting the result is
    optional.
    """
    if not inspect.isawaitable(arg):
        raise NotAwaitableError(
            f"arg must be an awaitable (a coroutine, task or future) to shield, "
            f"got {arg!r} ({type(arg).__name__})"
        )
    try:
        state = _state(request)
    except BaseException:
        if asyncio.iscoroutine(arg):
            arg.close()
        raise
    traced = (  # a span when the application uses OpenTelemetry
        tracing.wrap_work(arg, "shield", None, f"{request.method} {request.path}")
        if tracing.active()
        else None
    )
    if traced is None:
        return state.protected.shield(arg, request)
    try:
        return state.protected.shield(traced, request)
    except BaseException:
        tracing.close_unstarted(arg)  # its wrapper was refused before it ran
        raise

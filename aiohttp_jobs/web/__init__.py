"""aiohttp integration: one scheduler per application, ``spawn``, ``shield`` and
``@atomic`` for handlers, HTTP back-pressure, and an ordered graceful shutdown.

How aiohttp stops (``runner.cleanup()``, which ``web.run_app`` runs on SIGINT and
SIGTERM): 1. the listening sockets close and idle keep-alive connections are
dropped; 2. ``on_shutdown`` runs, while handlers in flight still run and their
clients are still connected; 3. handlers are given ``shutdown_timeout`` and then
cancelled; 4. ``on_cleanup`` and the ``cleanup_ctx`` exits run.

The drain therefore happens in step 2: new jobs are refused, the task runtime
(if any) stops, then atomic and shielded work and the scheduler's jobs get up to
``wait_timeout`` to finish, so atomic handlers still answer their clients; what
is left is cancelled (each one logged) and the scheduler closes with
``close_timeout``. The ``cleanup_ctx`` exit runs the same drain if step 2 never
happened (an application cleaned up without a shutdown).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from aiohttp import web

from ._errors import SetupError
from ._job import Job
from ._priority import Priority, parse_priority
from ._scheduler import ExceptionHandler, Scheduler, StartTimeoutHandler

if sys.version_info >= (3, 11):
    from typing import TypedDict, Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import TypedDict, Unpack

if TYPE_CHECKING:
    from ._clock import Clock

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

logger = logging.getLogger("aiohttp_jobs.web")

_T = TypeVar("_T")
_R = TypeVar("_R", bound=web.Request | web.View)
_RT_co = TypeVar("_RT_co", covariant=True)

SCHEDULER_KEY: Final = web.AppKey("aiohttp_jobs.scheduler", Scheduler)
"""Where ``setup()`` keeps the application's scheduler once it has started."""

TASKS_KEY: Final = web.AppKey("aiohttp_jobs.tasks", object)
"""Where ``setup(tasks=...)`` keeps the running task runtime (see ``get_tasks``)."""


class SchedulerOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Scheduler`, accepted by :func:`setup`."""

    close_timeout: float | None
    wait_timeout: float | None
    limit: int | None
    pending_limit: int
    exception_handler: ExceptionHandler | None
    reserve_normal: int
    reserve_high: int
    history_limit: int
    start_timeout_warning: float | None
    start_timeout_critical: float | None
    on_start_timeout: StartTimeoutHandler | None
    thread_pool_size: int | None
    process_pool_size: int | None


class _TaskRegistry(Protocol[_RT_co]):
    def runtime(
        self, *, app: web.Application, scheduler: Scheduler, clock: Clock | None
    ) -> AbstractAsyncContextManager[_RT_co]: ...


# A protected coroutine: the request it belongs to, when it started (loop time),
# the future its caller awaits, and whether it is an @atomic handler.
_Entry = tuple[web.BaseRequest, float, "asyncio.Future[Any]", bool]

if sys.version_info >= (3, 12):

    def _start_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]
    ) -> asyncio.Task[_T]:
        # Runs the first step at once: a handler that never suspends costs no
        # extra trip through the event loop.
        return asyncio.Task(coro, loop=loop, eager_start=True)

else:  # pragma: no cover - exercised on Python < 3.12 only

    def _start_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, _T]
    ) -> asyncio.Task[_T]:
        return loop.create_task(coro)


def _unavailable(reason: str, retry_after: float) -> web.HTTPServiceUnavailable:
    seconds = max(1, math.ceil(retry_after))
    return web.HTTPServiceUnavailable(
        headers={"Retry-After": str(seconds)},
        text=f"{reason}; retry in {seconds} s\n",
    )


class _WebState:
    """Everything ``setup()`` keeps for one application."""

    __slots__ = (
        "_closing",
        "_drained",
        "_protected",
        "_stack",
        "clock",
        "options",
        "reject_when_full",
        "retry_after",
        "runtime",
        "scheduler",
        "tasks",
    )

    def __init__(
        self,
        *,
        options: SchedulerOptions,
        tasks: _TaskRegistry[object] | None,
        clock: Clock | None,
        reject_when_full: bool,
        retry_after: float,
    ) -> None:
        self.options = options
        self.tasks = tasks
        self.clock = clock
        self.reject_when_full = reject_when_full
        self.retry_after = retry_after
        self.scheduler: Scheduler | None = None
        self.runtime: object | None = None
        self._stack = AsyncExitStack()
        self._protected: dict[asyncio.Task[Any], _Entry] = {}
        self._closing = False
        self._drained: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<aiohttp_jobs web state scheduler={self.scheduler!r} "
            f"protected={len(self._protected)}>"
        )

    def require_scheduler(self) -> Scheduler:
        scheduler = self.scheduler
        if scheduler is None:
            raise SetupError(
                "the aiohttp_jobs scheduler does not exist yet: it is created when "
                "the application starts (in cleanup_ctx); use it from handlers, "
                "or from on_startup hooks and cleanup contexts registered after "
                "aiohttp_jobs.setup(app)"
            )
        return scheduler

    # -- protected work (@atomic and shield) -----------------------------------

    def protect(
        self, aw: Awaitable[_T], request: web.BaseRequest, *, atomic: bool
    ) -> asyncio.Future[_T]:
        """Run *aw* in its own task that the caller's cancellation cannot reach;
        the returned future carries its outcome to the caller."""
        if self._closing:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise _unavailable("the server is shutting down", self.retry_after)
        loop = asyncio.get_running_loop()
        if asyncio.iscoroutine(aw):
            task: asyncio.Task[_T] = _start_task(loop, aw)
        else:
            task = asyncio.ensure_future(aw)
        if task.done():
            return task
        outer: asyncio.Future[_T] = loop.create_future()
        self._protected[task] = (request, loop.time(), outer, atomic)
        task.add_done_callback(self._protected_done)
        return outer

    def _protected_done(self, task: asyncio.Task[Any]) -> None:
        request, _, outer, is_atomic = self._protected.pop(task)
        if outer.cancelled():
            # The caller went away (client disconnect, handler cancelled): the
            # outcome has no one to go to, so a failure is logged here.
            if not task.cancelled():
                exc = task.exception()
                if exc is not None and not isinstance(exc, web.HTTPException):
                    what = "atomic handler" if is_atomic else "shielded work"
                    logger.error(
                        "%s for %s %s failed after its request was cancelled",
                        what,
                        request.method,
                        request.path,
                        exc_info=exc,
                    )
            return
        if task.cancelled():
            if is_atomic and self._closing:
                outer.set_exception(
                    _unavailable(
                        "the server shut down before this request finished",
                        self.retry_after,
                    )
                )
            else:
                outer.cancel()
            return
        exc = task.exception()
        if exc is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(task.result())

    # -- lifecycle --------------------------------------------------------------

    async def start(self, app: web.Application) -> None:
        scheduler = Scheduler(**self.options)
        self.scheduler = scheduler
        app[SCHEDULER_KEY] = scheduler
        if self.tasks is not None:
            try:
                self.runtime = await self._stack.enter_async_context(
                    self.tasks.runtime(app=app, scheduler=scheduler, clock=self.clock)
                )
            except BaseException:
                await scheduler.close()
                raise
            app[TASKS_KEY] = self.runtime

    async def shutdown(self) -> None:
        """Drain and close, once; later and concurrent calls wait for the first."""
        if self._drained is not None:
            await asyncio.shield(self._drained)
            return
        loop = asyncio.get_running_loop()
        self._drained = loop.create_future()
        try:
            await self._drain(loop)
        except Exception:
            # aiohttp stops running shutdown and cleanup hooks at the first one
            # that raises: never let a problem here cut the others off.
            logger.exception("aiohttp_jobs: error during graceful shutdown")
        finally:
            self._drained.set_result(None)

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        scheduler = self.scheduler
        if scheduler is None:  # startup never ran or failed before the scheduler
            self._closing = True
            return
        wait_timeout = scheduler.wait_timeout
        close_timeout = scheduler.close_timeout
        deadline = None if wait_timeout is None else loop.time() + wait_timeout

        # 1. The task runtime stops firing and waits for its in-flight runs
        #    (jobs of this scheduler, which still accepts their sub-jobs).
        runtime_exit = loop.create_task(self._stack.aclose())
        await asyncio.wait((runtime_exit,), timeout=_remaining(loop, deadline))
        # 2. No new jobs; running and pending ones carry on.
        scheduler.drain()
        # 3. Atomic and shielded work and all jobs get what is left of
        #    wait_timeout: atomic handlers still answer their clients.
        await self._wait_protected(loop, deadline)
        await scheduler.wait_idle(_remaining(loop, deadline))
        # 4. Close what is left, and say what was cut off.
        self._closing = True
        now = time.time()
        left_jobs = [job for job in scheduler if not job.done]
        left_work = dict(self._protected)
        for task in left_work:
            task.cancel()
        if left_work:
            await asyncio.gather(
                scheduler.close(), asyncio.wait(left_work, timeout=close_timeout)
            )
        else:
            await scheduler.close()
        _log_cut_off(left_jobs, left_work, now, loop.time(), close_timeout)
        if not runtime_exit.done():
            await asyncio.wait((runtime_exit,), timeout=close_timeout)
        if not runtime_exit.done():
            runtime_exit.cancel()
            logger.error(
                "the task runtime did not stop within wait_timeout + close_timeout; "
                "it was cancelled"
            )
        elif not runtime_exit.cancelled() and runtime_exit.exception() is not None:
            logger.error(
                "the task runtime failed while stopping",
                exc_info=runtime_exit.exception(),
            )

    async def _wait_protected(
        self, loop: asyncio.AbstractEventLoop, deadline: float | None
    ) -> None:
        while self._protected:
            timeout = _remaining(loop, deadline)
            if timeout == 0:
                return
            await asyncio.wait(tuple(self._protected), timeout=timeout)


def _remaining(loop: asyncio.AbstractEventLoop, deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - loop.time())


def _log_cut_off(
    jobs: list[Job[Any]],
    work: dict[asyncio.Task[Any], _Entry],
    now: float,
    loop_now: float,
    close_timeout: float | None,
) -> None:
    for job in jobs:
        if job.started_at is None:
            logger.warning(
                "shutdown: dropped pending job %r (id=%s): it never started",
                job.name,
                job.id,
            )
            continue
        outcome = "cancelled" if job.done else "did not stop within close_timeout"
        logger.warning(
            "shutdown: job %r (id=%s) %s after running %.3f s: it did not "
            "finish within wait_timeout",
            job.name,
            job.id,
            outcome,
            now - job.started_at,
        )
    for task, (request, started, _, is_atomic) in work.items():
        what = "atomic handler" if is_atomic else "shielded work"
        outcome = "cancelled" if task.done() else "did not stop within close_timeout"
        logger.warning(
            "shutdown: %s for %s %s %s after running %.3f s: it did not finish "
            "within wait_timeout",
            what,
            request.method,
            request.path,
            outcome,
            loop_now - started,
        )


_STATE_KEY: Final = web.AppKey("aiohttp_jobs.web_state", _WebState)

_NOT_SET_UP = (
    "aiohttp_jobs is not set up for this application: call "
    "aiohttp_jobs.setup(app) on the root application before it starts"
)


def setup(
    app: web.Application,
    *,
    tasks: _TaskRegistry[object] | None = None,
    clock: Clock | None = None,
    reject_when_full: bool = False,
    retry_after: float = 1.0,
    **scheduler_options: Unpack[SchedulerOptions],
) -> None:
    """Give *app* a :class:`Scheduler` that lives as long as the application.

    The scheduler is created when the application starts and drained on
    shutdown (see the module docstring for the order). *scheduler_options* go to
    :class:`Scheduler`; its ``wait_timeout`` bounds the graceful part of the
    shutdown and ``close_timeout`` the cancellation after it.

    *tasks* (a :class:`~aiohttp_jobs.Tasks` registry) runs its scheduled tasks
    for the life of the application; :func:`get_tasks` returns the runtime.
    With *reject_when_full*, :func:`spawn` answers ``503 Service Unavailable``
    with ``Retry-After: <retry_after>`` when the pending list is full, instead
    of making the handler wait (per call: ``spawn(..., reject_when_full=...)``).
    """
    if _STATE_KEY in app:
        raise SetupError(
            "aiohttp_jobs.setup(app) was called twice for the same application: "
            "call it once; sub-applications use the root's scheduler"
        )
    if retry_after <= 0 or not math.isfinite(retry_after):
        raise SetupError(f"retry_after must be a positive number, got {retry_after!r}")
    Scheduler(**scheduler_options)  # check the options now, not at startup
    state = _WebState(
        options=scheduler_options,
        tasks=tasks,
        clock=clock,
        reject_when_full=reject_when_full,
        retry_after=retry_after,
    )
    app[_STATE_KEY] = state

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


def _state(request: web.Request) -> _WebState:
    state: _WebState | None = request.config_dict.get(_STATE_KEY)
    if state is None:
        raise SetupError(_NOT_SET_UP)
    return state


def get_scheduler(request: web.Request) -> Scheduler:
    """The scheduler of the request's application (or of its root application).

    Raises :class:`SetupError` if ``setup()`` was not called.
    """
    return _state(request).require_scheduler()


def get_scheduler_from_app(app: web.Application) -> Scheduler | None:
    """The scheduler ``setup()`` gave *app* once it started, else ``None``."""
    return app.get(SCHEDULER_KEY)


def get_scheduler_from_request(request: web.Request) -> Scheduler | None:
    """The scheduler for *request* (found through sub-applications), else ``None``."""
    scheduler: Scheduler | None = request.config_dict.get(SCHEDULER_KEY)
    return scheduler


def get_tasks(app_or_request: web.Application | web.Request) -> object:
    """The task runtime started by ``setup(app, tasks=...)``."""
    if isinstance(app_or_request, web.Application):
        state = app_or_request.get(_STATE_KEY)
    else:
        state = app_or_request.config_dict.get(_STATE_KEY)
    if state is None:
        raise SetupError(_NOT_SET_UP)
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
    coro: Coroutine[Any, Any, _T],
    name: str | None = None,
    *,
    priority: Priority | int | str = Priority.NORMAL,
    tags: Collection[str] = (),
    reject_when_full: bool | None = None,
    retry_after: float | None = None,
) -> Job[_T]:
    """Spawn *coro* as a job of the request's scheduler.

    With back-pressure on (``reject_when_full``, default: ``setup()``'s), a full
    pending list or a shutting-down scheduler raises
    ``web.HTTPServiceUnavailable`` with a ``Retry-After`` header instead of
    waiting, or raising :class:`SchedulerClosedError`.
    """
    try:
        state = _state(request)
        scheduler = state.require_scheduler()
    except BaseException:
        coro.close()
        raise
    if reject_when_full is None:
        reject_when_full = state.reject_when_full
    if reject_when_full and (
        scheduler.draining
        or scheduler.closed
        or (scheduler.full and parse_priority(priority) is not Priority.CRITICAL)
    ):
        coro.close()
        reason = (
            "the server is shutting down"
            if scheduler.draining or scheduler.closed
            else "too much background work is waiting"
        )
        raise _unavailable(
            reason, state.retry_after if retry_after is None else retry_after
        )
    return await scheduler.spawn(coro, name, priority=priority, tags=tags)


def shield(request: web.Request, aw: Awaitable[_T]) -> asyncio.Future[_T]:
    """Protect *aw* from the cancellation of the handler that awaits it.

    The work runs on even when the client disconnects; a graceful shutdown
    waits up to ``wait_timeout`` for it. Awaiting the result is optional.
    """
    try:
        state = _state(request)
    except BaseException:
        if asyncio.iscoroutine(aw):
            aw.close()
        raise
    return state.protect(aw, request, atomic=False)


def atomic(handler: Callable[[_R], Awaitable[_T]]) -> Callable[[_R], Awaitable[_T]]:
    """Run the whole handler (plain function or ``web.View`` method) so that
    neither a client disconnect nor a graceful shutdown within ``wait_timeout``
    can interrupt it; returns the handler's response."""

    @functools.wraps(handler)
    async def wrapper(request_or_view: _R) -> _T:
        request = (
            request_or_view.request
            if isinstance(request_or_view, web.View)
            else request_or_view
        )
        state = request.config_dict.get(_STATE_KEY)
        if state is None:
            raise SetupError(_NOT_SET_UP)
        return await state.protect(handler(request_or_view), request, atomic=True)

    return wrapper

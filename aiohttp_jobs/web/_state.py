"""What ``setup()`` keeps per application, and the ordered graceful shutdown.

How aiohttp stops (``runner.cleanup()``, which ``web.run_app`` runs on SIGINT
and SIGTERM): 1. the listening sockets close and idle keep-alive connections
are dropped; 2. ``on_shutdown`` runs while the handlers in flight still run
and their clients are still connected; 3. handlers get ``shutdown_timeout``,
then are cancelled; 4. ``on_cleanup`` and the ``cleanup_ctx`` exits run.

The drain happens in step 2: the task runtime stops, new jobs are refused,
atomic and shielded work and the scheduler's jobs get up to ``wait_timeout``
to finish (so atomic handlers still answer their clients), then what is left
is cancelled and logged and the scheduler closes with ``close_timeout``. The
``cleanup_ctx`` exit runs the same drain if step 2 never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Collection
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Final, TypedDict

from aiohttp import web

from .._checks import (
    check_number,
)
from .._core.clock import Clock, check_clock
from .._core.job import Job
from .._core.logs import job_extra
from .._core.scheduler import ExceptionHandler, Scheduler, StartTimeoutHandler
from .._errors import ConfigTypeError, SetupError
from .._tasks.runtime import TaskRuntime
from ._protect import Entry, ProtectedWork, describe

if TYPE_CHECKING:
    from .._tasks.declarations import Tasks

__all__ = [
    "NOT_SET_UP",
    "SCHEDULER_KEY",
    "STATE_KEY",
    "TASKS_KEY",
    "SchedulerOptions",
    "WebState",
    "check_retry_after",
    "check_setup_options",
    "state_of",
]

logger = logging.getLogger("aiohttp_jobs.web")

SCHEDULER_KEY: Final = web.AppKey("aiohttp_jobs.scheduler", Scheduler)
"""Where ``setup()`` keeps the application's scheduler once it has started."""

TASKS_KEY: Final = web.AppKey("aiohttp_jobs.tasks", TaskRuntime)
"""Where ``setup(tasks=...)`` keeps the running task runtime (see ``get_tasks``)."""


class SchedulerOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Scheduler`, accepted by ``setup()``."""

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
    loops: Collection[str]


#: The scheduler options ``setup()`` accepts: those of the :class:`Scheduler`
#: constructor but ``clock`` (``setup()``'s own, shared with the task runtime).
#: The constructor checks their values.
SCHEDULER_OPTIONS: Final[frozenset[str]] = frozenset(
    inspect.signature(Scheduler).parameters
) - {"clock"}


def check_retry_after(value: object) -> float:
    """The seconds of a ``Retry-After`` header: more than 0, at most a day."""
    return check_number("retry_after", value, above=0.0, maximum=86400.0)


def check_setup_options(
    *,
    tasks: object,
    clock: object,
    reject_when_full: object,
    retry_after: object,
    scheduler_options: SchedulerOptions,
) -> float:
    """Check every ``setup()`` argument; returns ``retry_after`` as a float.

    Raises :class:`ConfigError` (:class:`ConfigTypeError` for a wrong type)
    naming the parameter and its value.
    """
    if tasks is not None and not callable(getattr(tasks, "runtime", None)):
        raise ConfigTypeError(
            f"tasks must be an aiohttp_jobs.Tasks registry or None, got {tasks!r} "
            f"({type(tasks).__name__})"
        )
    check_clock("clock", clock)
    if not isinstance(reject_when_full, bool):
        raise ConfigTypeError(
            f"reject_when_full must be True or False, got {reject_when_full!r} "
            f"({type(reject_when_full).__name__})"
        )
    seconds = check_retry_after(retry_after)
    for name, value in scheduler_options.items():
        if name not in SCHEDULER_OPTIONS:
            known = ", ".join(sorted(SCHEDULER_OPTIONS))
            raise ConfigTypeError(
                f"setup() got an unknown option {name}={value!r}; the scheduler "
                f"options are: {known}"
            )
    # The scheduler checks every value (and the rules that tie them together)
    # when it is built: build one now, so a bad option fails here, not at start.
    Scheduler(**scheduler_options)
    return seconds


class WebState:
    """Everything ``setup()`` keeps for one application."""

    __slots__ = (
        "_drained",
        "_runtime_exit",
        "_stack",
        "clock",
        "options",
        "protected",
        "reject_when_full",
        "runtime",
        "scheduler",
        "tasks",
    )

    def __init__(
        self,
        *,
        options: SchedulerOptions,
        tasks: Tasks | None,
        clock: Clock | None,
        reject_when_full: bool,
        retry_after: float,
    ) -> None:
        self.options = options
        self.tasks = tasks
        self.clock = clock
        self.reject_when_full = reject_when_full
        self.protected = ProtectedWork(retry_after=retry_after)
        self.scheduler: Scheduler | None = None
        self.runtime: TaskRuntime | None = None
        self._stack = AsyncExitStack()
        self._drained: asyncio.Future[None] | None = None
        self._runtime_exit: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<WebState {self.scheduler!r} {self.protected!r}>"

    @property
    def retry_after(self) -> float:
        return self.protected.retry_after

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

    # -- lifecycle --------------------------------------------------------------

    async def start(self, app: web.Application) -> None:
        # One clock for the application: delayed jobs and scheduled tasks agree.
        scheduler = Scheduler(**self.options, clock=self.clock)
        self.scheduler = self.protected.scheduler = scheduler
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
        """Drain and close, once; concurrent calls wait for the first. A drain
        that was interrupted (cancelled) is run again by the next call."""
        while self._drained is not None:
            await asyncio.shield(self._drained)
            if self.protected.closing:
                return
        loop = asyncio.get_running_loop()
        drained = self._drained = loop.create_future()
        try:
            await self._drain(loop)
        except asyncio.CancelledError:
            # A second SIGINT/SIGTERM: web.run_app now cancels every task at
            # once. Say what is about to be cut off, while it still can be said.
            self._report_interrupted(loop)
            self._drained = None
            raise
        except Exception:
            # aiohttp stops running shutdown and cleanup hooks at the first one
            # that raises: never let a problem here cut the others off.
            logger.exception("aiohttp_jobs: error during graceful shutdown")
        finally:
            self.protected.closing = self._drained is not None
            drained.set_result(None)

    def _report_interrupted(self, loop: asyncio.AbstractEventLoop) -> None:
        now, loop_now = time.time(), loop.time()
        jobs = [] if self.scheduler is None else list(self.scheduler)
        for job in jobs:
            if not job.done:
                ran = 0.0 if job.started_at is None else now - job.started_at
                logger.warning(
                    "shutdown interrupted: job %r (id=%s), %s for %.3f s, is "
                    "cancelled without waiting",
                    job.name,
                    job.id,
                    "running" if job.started_at is not None else "pending",
                    ran,
                    extra=job_extra(job),
                )
        for entry in self.protected.entries.values():
            logger.warning(
                "shutdown interrupted: %s, running for %.3f s, is cancelled "
                "without waiting",
                describe(entry),
                loop_now - entry[1],
            )

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        self.protected.stopping = True
        scheduler = self.scheduler
        if scheduler is None:  # startup never ran, or failed before the scheduler
            self.protected.closing = True
            return
        wait_timeout = scheduler.wait_timeout
        close_timeout = scheduler.close_timeout
        began = loop.time()
        deadline = None if wait_timeout is None else began + wait_timeout
        logger.info(
            "graceful shutdown: drain begins; waiting up to wait_timeout=%s s for "
            "%d running and %d pending jobs, %d task runs, %d atomic or shielded "
            "requests",
            wait_timeout,
            scheduler.active_count,
            scheduler.pending_count,
            getattr(self.runtime, "in_flight", 0),
            len(self.protected.entries),
            extra={"drain": "begin"},
        )

        # 1. The task runtime stops firing and waits for its in-flight runs
        #    (jobs of this scheduler, which still accepts their sub-jobs).
        #    A drain run again after an interruption waits for the same exit.
        finished = _FinishedCount()
        scheduler.add_observer(finished)
        runtime_exit = self._runtime_exit
        if runtime_exit is None:
            runtime_exit = loop.create_task(self._stack.aclose())
            self._runtime_exit = runtime_exit
        await asyncio.wait((runtime_exit,), timeout=_remaining(loop, deadline))
        # 2. No new jobs, but for those that work already accepted spawns
        #    to finish (atomic handlers, shielded work and jobs: they run in
        #    the scheduler's drain_exempt()); running and pending ones carry on.
        scheduler.drain()
        # 3. Atomic and shielded work and all jobs, including those they
        #    spawn meanwhile, get what is left of wait_timeout: atomic
        #    handlers still answer their clients.
        await self._wait_quiet(scheduler, loop, deadline)
        # 4. Cancel what is left, and say what was cut off. A failure of
        #    close() (a raising exception_handler, say) is logged on its own:
        #    the report of each job still follows.
        now, loop_now = time.time(), loop.time()
        left_jobs = [job for job in scheduler if not job.done]
        scheduler.remove_observer(finished)
        left_work, closed = await asyncio.gather(
            self.protected.cancel_all(close_timeout),
            scheduler.close(),
            return_exceptions=True,
        )
        if isinstance(left_work, BaseException):  # a bug here: shutdown() logs it
            raise left_work
        _log_cut_off(left_jobs, left_work, now, loop_now)
        logger.info(
            "graceful shutdown: drain ended after %.3f s; %d jobs finished, cut "
            "off %d jobs and %d atomic or shielded requests",
            loop_now - began,
            finished.count,
            len(left_jobs),
            len(left_work),
            extra={"drain": "end"},
        )
        if isinstance(closed, BaseException):
            logger.error(
                "shutdown: closing the scheduler raised; the jobs above were still "
                "cancelled",
                exc_info=closed,
            )
        if not runtime_exit.done():
            await asyncio.wait((runtime_exit,), timeout=close_timeout)
        if not runtime_exit.done():
            runtime_exit.cancel()
            logger.error(
                "shutdown: the task runtime did not stop within wait_timeout + "
                "close_timeout; it was cancelled"
            )
        elif not runtime_exit.cancelled() and runtime_exit.exception() is not None:
            logger.error(
                "shutdown: the task runtime failed while stopping",
                exc_info=runtime_exit.exception(),
            )

    async def _wait_quiet(
        self,
        scheduler: Scheduler,
        loop: asyncio.AbstractEventLoop,
        deadline: float | None,
    ) -> None:
        """Until no protected work runs and the scheduler is idle, or the
        deadline. Either may start the other (a late atomic request, a job
        spawned by one), so wait again until both are quiet at once."""
        protected = self.protected
        while True:
            work_done = await protected.wait(_remaining(loop, deadline))
            jobs_done = await scheduler.wait_idle(_remaining(loop, deadline))
            if not (work_done and jobs_done) or not protected.entries:
                return


class _FinishedCount:
    """Counts the jobs that finish during the drain (a scheduler observer)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def job_finished(self, job: Job[Any], /) -> None:
        self.count += 1


def _remaining(loop: asyncio.AbstractEventLoop, deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - loop.time())


def _log_cut_off(
    jobs: list[Job[Any]],
    work: dict[asyncio.Future[Any], Entry],
    now: float,
    loop_now: float,
) -> None:
    for job in jobs:
        if job.started_at is None:
            logger.warning(
                "shutdown: dropped pending job %r (id=%s): it never started",
                job.name,
                job.id,
                extra=job_extra(job),
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
            extra=job_extra(job),
        )
    for fut, entry in work.items():
        outcome = "cancelled" if fut.done() else "did not stop within close_timeout"
        logger.warning(
            "shutdown: %s %s after running %.3f s: it did not finish within "
            "wait_timeout",
            describe(entry),
            outcome,
            loop_now - entry[1],
        )


STATE_KEY: Final = web.AppKey("aiohttp_jobs.web_state", WebState)

NOT_SET_UP = (
    "aiohttp_jobs is not set up for this application: call "
    "aiohttp_jobs.setup(app) on the root application before it starts"
)


def state_of(request: object) -> WebState | None:
    """What ``setup()`` keeps for the application of *request* (a
    ``web.Request``, or a ``web.View`` for convenience); ``None`` without
    ``setup()``. A request of aiohttp's low-level server, which has no
    application, raises :class:`SetupError`; anything else
    :class:`ConfigTypeError`."""
    if isinstance(request, web.View):
        request = request.request
    if isinstance(request, web.Request):
        return request.config_dict.get(STATE_KEY)
    if isinstance(request, web.BaseRequest):
        raise SetupError(
            "aiohttp_jobs needs a request of a web.Application set up with "
            "aiohttp_jobs.setup(app); this request of aiohttp's low-level server "
            "has no application"
        )
    raise ConfigTypeError(
        f"request must be an aiohttp web.Request, got {request!r} "
        f"({type(request).__name__})"
    )

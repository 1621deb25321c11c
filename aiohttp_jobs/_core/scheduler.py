"""Scheduler: spawns jobs under a concurrency limit, with priorities, pools and history.

A drop-in superset of ``aiojobs.Scheduler``: the same constructor, methods and
properties behave the same way, and everything else is opt-in keyword arguments.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import pickle
import time
import traceback
import warnings
from collections import deque
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    Iterator,
)
from concurrent.futures import Executor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from datetime import datetime, timedelta
from types import CoroutineType, TracebackType
from typing import Any, NoReturn, TypeVar

from .._checks import (
    MAX_COUNT,
    check_callable,
    check_count,
    check_datetime,
    check_duration,
    check_name,
    check_tags,
    check_timeout,
    check_timestamp,
)
from .._errors import (
    ConfigError,
    ConfigTypeError,
    JobNotFoundError,
    NotAwaitableError,
    NotPicklableError,
    SchedulerClosedError,
    SchedulerFullError,
)
from .clock import Clock, SystemClock, TimerHandle, check_clock
from .events import EventBus, EventKind, JobEvent, SchedulerEvent
from .history import History
from .job import Job, coroutine_in_use, running_job, seq_from_id
from .logs import job_extra, jobs_logger
from .loops import Hop, IsolatedLoops
from .pools import Pools, default_sizes
from .priority import Priority, parse_priority

__all__ = [
    "ExceptionHandler",
    "JobHook",
    "Scheduler",
    "StartTimeoutHandler",
    "create_scheduler",
]

logger = logging.getLogger("aiohttp_jobs.scheduler")

_T = TypeVar("_T")
_S = TypeVar("_S", bound="Scheduler")

ExceptionHandler = Callable[["Scheduler", dict[str, Any]], None]
#: Called as ``handler(job, level)`` with level ``"warning"`` or ``"critical"``.
StartTimeoutHandler = Callable[[Job[Any], str], None]
#: What a scheduler observer's ``job_started`` / ``job_finished`` is.
JobHook = Callable[[Job[Any]], object]

#: How many jobs an orchestrator (a workflow, the task runner) starts per turn of
#: the event loop, at most. Small batches let started jobs finish while later
#: ones start, so their short-lived objects die young (cheap for the garbage
#: collector), memory stays bounded and the loop keeps serving timers and I/O.
START_BATCH = 64

#: The schedulers whose drain the current context is exempt from (see
#: ``Scheduler.drain_exempt()``). A context variable, so the jobs spawned inside
#: the block, which copy their spawner's context, are exempt too.
_drain_exempt: ContextVar[tuple[Scheduler, ...]] = ContextVar(
    "aiohttp_jobs.drain_exempt", default=()
)

_LOW, _NORMAL, _HIGH, _CRITICAL = Priority
_PENDING_ORDER = (_HIGH, _NORMAL, _LOW)


#: A process pool larger than this is refused: the pool forks its workers up front.
_MAX_PROCESSES = 1024


def _check_timeout(name: str, value: object) -> float | None:
    """A timeout setting: ``None`` or finite seconds >= 0 (see ``_checks``)."""
    return check_timeout(name, value)


def _check_count(name: str, value: object, *, minimum: int) -> int:
    """A count setting: an ``int`` from *minimum* to ``sys.maxsize``."""
    return check_count(name, value, minimum=minimum, maximum=MAX_COUNT)


async def _await(aw: Awaitable[_T]) -> _T:
    return await aw


async def _call_in(
    pool: Callable[[], Executor], fn: Callable[..., _T], args: tuple[Any, ...]
) -> _T:
    # Runs inside the job's task: the copied context carries current_job().
    call = functools.partial(copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(pool(), call)


async def _call_in_process(
    pool: Callable[[], Executor], fn: Callable[..., _T], args: tuple[Any, ...]
) -> _T:
    call = functools.partial(fn, *args)
    return await asyncio.get_running_loop().run_in_executor(pool(), call)


def _by_priority(job: Job[Any]) -> int:
    return -job._priority


class _Unset:
    """The type of ``_UNSET``: an argument of ``reconfigure()`` not given."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()
_NO_CAP = 1 << 62  # above any count of jobs


def _caps(
    limit: int | None, reserve_normal: int, reserve_high: int
) -> tuple[int, int, int] | None:
    """Capacity per priority: LOW, NORMAL, HIGH (CRITICAL is never capped)."""
    if limit is None:
        return None
    return (limit, limit + reserve_normal, limit + reserve_normal + reserve_high)


class Scheduler(Collection[Job[Any]]):
    """Runs jobs concurrently, at most ``limit`` at a time (``None``: no limit).

    Jobs beyond the limit wait in a pending list of at most ``pending_limit``
    entries (0: unbounded); ``spawn()`` itself waits while that list is full.
    """

    def __init__(
        self,
        *,
        close_timeout: float | None = 0.1,
        wait_timeout: float | None = 60,
        limit: int | None = 100,
        pending_limit: int = 10000,
        exception_handler: ExceptionHandler | None = None,
        reserve_normal: int = 0,
        reserve_high: int = 0,
        history_limit: int = 1000,
        start_timeout_warning: float | None = None,
        start_timeout_critical: float | None = None,
        on_start_timeout: StartTimeoutHandler | None = None,
        thread_pool_size: int | None = None,
        process_pool_size: int | None = None,
        loops: Collection[str] = (),
        clock: Clock | None = None,
    ) -> None:
        clock = check_clock("clock", clock)
        if clock is None:
            clock = SystemClock()
        check_callable("exception_handler", exception_handler, optional=True)
        check_callable("on_start_timeout", on_start_timeout, optional=True)
        if limit is not None:
            _check_count("limit", limit, minimum=1)
        _check_count("pending_limit", pending_limit, minimum=0)
        _check_count("reserve_normal", reserve_normal, minimum=0)
        _check_count("reserve_high", reserve_high, minimum=0)
        _check_count("history_limit", history_limit, minimum=0)
        # Kept in their checked form: a timedelta becomes seconds.
        close_timeout = _check_timeout("close_timeout", close_timeout)
        wait_timeout = _check_timeout("wait_timeout", wait_timeout)
        start_timeout_warning = _check_timeout(
            "start_timeout_warning", start_timeout_warning
        )
        start_timeout_critical = _check_timeout(
            "start_timeout_critical", start_timeout_critical
        )
        if (
            start_timeout_warning is not None
            and start_timeout_critical is not None
            and start_timeout_critical < start_timeout_warning
        ):
            raise ConfigError(
                "start_timeout_critical must not be shorter than start_timeout_warning"
            )
        self._close_timeout = close_timeout
        self._wait_timeout = wait_timeout
        self._limit = limit
        self._pending_limit = pending_limit
        self._exception_handler = exception_handler
        self._reserves = (reserve_normal, reserve_high)
        # Capacity per priority: LOW, NORMAL, HIGH (CRITICAL is never capped).
        self._caps = _caps(limit, reserve_normal, reserve_high)
        self._start_warning = start_timeout_warning
        self._start_critical = start_timeout_critical
        self._on_start_timeout = on_start_timeout
        threads, processes = default_sizes(
            None if self._caps is None else self._caps[2]
        )
        self._pools = Pools(
            thread_size=_check_count("thread_pool_size", thread_pool_size, minimum=1)
            if thread_pool_size is not None
            else threads,
            process_size=check_count(
                "process_pool_size",
                process_pool_size,
                minimum=1,
                maximum=_MAX_PROCESSES,
            )
            if process_pool_size is not None
            else processes,
        )

        self._jobs: dict[int, Job[Any]] = {}  # active and pending, in spawn order
        self._pending: tuple[deque[Job[Any]], ...] = (deque(), deque(), deque())
        self._pending_count = 0
        self._active_count = 0
        self._space_waiters: deque[asyncio.Future[None]] = deque()
        self._reserved = 0  # pending places promised to woken spawn() calls
        self._shields: set[asyncio.Future[Any]] = set()
        self._idle_waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._history = History(maxlen=history_limit)
        self._events = EventBus()
        # The bus's own list, read directly on the hot paths: no events are
        # built while nobody listens.
        self._listeners = self._events._listeners
        # Observers (metrics): their methods, called directly as jobs start
        # and finish, with no event object built; empty unless someone observes.
        self._observers: tuple[object, ...] = ()
        self._on_started: tuple[JobHook, ...] = ()
        self._on_finished: tuple[JobHook, ...] = ()
        self._loops = IsolatedLoops(loops)
        self._clock = clock
        # Delayed spawns: each job's due time, the jobs due at each time, and one
        # clock timer per distinct due time (jobs due together start in priority
        # order).
        self._scheduled: dict[Job[Any], float] = {}
        self._due: dict[float, list[Job[Any]]] = {}
        self._due_timers: dict[float, TimerHandle] = {}

    def __repr__(self) -> str:
        # aiojobs' own format: the counters have properties of their own.
        state = "closed " if self._closed else "draining " if self._draining else ""
        return f"<Scheduler {state}jobs={len(self._jobs)}>"

    # -- collection of current jobs (aiojobs) -----------------------------------

    def __iter__(self) -> Iterator[Job[Any]]:
        return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, obj: object) -> bool:
        return isinstance(obj, Job) and self._jobs.get(obj._seq) is obj

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.wait_and_close()

    # -- settings and counters (aiojobs) ----------------------------------------

    @property
    def limit(self) -> int | None:
        """Jobs running at once (LOW priority; ``None``: no limit). Settable on a
        live scheduler, see :meth:`reconfigure`."""
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        self.reconfigure(limit=value)

    @property
    def pending_limit(self) -> int:
        """Size of the pending list (0: unbounded). Settable (:meth:`reconfigure`)."""
        return self._pending_limit

    @pending_limit.setter
    def pending_limit(self, value: int) -> None:
        self.reconfigure(pending_limit=value)

    @property
    def scheduled_count(self) -> int:
        """Jobs spawned with a delay that has not passed yet (not in
        ``pending_count``; they hold no slot and no pending place)."""
        return len(self._scheduled)

    @property
    def clock(self) -> Clock:
        """The clock that delayed spawns follow."""
        return self._clock

    @property
    def close_timeout(self) -> float | None:
        return self._close_timeout

    @property
    def wait_timeout(self) -> float | None:
        return self._wait_timeout

    @property
    def active_count(self) -> int:
        return self._active_count

    @property
    def pending_count(self) -> int:
        return self._pending_count

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def exception_handler(self) -> ExceptionHandler | None:
        return self._exception_handler

    @property
    def _failed_task(self) -> _BoundLoop | None:
        """aiojobs compatibility: aiojobs' scheduler starts a task on its first
        spawn and code written for aiojobs reads its loop from it. This one
        needs no such task; it answers with the loop it is bound to."""
        loop = self._loop
        return None if loop is None else _BoundLoop(loop)

    @property
    def draining(self) -> bool:
        """``drain()`` was called: no new jobs, the current ones carry on."""
        return self._draining

    @property
    def full(self) -> bool:
        """Whether ``spawn()`` of a non-critical job could wait for a pending place
        now (the pending list is at ``pending_limit``)."""
        limit = self._pending_limit
        return bool(limit) and (
            bool(self._space_waiters) or self._pending_count + self._reserved >= limit
        )

    def drain(self) -> None:
        """Refuse new jobs from now on, letting active and pending ones run.

        ``spawn()`` raises :class:`SchedulerClosedError`; ``closed`` stays false
        until ``close()``. Used at the start of a graceful shutdown. Two kinds of
        spawn are still admitted until ``close()``: those made by a running job
        of this scheduler (a job may finish what it started), and those made
        inside :meth:`drain_exempt`.
        """
        self._draining = True

    @contextmanager
    def drain_exempt(self) -> Generator[None, None, None]:
        """Admit the spawns made inside this ``with`` block while draining.

        The exemption follows the context: jobs spawned inside the block (and
        whatever they spawn) are exempt too. Once ``close()`` starts, every spawn
        is refused as usual. For work that must finish what it started during a
        graceful shutdown, such as an atomic request handler.
        """
        token = _drain_exempt.set((*_drain_exempt.get(), self))
        try:
            yield
        finally:
            _drain_exempt.reset(token)

    def _drain_admits(self) -> bool:
        """Whether a spawn made now is admitted although the scheduler drains."""
        if self in _drain_exempt.get():
            return True
        job = running_job()
        return job is not None and job._owner is self and job._run_task is not None

    # -- extensions ---------------------------------------------------------------

    @property
    def reserve_normal(self) -> int:
        """Extra slots for NORMAL and higher jobs. Settable, see :meth:`reconfigure`."""
        return self._reserves[0]

    @reserve_normal.setter
    def reserve_normal(self, value: int) -> None:
        self.reconfigure(reserve_normal=value)

    @property
    def reserve_high(self) -> int:
        """Extra slots for HIGH jobs. Settable, see :meth:`reconfigure`."""
        return self._reserves[1]

    @reserve_high.setter
    def reserve_high(self, value: int) -> None:
        self.reconfigure(reserve_high=value)

    def reconfigure(
        self,
        *,
        limit: int | _Unset | None = _UNSET,
        pending_limit: int | _Unset = _UNSET,
        reserve_normal: int | _Unset = _UNSET,
        reserve_high: int | _Unset = _UNSET,
        thread_pool_size: int | _Unset = _UNSET,
        process_pool_size: int | _Unset = _UNSET,
    ) -> dict[str, tuple[Any, Any]]:
        """Change limits, reserves and pool sizes of a live scheduler at once.

        Checked like the constructor's arguments, all before any is applied.
        More room starts pending jobs now, highest priority first, and grants
        waiting ``spawn()`` calls their pending places; less room never cancels
        a running job: new starts wait until the running count is below the new
        capacity. A new pool size applies to work submitted from now on (calls
        already running in the old pool finish there). Returns the changes as
        ``{name: (old, new)}``, also emitted as a ``RECONFIGURED`` event.
        """
        new_limit = self._limit
        if not isinstance(limit, _Unset):
            new_limit = (
                None if limit is None else _check_count("limit", limit, minimum=1)
            )
        new_pending = self._pending_limit
        if not isinstance(pending_limit, _Unset):
            new_pending = _check_count("pending_limit", pending_limit, minimum=0)
        normal, high = self._reserves
        if not isinstance(reserve_normal, _Unset):
            normal = _check_count("reserve_normal", reserve_normal, minimum=0)
        if not isinstance(reserve_high, _Unset):
            high = _check_count("reserve_high", reserve_high, minimum=0)
        threads = self._pools.thread_size
        if not isinstance(thread_pool_size, _Unset):
            threads = _check_count("thread_pool_size", thread_pool_size, minimum=1)
        processes = self._pools.process_size
        if not isinstance(process_pool_size, _Unset):
            processes = check_count(
                "process_pool_size",
                process_pool_size,
                minimum=1,
                maximum=_MAX_PROCESSES,
            )
        if self._closed:
            raise SchedulerClosedError("cannot reconfigure a closed scheduler")
        old = {
            "limit": self._limit,
            "pending_limit": self._pending_limit,
            "reserve_normal": self._reserves[0],
            "reserve_high": self._reserves[1],
            "thread_pool_size": self._pools.thread_size,
            "process_pool_size": self._pools.process_size,
        }
        new = {
            "limit": new_limit,
            "pending_limit": new_pending,
            "reserve_normal": normal,
            "reserve_high": high,
            "thread_pool_size": threads,
            "process_pool_size": processes,
        }
        changes = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
        if not changes:
            return changes
        self._limit = new_limit
        self._pending_limit = new_pending
        self._reserves = (normal, high)
        self._caps = _caps(new_limit, normal, high)
        self._pools.resize(thread_size=threads, process_size=processes)
        if self._listeners:
            self._events.emit(
                SchedulerEvent(EventKind.RECONFIGURED, changes, time.time())
            )
        if self._pending_count:
            self._start_pending()
        elif self._space_waiters:
            self._grant_space()
        return changes

    @property
    def history(self) -> History:
        """The most recent finished jobs (``history_limit`` of them)."""
        return self._history

    @property
    def events(self) -> EventBus:
        """Subscribe here to every job state change."""
        return self._events

    @property
    def pools(self) -> Pools:
        return self._pools

    @property
    def loops(self) -> IsolatedLoops:
        """The isolated event loops started so far, by name (see ``spawn(loop=)``)."""
        return self._loops

    def capacity(self, priority: Priority | int | str = Priority.NORMAL) -> int | None:
        """How many jobs may run at once for a job of *priority* (``None``: no cap)."""
        prio = parse_priority(priority)
        if self._caps is None or prio is _CRITICAL:
            return None
        return self._caps[prio]

    def add_observer(self, observer: object) -> None:
        """Call ``observer.job_started(job)`` as each job starts and
        ``observer.job_finished(job)`` as each reaches a final state (also one
        dropped before it started), for each of the two methods it has.

        A low-level hook for instrumentation such as
        :func:`aiohttp_jobs.metrics.instrument`: the methods are called
        directly on the job's hot path, with no event object built, so they
        must be quick and must not raise. :attr:`events` is the general-purpose
        stream of changes. An observer added twice is called once.
        """
        started = getattr(observer, "job_started", None)
        finished = getattr(observer, "job_finished", None)
        if started is None and finished is None:
            raise ConfigTypeError(
                f"observer must have a job_started(job) or job_finished(job) "
                f"method, got {observer!r}"
            )
        check_callable("observer.job_started", started, optional=True)
        check_callable("observer.job_finished", finished, optional=True)
        if any(seen is observer for seen in self._observers):
            return
        self._observers = (*self._observers, observer)
        self._hook_observers()

    def remove_observer(self, observer: object) -> None:
        """Stop calling *observer*; an unknown one is ignored."""
        self._observers = tuple(o for o in self._observers if o is not observer)
        self._hook_observers()

    def _hook_observers(self) -> None:
        # The bound methods, looked up once: no attribute lookup per job.
        started = (getattr(o, "job_started", None) for o in self._observers)
        finished = (getattr(o, "job_finished", None) for o in self._observers)
        self._on_started = tuple(hook for hook in started if hook is not None)
        self._on_finished = tuple(hook for hook in finished if hook is not None)

    def priority_counts(self) -> dict[Priority, tuple[int, int]]:
        """``{priority: (active, pending)}`` for every priority, counted now
        (scheduled jobs, not due yet, are in neither). Walks the current jobs:
        for scrapes and dashboards, not for hot paths."""
        counts = dict.fromkeys(Priority, (0, 0))
        active = dict.fromkeys(Priority, 0)
        # A copy first: a scrape may run in another thread.
        for job in list(self._jobs.values()):
            if job._run_task is not None:
                active[job._priority] += 1
        for prio in Priority:
            pending = 0 if prio is _CRITICAL else len(self._pending[prio])
            counts[prio] = (active[prio], pending)
        return counts

    def get_job(self, job_id: str) -> Job[Any]:
        """The active, pending or remembered finished job with this id."""
        check_name("job_id", job_id)
        seq = seq_from_id(job_id)
        job = None if seq is None else self._jobs.get(seq)
        if job is None:
            job = self._history.get(job_id)
        if job is None:
            raise JobNotFoundError(
                f"no job with id {job_id!r}: it never existed here, or it finished "
                f"and left the history (history_limit={self._history.maxlen})"
            )
        return job

    # -- spawning -------------------------------------------------------------------

    async def spawn(
        self,
        coro: Coroutine[Any, Any, _T] | Awaitable[_T],
        name: str | None = None,
        *,
        priority: Priority | int | str = Priority.NORMAL,
        tags: Collection[str] = (),
        loop: str | None = None,
        delay: float | timedelta | None = None,
        start_at: float | datetime | None = None,
    ) -> Job[_T]:
        """Start *coro* as a job now, or queue it until a slot frees up.

        Waits while the pending list is full. Raises :class:`SchedulerClosedError`
        once the scheduler is closed. With *loop*, the coroutine runs on the
        isolated event loop of that name (started now if it is not running yet),
        in a thread of its own; the job stays on this scheduler and this loop.

        With *delay* (seconds) or *start_at* (a POSIX timestamp or an aware
        datetime), the job is ``scheduled`` until then on the scheduler's clock:
        listed and cancellable, but holding no slot and no pending place. Once
        due it starts, or joins the pending list (whatever its length), in
        priority order with the jobs due at the same time.
        """
        if delay is not None or start_at is not None:
            later = self._spawn_later(coro, name, priority, tags, loop, delay, start_at)
            if later is not None:
                return later
        if loop is not None:
            hop, prio, tags = self._hop(loop, coro, name, priority, tags)
            label = hop.label
            try:
                return self._try_spawn(
                    hop, name, prio, tags, label, None
                ) or await self._wait_and_spawn(hop, name, prio, tags, label, None)
            except BaseException:
                hop.close()  # refused before it started: the hop is ours
                raise
        return await self._spawn(coro, name, priority, tags, None)

    async def spawn_in_thread(
        self,
        fn: Callable[..., _T],
        /,
        *args: Any,
        name: str | None = None,
        priority: Priority | int | str = Priority.NORMAL,
        tags: Collection[str] = (),
    ) -> Job[_T]:
        """Run the blocking ``fn(*args)`` in the thread pool, as a job.

        The job has the same limits, priority, result and history as any other;
        inside ``fn``, ``current_job()`` works and progress may be reported.
        """
        _check_blocking("spawn_in_thread", fn)
        call = _call_in(self._pools.thread, fn, args)
        try:
            return await self._spawn(call, name, priority, tags, _qualname(fn))
        except BaseException:
            call.close()  # refused before it started: the coroutine is ours
            raise

    async def spawn_in_process(
        self,
        fn: Callable[..., _T],
        /,
        *args: Any,
        name: str | None = None,
        priority: Priority | int | str = Priority.NORMAL,
        tags: Collection[str] = (),
    ) -> Job[_T]:
        """Run ``fn(*args)`` in the process pool, as a job.

        *fn* and *args* must be picklable (a module-level function, not a lambda).
        """
        _check_blocking("spawn_in_process", fn)
        try:
            pickle.dumps((fn, args))
        except Exception as exc:
            raise NotPicklableError(
                f"spawn_in_process() must send {_qualname(fn)} and its arguments "
                f"to another process, but they cannot be pickled ({exc}); use a "
                "module-level function and plain data, or spawn_in_thread()"
            ) from exc
        call = _call_in_process(self._pools.process, fn, args)
        try:
            return await self._spawn(call, name, priority, tags, _qualname(fn))
        except BaseException:
            call.close()  # refused before it started: the coroutine is ours
            raise

    def spawn_nowait(
        self,
        coro: Coroutine[Any, Any, _T] | Awaitable[_T],
        name: str | None = None,
        *,
        priority: Priority | int | str = Priority.NORMAL,
        tags: Collection[str] = (),
        loop: str | None = None,
        delay: float | timedelta | None = None,
        start_at: float | datetime | None = None,
    ) -> Job[_T]:
        """``spawn()`` without waiting: usable from callbacks and plain functions.

        The job starts now or joins the pending list, as with ``spawn()``; where
        ``spawn()`` would wait for a pending place, this raises
        :class:`SchedulerFullError` instead. Whatever the refusal, *coro* is
        closed (nothing is half-accepted). Must be called from the event loop's
        thread. *loop*, *delay* and *start_at* are as for ``spawn()``.
        """
        if delay is not None or start_at is not None:
            try:
                later = self._spawn_later(
                    coro, name, priority, tags, loop, delay, start_at
                )
            except BaseException:
                if inspect.iscoroutine(coro):
                    coro.close()
                raise
            if later is not None:
                return later
        label = None
        if loop is None:
            coro, prio, tags = _checked(coro, name, priority, tags)
        else:
            hop, prio, tags = self._hop(loop, coro, name, priority, tags)
            coro, label = hop, hop.label
        try:
            job = self._try_spawn(coro, name, prio, tags, label, None)
        except BaseException:
            coro.close()
            raise
        if job is None:
            coro.close()
            what = name or getattr(coro, "__qualname__", "job")
            raise SchedulerFullError(
                f"cannot spawn {what!r} without waiting: the pending list is full "
                f"(pending_limit={self._pending_limit}); await spawn() instead"
            )
        return job

    # -- delayed spawns ----------------------------------------------------------------

    def _spawn_later(
        self,
        coro: Coroutine[Any, Any, _T] | Awaitable[_T],
        name: str | None,
        priority: Priority | int | str,
        tags: Collection[str],
        loop: str | None,
        delay: float | timedelta | None,
        start_at: float | datetime | None,
    ) -> Job[_T] | None:
        """Schedule a job due after *delay* / at *start_at*; ``None`` (nothing
        done) when that time has already come: then spawn it as usual."""
        try:
            due = self._due_time(delay, start_at)
        except BaseException:
            if inspect.iscoroutine(coro):
                coro.close()  # a bad argument: as with the other checks
            raise
        if due <= self._clock.time():
            return None
        label = None
        if loop is None:
            coro, prio, tags = _checked(coro, name, priority, tags)
        else:
            hop, prio, tags = self._hop(loop, coro, name, priority, tags)
            coro, label = hop, hop.label
        if self._closed or (self._draining and not self._drain_admits()):
            if loop is not None:
                coro.close()
            self._refuse(coro)
        bound = self._loop
        if bound is not asyncio.get_running_loop():
            bound = self._bind(coro)
        job = Job(coro, self, bound, name, prio, tags, label, bound.get_debug(), None)
        job._schedule()
        self._jobs[job._seq] = job
        self._scheduled[job] = due
        group = self._due.get(due)
        if group is None:
            self._due[due] = [job]
            self._due_timers[due] = self._clock.call_at(
                due, functools.partial(self._fire_due, due)
            )
        else:
            group.append(job)
        if self._listeners:
            self._emit(EventKind.CREATED, job)
        return job

    def _due_time(
        self, delay: float | timedelta | None, start_at: float | datetime | None
    ) -> float:
        if delay is not None and start_at is not None:
            raise ConfigError(
                f"give delay or start_at, not both (delay={delay!r}, "
                f"start_at={start_at!r})"
            )
        if delay is not None:
            return self._clock.time() + check_duration("delay", delay)
        if isinstance(start_at, datetime):
            return check_datetime("start_at", start_at).timestamp()
        return check_timestamp("start_at", start_at)

    def _fire_due(self, due: float) -> None:
        """The clock reached *due*: its jobs start or join the pending list, in
        priority order."""
        self._due_timers.pop(due, None)
        jobs = self._due.pop(due, None)
        if not jobs:
            return
        arm = self._start_warning is not None or self._start_critical is not None
        for job in sorted(jobs, key=_by_priority):
            del self._scheduled[job]
            job._due()
            if job._priority is _CRITICAL:
                self._start(job)
                continue
            self._pending[job._priority].append(job)
            self._pending_count += 1
            if arm:
                self._arm_start_timer(job)
        if self._pending_count:
            self._start_pending()

    def _unschedule(self, job: Job[Any]) -> None:
        due = self._scheduled.pop(job)
        group = self._due[due]
        group.remove(job)
        if not group:
            del self._due[due]
            timer = self._due_timers.pop(due, None)
            if timer is not None:
                timer.cancel()

    def _hop(
        self,
        loop: object,
        coro: Coroutine[Any, Any, _T] | Awaitable[_T],
        name: str | None,
        priority: Priority | int | str,
        tags: Collection[str],
    ) -> tuple[Hop[_T], Priority, tuple[str, ...]]:
        """The checked arguments of a spawn on the isolated loop *loop*, its
        coroutine wrapped to run there (see ``loops.py``)."""
        checked, prio, checked_tags = _checked(coro, name, priority, tags)
        if self._closed:  # before a loop is started for nothing
            checked.close()  # unlike spawn() without a loop: nothing to hand back
            self._refuse(checked)
        return self._loops.hop(loop, checked), prio, checked_tags

    async def _spawn(
        self,
        coro: Coroutine[Any, Any, _T] | Awaitable[_T],
        name: str | None,
        priority: Priority | int | str,
        tags: Collection[str],
        label: str | None,
    ) -> Job[_T]:
        coro, prio, tags = _checked(coro, name, priority, tags)
        return self._try_spawn(
            coro, name, prio, tags, label, None
        ) or await self._wait_and_spawn(coro, name, prio, tags, label, None)

    def _try_spawn(
        self,
        coro: Coroutine[Any, Any, _T],
        name: str | None,
        priority: Priority,
        tags: tuple[str, ...],
        label: str | None,
        callback: Callable[[Job[_T]], object] | None,
    ) -> Job[_T] | None:
        """Start or queue a job now; ``None`` (and *coro* untouched) where it
        would have to wait for a pending place: then ``_wait_and_spawn()``.
        A refusal (closed, draining, another event loop) raises and leaves *coro*
        untouched too, for its owner to close or await (as aiojobs does).

        The spawning path shared by every ``spawn*()`` method, and the entry for
        the package's orchestrators (workflows, tasks): arguments come checked,
        and *callback* becomes the job's first done callback before it starts.
        """
        if self._closed or (self._draining and not self._drain_admits()):
            self._refuse(coro)
        loop = self._loop
        if loop is not asyncio.get_running_loop():
            loop = self._bind(coro)
        slot = self._has_slot(priority)
        if not slot and self.full:
            return None
        job = Job(
            coro, self, loop, name, priority, tags, label, loop.get_debug(), callback
        )
        self._admit(job, slot)
        return job

    async def _wait_and_spawn(
        self,
        coro: Coroutine[Any, Any, _T],
        name: str | None,
        priority: Priority,
        tags: tuple[str, ...],
        label: str | None,
        callback: Callable[[Job[_T]], object] | None,
    ) -> Job[_T]:
        """The rest of a spawn that ``_try_spawn()`` could not place: wait for a
        pending place, then start or queue the job."""
        loop = self._loop
        assert loop is not None  # bound by _try_spawn()
        job = Job(
            coro, self, loop, name, priority, tags, label, loop.get_debug(), callback
        )
        await self._wait_for_space(job)
        if self._closed:  # granted a place, then close() began before we resumed
            job._drop()
            raise _closed_while_waiting()
        slot = self._has_slot(priority)
        self._admit(job, slot)
        if slot and self._space_waiters:
            # The pending place promised to this spawn went unused (the job found
            # a free slot meanwhile): pass it on, or the next waiter never wakes.
            self._grant_space()
        return job

    def _has_slot(self, priority: Priority) -> bool:
        caps = self._caps
        return (
            caps is None or priority is _CRITICAL or self._active_count < caps[priority]
        )

    def _admit(self, job: Job[Any], slot: bool) -> None:
        """Start *job* if a *slot* is free for its priority, else queue it."""
        self._jobs[job._seq] = job
        if slot:
            self._start(job, created=True)
        else:
            self._enqueue(job)

    def _refuse(self, coro: Coroutine[Any, Any, Any]) -> NoReturn:
        state = "closed" if self._closed else "draining (shutting down)"
        raise SchedulerClosedError(
            f"cannot spawn a job: the scheduler is {state}; spawn before "
            "drain(), close() or wait_and_close()"
        )

    def _bind(self, coro: Coroutine[Any, Any, Any]) -> asyncio.AbstractEventLoop:
        """Bind to the running loop on the first spawn; refuse any other loop."""
        if self._loop is not None:
            raise RuntimeError(f"{self!r} is bound to a different event loop")
        loop = self._loop = asyncio.get_running_loop()
        if self._loops.declared:
            self._loops.start_declared()
        return loop

    def _enqueue(self, job: Job[Any]) -> None:
        self._pending[job._priority].append(job)
        self._pending_count += 1
        if self._start_warning is not None or self._start_critical is not None:
            self._arm_start_timer(job)
        if self._listeners:
            self._emit(EventKind.CREATED, job)

    async def _wait_for_space(self, job: Job[Any]) -> None:
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._space_waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # A place was promised to us; hand it to the next in line.
                self._reserved -= 1
                self._grant_space()
            elif fut in self._space_waiters:
                # Cancelled while waiting (then *fut* is cancelled too): leave
                # the line, or ``full`` would count a waiter that is gone.
                self._space_waiters.remove(fut)
            job._drop()
            raise
        self._reserved -= 1

    def _grant_space(self) -> None:
        limit = self._pending_limit or _NO_CAP  # 0: unbounded
        waiters = self._space_waiters
        while waiters and self._pending_count + self._reserved < limit:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._reserved += 1

    def _start(self, job: Job[Any], *, created: bool = False) -> None:
        self._active_count += 1
        job._start()
        if self._on_started:
            for hook in self._on_started:
                hook(job)
        if self._listeners:
            if created:
                self._emit(EventKind.CREATED, job)
            self._emit(EventKind.STARTED, job)

    def _start_pending(self) -> None:
        caps = self._caps
        pending = self._pending
        for prio in _PENDING_ORDER:
            queue = pending[prio]
            cap = _NO_CAP if caps is None else caps[prio]
            while queue and self._active_count < cap:
                job = queue.popleft()
                self._pending_count -= 1
                if job._timer is not None:
                    job._timer.cancel()
                    job._timer = None
                self._start(job)
        if self._space_waiters:
            self._grant_space()

    # -- callbacks from jobs (the JobOwner protocol) ----------------------------------

    def _job_finished(self, job: Job[Any]) -> None:
        # Every started job ends here once, also one that outlived close() (which
        # no longer lists it): it stops counting as active only now.
        self._active_count -= 1
        self._jobs.pop(job._seq, None)
        self._history.append(job)
        if self._on_finished:
            for hook in self._on_finished:
                hook(job)
        if self._listeners:  # before the jobs its slot lets start
            self._emit(EventKind.FINISHED, job)
        if self._pending_count:
            self._start_pending()
        if self._idle_waiter is not None:
            self._maybe_idle()

    def _job_dropped(self, job: Job[Any]) -> None:
        """A pending (or scheduled) job was closed: it leaves without starting."""
        if self._jobs.pop(job._seq, None) is not None:
            if job.scheduled:
                self._unschedule(job)
            else:
                self._pending[job._priority].remove(job)
                self._pending_count -= 1
        job._drop()
        self._history.append(job)
        if self._on_finished:
            for hook in self._on_finished:
                hook(job)
        if self._space_waiters:
            self._grant_space()
        if self._listeners:
            self._emit(EventKind.FINISHED, job)
        if self._idle_waiter is not None:
            self._maybe_idle()

    def _job_progressed(self, job: Job[Any]) -> None:
        if self._listeners:
            self._emit(EventKind.PROGRESS, job)

    def _emit(self, kind: EventKind, job: Job[Any]) -> None:
        self._events.emit(JobEvent(kind, job, time.time()))

    # -- start timeouts -------------------------------------------------------------

    def _arm_start_timer(self, job: Job[Any]) -> None:
        assert self._loop is not None
        first = self._start_warning if self._start_warning is not None else None
        level = "warning"
        if first is None:
            first, level = self._start_critical, "critical"
        assert first is not None
        job._timer = self._loop.call_later(first, self._start_timed_out, job, level)

    def _start_timed_out(self, job: Job[Any], level: str) -> None:
        job._timer = None
        if not job.pending:
            return
        waited = time.time() - job.created_at
        log = jobs_logger.warning if level == "warning" else jobs_logger.error
        log(
            "%r has waited %.3f s to start (start_timeout_%s); "
            "active=%d pending=%d limit=%s",
            job,
            waited,
            level,
            self._active_count,
            self._pending_count,
            self._limit,
            extra=job_extra(job),
        )
        if self._on_start_timeout is not None:
            try:
                self._on_start_timeout(job, level)
            except Exception as exc:
                self.call_exception_handler(
                    {
                        "message": "on_start_timeout handler failed",
                        "job": job,
                        "exception": exc,
                    }
                )
        if level == "warning" and self._start_critical is not None:
            assert self._loop is not None and self._start_warning is not None
            job._timer = self._loop.call_later(
                self._start_critical - self._start_warning,
                self._start_timed_out,
                job,
                "critical",
            )

    # -- shielding --------------------------------------------------------------------

    def shield(self, arg: Awaitable[_T]) -> asyncio.Future[_T]:
        """Protect *arg* from the caller's cancellation; ``wait_and_close()``
        waits for it and ``close()`` cancels it (aiojobs)."""
        if not inspect.isawaitable(arg) or _is_plain_generator(arg):
            raise NotAwaitableError(
                f"shield() expected an awaitable as arg, got "
                f"{type(arg).__qualname__}: {arg!r:.60}"
            )
        inner = asyncio.ensure_future(arg)
        if inner.done():
            return inner
        self._shields.add(inner)
        inner.add_done_callback(self._shield_done)
        return asyncio.shield(inner)

    def _shield_done(self, fut: asyncio.Future[Any]) -> None:
        self._shields.discard(fut)
        if not fut.cancelled():
            fut.exception()  # retrieved here: the shielded caller gets it, if any
        if self._idle_waiter is not None:
            self._maybe_idle()

    # -- closing ----------------------------------------------------------------------

    def _maybe_idle(self) -> None:
        # Nothing runs or waits for a slot: only jobs scheduled for later (if
        # any) are left, so a bounded wait_idle() can tell whether they are due
        # before its deadline.
        if not self._shields and len(self._jobs) == len(self._scheduled):
            self._set_idle()

    def _only_scheduled_after(self, remaining: float) -> bool:
        """Whether every job left is scheduled to start more than *remaining*
        seconds from now (so waiting that long would not see it run)."""
        scheduled = self._scheduled
        if self._shields or len(scheduled) != len(self._jobs):
            return False
        due_by = self._clock.time() + remaining
        return all(due > due_by for due in scheduled.values())

    def _set_idle(self) -> None:
        waiter = self._idle_waiter
        self._idle_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is active or pending and nothing is shielded.

        Returns ``False`` if *timeout* passed first. Jobs spawned meanwhile are
        waited for too. Delayed jobs are waited for if they are due within
        *timeout*; when only jobs due later are left, this returns ``False`` at
        once instead of waiting for a deadline they will not meet.
        """
        timeout = check_timeout("timeout", timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._jobs or self._shields:
            if self._idle_waiter is None:
                self._idle_waiter = loop.create_future()
            waiter = self._idle_waiter
            if deadline is None:
                await asyncio.shield(waiter)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or self._only_scheduled_after(remaining):
                return False
            done, _ = await asyncio.wait((waiter,), timeout=remaining)
            if not done:
                return False
        return True

    async def wait_and_close(self, timeout: float | None = None) -> None:
        """Wait up to *timeout* (default ``wait_timeout``) for every job, then close."""
        timeout = check_timeout("timeout", timeout)
        if timeout is None:
            timeout = self._wait_timeout
        await self.wait_idle(timeout)
        await self.close()

    async def close(self) -> None:
        """Stop accepting jobs, drop pending ones and cancel the running ones,
        waiting up to ``close_timeout`` for them; then shut the pools down."""
        if self._closed:
            return
        self._closed = True
        closed_error = _closed_while_waiting()
        while self._space_waiters:
            fut = self._space_waiters.popleft()
            if not fut.done():
                fut.set_exception(closed_error)
        for job in list(self._scheduled):
            self._unschedule(job)
            self._retire(job)
        for queue in self._pending:
            while queue:
                job = queue.popleft()
                self._pending_count -= 1
                self._retire(job)
        running: list[Job[Any]] = []
        try:
            if self._jobs:
                # As with aiojobs, a job spawned just before close() runs to its
                # first await (so one that fails at once is reported), then is
                # cancelled.
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    self._cancel_running()
                    raise
            running = self._cancel_running()
            waiting: set[asyncio.Future[Any]] = set(self._shields)
            for job in running:
                assert job._run_task is not None
                waiting.add(job._run_task)
            for fut in self._shields:
                fut.cancel()
            if waiting:
                await asyncio.wait(waiting, timeout=self._close_timeout)
            for job in running:
                if not job.done and not job._explicit:
                    job._report("Job closing timed out", TimeoutError())
        finally:
            self._jobs.clear()
            self._pools.shutdown()
            self._set_idle()
            self._events.close()  # readers of events.stream() return now
            await self._loops.close(self._close_timeout)

    def _retire(self, job: Job[Any]) -> None:
        """Drop a job that never started, at close."""
        self._jobs.pop(job._seq, None)
        job._drop()
        self._history.append(job)
        if self._on_finished:
            for hook in self._on_finished:
                hook(job)
        if self._listeners:
            self._emit(EventKind.FINISHED, job)

    def _cancel_running(self) -> list[Job[Any]]:
        """Cancel every running job (marking it closed); returns them."""
        running = [job for job in self._jobs.values() if job._run_task is not None]
        for job in running:
            job._closed = True
            task = job._run_task
            assert task is not None
            task.cancel()
        return running

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Pass *context* to the ``exception_handler``; without one, log it.

        With no ``exception_handler``, the report goes to the event loop's own
        exception handler if the application set one
        (``loop.set_exception_handler()``, as aiojobs does), else it is logged
        as an error on the ``aiohttp_jobs.jobs`` logger with the job's
        ``job_id`` and ``job_name`` (not on asyncio's logger).

        A handler that raises is logged with the report it failed on; it
        changes nothing else (the job, its waiters, ``close()`` carry on).
        """
        if not isinstance(context, dict):
            raise ConfigTypeError(
                f"context must be a dict such as {{'message': ...}}, got {context!r}"
            )
        if self._exception_handler is None:
            loop = asyncio.get_running_loop()
            if loop.get_exception_handler() is not None:
                loop.call_exception_handler(context)
            else:
                _log_report(context)
            return
        try:
            self._exception_handler(self, context)
        except Exception:
            logger.exception(
                "exception_handler %r failed on %r (job %r, exception %r)",
                self._exception_handler,
                context.get("message"),
                context.get("job"),
                context.get("exception"),
            )


def _log_report(context: dict[str, Any]) -> None:
    """The default report of a job's failure: one error record on
    ``aiohttp_jobs.jobs`` (what asyncio's default handler would have logged)."""
    job = context.get("job")
    exc = context.get("exception")
    lines = [str(context.get("message") or "Unhandled error in a job")]
    if job is not None:
        lines.append(f"job: {job!r}")
    for key, value in context.items():
        if key not in {"message", "job", "exception", "source_traceback"}:
            lines.append(f"{key}: {value!r}")
    source = context.get("source_traceback")
    if source:
        lines.append("Job created at (most recent call last):")
        lines.append("".join(traceback.format_list(source)).rstrip())
    jobs_logger.error(
        "\n".join(lines),
        exc_info=exc if isinstance(exc, BaseException) else None,
        extra=job_extra(job) if isinstance(job, Job) else {},
    )


def _closed_while_waiting() -> SchedulerClosedError:
    return SchedulerClosedError(
        "the scheduler was closed while spawn() waited for a pending place"
    )


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _check_blocking(method: str, fn: object) -> None:
    if not callable(fn):
        raise NotAwaitableError(
            f"{method}() expected a function as fn, got {type(fn).__qualname__}: "
            f"{fn!r:.60}"
        )
    if inspect.iscoroutinefunction(fn):
        raise NotAwaitableError(
            f"{method}() runs blocking functions; {_qualname(fn)} is a coroutine "
            f"function: use spawn({_qualname(fn)}(...)) instead"
        )


class _BoundLoop:
    """What ``Scheduler._failed_task`` shows: only ``get_loop()``."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop


async def create_scheduler(
    *,
    close_timeout: float | None = 0.1,
    limit: int | None = 100,
    pending_limit: int = 10000,
    exception_handler: ExceptionHandler | None = None,
) -> Scheduler:
    """Deprecated (as in aiojobs 1.1 and later): build a :class:`Scheduler`
    directly. Kept so that code written for aiojobs runs unchanged; it warns
    with a :class:`DeprecationWarning` and takes aiojobs' four options."""
    warnings.warn(
        "Scheduler can now be instantiated directly.", DeprecationWarning, stacklevel=2
    )
    return Scheduler(
        close_timeout=close_timeout,
        limit=limit,
        pending_limit=pending_limit,
        exception_handler=exception_handler,
    )


def _checked(
    coro: Coroutine[Any, Any, _T] | Awaitable[_T],
    name: str | None,
    priority: Priority | int | str,
    tags: Collection[str],
) -> tuple[Coroutine[Any, Any, _T], Priority, tuple[str, ...]]:
    """The arguments of a public ``spawn*()`` in the form ``_try_spawn()`` takes.

    A coroutine handed over with a bad argument is closed (no "coroutine was
    never awaited" warning); one that already ran or belongs to a job is left
    alone, it is not ours.
    """
    if type(coro) is not CoroutineType:
        coro = _as_coroutine(coro)
    elif coroutine_in_use(coro):
        raise NotAwaitableError(
            f"coro {coro!r} was already spawned, or is being awaited: a "
            "coroutine runs once; create a new one for each spawn()"
        )
    try:
        if name is not None:
            check_name("name", name)
        if type(priority) is not Priority:
            priority = parse_priority(priority)
        checked_tags: tuple[str, ...] = (
            () if type(tags) is tuple and not tags else check_tags("tags", tags)
        )
    except Exception:
        coro.close()  # refused: no "coroutine was never awaited" warning
        raise
    return coro, priority, checked_tags


def _is_plain_generator(obj: object) -> bool:
    """A generator that is not a generator-based coroutine: not awaitable,
    although ``asyncio.iscoroutine()`` says yes to it before Python 3.12."""
    return inspect.isgenerator(obj) and not inspect.isawaitable(obj)


def _as_coroutine(aw: object) -> Coroutine[Any, Any, Any]:
    if _is_plain_generator(aw):
        raise NotAwaitableError(
            f"spawn() expected a coroutine as coro, got the generator {aw!r:.60}: "
            "define the function with 'async def'"
        )
    if asyncio.iscoroutine(aw):  # a coroutine of another type (Cython, ...)
        return aw
    if inspect.isawaitable(aw):
        return _await(aw)
    if inspect.iscoroutinefunction(aw):
        raise NotAwaitableError(
            f"spawn() expected a coroutine as coro, got the coroutine function "
            f"{_qualname(aw)}: call it, spawn({_qualname(aw)}(...))"
        )
    raise NotAwaitableError(
        f"spawn() expected a coroutine or another awaitable as coro, got "
        f"{type(aw).__qualname__}: {aw!r:.60}"
    )

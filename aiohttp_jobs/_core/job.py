"""Job: one unit of work owned by a scheduler.

A job wraps exactly one coroutine, run in exactly one :class:`asyncio.Task` that is
created only when the scheduler grants the job a slot. Besides the aiojobs
contract (``wait``, ``close``, ``active``, ``pending``, ``closed``) every job has an
id, a state, timings, a result, progress and tags.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import gc
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from types import CoroutineType
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from .._checks import (
    check_callable,
    check_name,
    check_number,
    check_text,
    check_timeout,
)
from .._errors import JobNotFinishedError, NoCurrentJobError
from .ids import IdSpace
from .priority import Priority

__all__ = ["Job", "JobState", "Progress", "current_job"]

_T = TypeVar("_T", covariant=True)

#: Job ids: a random prefix per process (a new one in each forked child) and a
#: process-wide counter.
_IDS = IdSpace(prefix_bytes=4)


_current: contextvars.ContextVar[Job[Any] | None] = contextvars.ContextVar(
    "aiohttp_jobs.current_job", default=None
)


def current_job() -> Job[Any]:
    """The job whose code is running now (also inside its threads and sub-tasks).

    Raises :class:`NoCurrentJobError` outside of a job.
    """
    job = _current.get()
    if job is None:
        raise NoCurrentJobError(
            "current_job() was called outside of a job: only code run by "
            "Scheduler.spawn() (or spawn_in_thread()) has a current job"
        )
    return job


#: The ids of the coroutines that jobs hold, from spawn until the job ends. Ids
#: alone (an int and a set slot per live job): an id left by a job that never
#: ended (its event loop dropped) may come back for a new coroutine, which
#: ``coroutine_in_use()`` then tells apart on that rare path.
_held: set[int] = set()
#: Coroutines an isolated loop runs for a job (see ``loops.py``), by id, from
#: spawn until that work ends: the job holds a hop, not the coroutine itself.
_lent: dict[int, Coroutine[Any, Any, Any]] = {}


def coroutine_in_use(coro: CoroutineType[Any, Any, Any]) -> bool:
    """Whether *coro* belongs to a job or has started (it waits in an await):
    such a coroutine cannot be spawned (again).

    One that already finished or was closed is not told apart from a new one:
    that takes its frame (``cr_frame``), which costs every spawn a frame
    object; its job fails at once with asyncio's "cannot reuse already awaited
    coroutine".
    """
    if coro.cr_await is not None:
        return True
    key = id(coro)
    if _lent and _lent.get(key) is coro:
        return True
    if key not in _held:
        return False
    # A refusal, or an id left behind: ask the collector whether a job holds
    # this very coroutine (slow, but never on the path of a valid spawn that
    # has an id of its own).
    if any(
        type(holder) is Job and holder._coro is coro
        for holder in gc.get_referrers(coro)
    ):
        return True
    _held.discard(key)
    return False


def running_job() -> Job[Any] | None:
    """The job whose code is running now, or ``None`` outside of a job."""
    return _current.get()


def seq_from_id(job_id: str) -> int | None:
    """The sequence number encoded in an id of this process, else ``None``."""
    return _IDS.parse(job_id)


class JobState(str, enum.Enum):
    """Where a job is in its life. The last three are final."""

    SCHEDULED = "scheduled"  #: spawned with a delay that has not passed yet
    PENDING = "pending"  #: waiting for a free slot
    RUNNING = "running"  #: its task is running
    SUCCEEDED = "succeeded"  #: returned a value
    FAILED = "failed"  #: raised an exception
    CANCELLED = "cancelled"  #: closed or cancelled before it finished

    def __str__(self) -> str:
        return self.value

    @property
    def final(self) -> bool:
        return self is not _PENDING and self is not _RUNNING and self is not _SCHEDULED


_SCHEDULED = JobState.SCHEDULED
_PENDING = JobState.PENDING
_RUNNING = JobState.RUNNING
_SUCCEEDED = JobState.SUCCEEDED
_FAILED = JobState.FAILED
_CANCELLED = JobState.CANCELLED
_FINAL = frozenset((_SUCCEEDED, _FAILED, _CANCELLED))


class Progress(NamedTuple):
    """Progress a job reported: *done* out of *total* (if known), and a message."""

    done: float = 0.0
    total: float | None = None
    message: str | None = None

    @property
    def fraction(self) -> float | None:
        """``done / total`` clamped to 0..1, or ``None`` when the total is unknown."""
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


class JobOwner(Protocol):
    """What a job needs from the scheduler that owns it."""

    @property
    def close_timeout(self) -> float | None: ...

    def call_exception_handler(self, context: dict[str, Any]) -> None: ...

    def _job_finished(self, job: Job[Any]) -> None: ...

    def _job_dropped(self, job: Job[Any]) -> None: ...

    def _job_progressed(self, job: Job[Any]) -> None: ...


def _resolve_false(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


class Job(Generic[_T]):
    """A coroutine run by a :class:`~aiohttp_jobs.Scheduler`.

    Jobs are created by ``Scheduler.spawn()``; do not instantiate them directly.
    """

    __slots__ = (
        "__weakref__",
        "_callback",
        "_callbacks",
        "_closed",
        "_coro",
        "_created_at",
        "_exception",
        "_explicit",
        "_finished_at",
        "_label",
        "_loop",
        "_name",
        "_owner",
        "_priority",
        "_progress",
        "_result",
        "_run_task",
        "_seq",
        "_source_traceback",
        "_started_at",
        "_state",
        "_tags",
        "_task_name",
        "_timer",
        "_waiters",
    )

    def __init__(
        self,
        coro: Coroutine[Any, Any, _T],
        owner: JobOwner,
        loop: asyncio.AbstractEventLoop,
        name: str | None,
        priority: Priority,
        tags: tuple[str, ...],
        label: str | None,
        debug: bool,
        callback: Callable[[Job[_T]], object] | None,
        /,
    ) -> None:
        # Positional and flat: this runs once per job, on the hot path.
        self._coro: Coroutine[Any, Any, _T] | None = coro
        _held.add(id(coro))
        self._owner = owner
        self._loop = loop
        self._name = name
        self._label = label
        self._priority = priority
        self._tags = tags
        self._seq = _IDS.next_seq()
        self._state = _PENDING
        self._run_task: asyncio.Task[_T] | None = None
        self._closed = False
        self._explicit = callback is not None  # see add_done_callback()
        self._created_at = time.time()
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._progress: Progress | None = None
        self._waiters: list[asyncio.Future[bool]] | None = None
        # The first done callback has a slot of its own (most jobs have one at
        # most), later ones go to a list.
        self._callback = callback
        self._callbacks: list[Callable[[Job[_T]], object]] | None = None
        self._result: _T | None = None
        self._exception: BaseException | None = None
        self._task_name: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._source_traceback = (
            traceback.extract_stack(sys._getframe(3)) if debug else None
        )

    def __repr__(self) -> str:
        closed = "closed " if self._closed else ""  # aiojobs shows "closed"
        return f"<Job {self.name!r} {closed}{self._state.value} id={self.id}>"

    # -- identity ---------------------------------------------------------------

    @property
    def id(self) -> str:
        """Unique, URL-safe identifier (unique across processes too)."""
        return _IDS.format(self._seq)

    @property
    def name(self) -> str:
        """The name given at spawn, else the coroutine's qualified name."""
        if self._name is not None:
            return self._name
        if self._label is not None:
            return self._label
        return getattr(self._coro, "__qualname__", None) or "job"

    @property
    def _task(self) -> asyncio.Task[_T] | _FinishedTask | None:
        """aiojobs compatibility: aiojobs' ``Job._task``, which code and tests
        written for aiojobs read. A finished job has dropped its task (to keep
        finished jobs small); it answers with a stand-in that is ``done()``."""
        task = self._run_task
        if task is None and self._state in _FINAL:
            return _FinishedTask(self)
        return task

    def get_name(self) -> str | None:
        """The task's name (aiojobs): the given name, ``None`` before the start
        of an unnamed job, asyncio's ``Task-N`` after it."""
        if self._run_task is not None:
            return self._run_task.get_name()
        return self._name if self._task_name is None else self._task_name

    def set_name(self, name: str) -> None:
        check_name("name", name)
        self._name = name
        self._task_name = None
        if self._run_task is not None:
            self._run_task.set_name(name)

    @property
    def priority(self) -> Priority:
        return self._priority

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    # -- state ------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def active(self) -> bool:
        """Started and not closed (aiojobs)."""
        return not self._closed and self._run_task is not None

    @property
    def pending(self) -> bool:
        """Waiting for a slot and not closed (aiojobs)."""
        return self._run_task is None and not self._closed

    @property
    def scheduled(self) -> bool:
        """Spawned with a delay (``delay=`` / ``start_at=``) that has not passed:
        also ``pending``, but not in the pending list and not counted in
        ``pending_count`` (see ``Scheduler.scheduled_count``)."""
        return self._state is _SCHEDULED

    @property
    def closed(self) -> bool:
        """Finished, or asked to close (aiojobs)."""
        return self._closed

    @property
    def done(self) -> bool:
        """Reached a final state: succeeded, failed or cancelled."""
        return self._state.final

    @property
    def created_at(self) -> float:
        """When it was spawned (``time.time()`` seconds)."""
        return self._created_at

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @property
    def finished_at(self) -> float | None:
        return self._finished_at

    @property
    def duration(self) -> float | None:
        """Seconds it ran (so far, if still running); ``None`` if it never started."""
        if self._started_at is None:
            return None
        end = self._finished_at if self._finished_at is not None else time.time()
        return end - self._started_at

    def result(self) -> _T:
        """The return value; raises the job's exception, or ``CancelledError``."""
        state = self._state
        if state is _SUCCEEDED:
            return self._result  # type: ignore[return-value]
        self._check_final()
        if self._exception is None:
            raise asyncio.CancelledError()
        raise self._exception

    def exception(self) -> BaseException | None:
        """The exception the job raised, ``None`` if it succeeded.

        Raises ``CancelledError`` for a cancelled job, like ``Future.exception()``.
        """
        self._check_final()
        if self._state is _CANCELLED:
            raise asyncio.CancelledError()
        return self._exception

    def _check_final(self) -> None:
        if not self._state.final:
            raise JobNotFinishedError(
                f"{self!r} has not finished: await job.wait() before reading its result"
            )

    # -- progress ---------------------------------------------------------------

    @property
    def progress(self) -> Progress | None:
        """The last progress reported, ``None`` if the job never reported any."""
        return self._progress

    def set_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress; safe to call from the job's worker thread as well.

        *done* is a finite number >= 0, *total* ``None`` (unknown) or a finite
        number > 0; anything else raises :class:`~aiohttp_jobs.ConfigError`.
        """
        progress = Progress(
            check_number("done", done, minimum=0.0),
            None if total is None else check_number("total", total, above=0.0),
            check_text("message", message, optional=True),
        )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._store_progress(progress)
        else:
            self._loop.call_soon_threadsafe(self._store_progress, progress)

    def _store_progress(self, progress: Progress) -> None:
        if self._state.final:
            return
        self._progress = progress
        self._owner._job_progressed(self)

    # -- outcome notification ---------------------------------------------------

    def add_done_callback(self, callback: Callable[[Job[_T]], object]) -> None:
        """Call ``callback(job)`` once the job is final (at once if it already is).

        The caller takes responsibility for the outcome: a failure of this job is
        no longer passed to the scheduler's exception handler.
        """
        check_callable("callback", callback)
        self._explicit = True
        if self._state.final:
            self._loop.call_soon(callback, self)
        elif self._callback is None:
            self._callback = callback
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    async def _wait_final(self, timeout: float | None) -> bool:
        """Wait until the job is final; ``False`` if *timeout* passed first.

        Cancelling the caller cancels only this wait, never the job.
        """
        if self._state.final:
            return True
        fut: asyncio.Future[bool] = self._loop.create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        timer = (
            None
            if timeout is None
            else self._loop.call_later(timeout, _resolve_false, fut)
        )
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            if not self._state.final:
                self._waiters.remove(fut)

    # -- aiojobs contract -------------------------------------------------------

    async def wait(self, *, timeout: float | None = None) -> _T:
        """Wait for the job and return its result (or raise its exception).

        If *timeout* passes first, the job is closed and ``TimeoutError`` raised.
        Cancelling the waiting task propagates to it and leaves the job running.
        """
        timeout = check_timeout("timeout", timeout)
        if not self._closed:
            self._explicit = True
        if not await self._wait_final(timeout):
            await self._close(self._owner.close_timeout)
            raise TimeoutError(
                f"{self!r} did not finish within {timeout} seconds and was closed"
            )
        return self.result()

    async def close(self, *, timeout: float | None = None) -> None:
        """Cancel the job and wait up to *timeout* (default: the scheduler's
        ``close_timeout``) for it to finish.

        Raises ``TimeoutError`` if it did not, and re-raises an exception other
        than cancellation that the job ended with. Cancelling the caller
        propagates to it (the job is cancelled regardless).
        """
        timeout = check_timeout("timeout", timeout)
        if self._closed:
            return
        self._explicit = True
        if timeout is None:
            timeout = self._owner.close_timeout
        await self._close(timeout)

    async def _close(self, timeout: float | None) -> None:
        self._closed = True
        task = self._run_task
        if task is None:
            if not self._state.final:
                self._owner._job_dropped(self)
            return
        # A task that already ended but whose outcome is not recorded yet (that
        # happens one loop turn later, as with aiojobs) is waited for too: an
        # explicit close() then claims its failure (raised here, not reported).
        task.cancel()
        if not await self._wait_final(timeout):
            if self._explicit:
                raise TimeoutError(
                    f"{self!r} did not finish within {timeout} seconds of being closed"
                )
            self._report("Job closing timed out", TimeoutError())
            return
        exc = self._exception
        if exc is not None and self._explicit:
            raise exc

    # -- driven by the scheduler -------------------------------------------------

    def _start(self) -> None:
        coro = self._coro
        assert coro is not None and self._run_task is None
        self._state = _RUNNING
        self._started_at = time.time()
        # The task runs in a context of its own in which current_job() is this
        # job; the done callback runs in it too, so _task_done() finds the job
        # with no bound method or lookup table per job.
        ctx = contextvars.copy_context()
        ctx.run(_current.set, self)
        task = self._loop.create_task(coro, name=self._name, context=ctx)
        task.add_done_callback(_task_done, context=ctx)
        self._run_task = task

    def _schedule(self) -> None:
        """Spawned with a delay: scheduled until the scheduler calls ``_due()``."""
        self._state = _SCHEDULED

    def _due(self) -> None:
        """Its delay has passed: from now on it is an ordinary pending job."""
        self._state = _PENDING

    def _drop(self) -> None:
        """Finish a job that never started: it counts as cancelled."""
        self._closed = True
        self._state = _CANCELLED
        self._finished_at = time.time()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        coro = self._release()
        if coro is not None:
            coro.close()  # never started: avoid "coroutine was never awaited"
        self._notify()

    def _finish(self, task: asyncio.Task[_T]) -> None:
        """Its task ended: record the outcome, tell the owner, notify."""
        self._finished_at = time.time()
        self._closed = True
        exc: BaseException | None = None
        if task.cancelled():
            self._state = _CANCELLED
        else:
            exc = task.exception()
            if exc is None:
                self._result = task.result()
                self._state = _SUCCEEDED
            else:
                self._exception = exc
                self._state = _FAILED
        if self._name is None:
            self._task_name = task.get_name()  # get_name() outlives the task
        self._run_task = None
        self._release()
        self._owner._job_finished(self)
        if exc is not None and not self._explicit:
            self._report("Job processing failed", exc)
        if self._waiters is not None or self._callback is not None:
            self._notify()

    def _release(self) -> Coroutine[Any, Any, _T] | None:
        """Let go of the coroutine (returned), keeping the name it gave the job:
        a finished job in the history or in a workflow holds no task, coroutine
        or context."""
        coro = self._coro
        if coro is not None:
            _held.discard(id(coro))
            if self._name is None and self._label is None:
                self._label = self.name
            self._coro = None
        return coro

    def _notify(self) -> None:
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)
        # Called directly, not through call_soon: this already runs as a loop
        # callback, and a workflow or task runner reacts one loop turn sooner.
        callback = self._callback
        if callback is not None:
            self._callback = None
            self._call(callback)
            callbacks = self._callbacks
            if callbacks is not None:
                self._callbacks = None
                for callback in callbacks:
                    self._call(callback)

    def _call(self, callback: Callable[[Job[_T]], object]) -> None:
        try:
            callback(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"Exception in done callback {callback!r} of {self!r}",
                    "exception": exc,
                    "job": self,
                }
            )

    def _report(self, message: str, exc: BaseException) -> None:
        context: dict[str, Any] = {"message": message, "job": self, "exception": exc}
        if self._source_traceback is not None:
            context["source_traceback"] = self._source_traceback
        self._owner.call_exception_handler(context)


class _FinishedTask:
    """What ``Job._task`` shows once the job has dropped its finished task."""

    __slots__ = ("_job",)

    def __init__(self, job: Job[Any]) -> None:
        self._job = job

    def __repr__(self) -> str:
        return f"<finished task of {self._job!r}>"

    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return self._job._state is _CANCELLED

    def get_name(self) -> str | None:
        return self._job.get_name()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._job._loop


def _task_done(task: asyncio.Task[Any]) -> None:
    """Done callback of every job's task; runs in the job's context (see
    ``Job._start``), which is how it finds the job."""
    job = _current.get()
    assert job is not None and job._run_task is task
    job._finish(task)

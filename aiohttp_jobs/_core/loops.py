"""Isolated event loops: named loops, each running in a thread of its own.

A job spawned with ``loop="name"`` stays a job of the main scheduler (its id, state,
limits, priority, history and events live there, on the main loop), but its
coroutine runs on the named loop. Work that sometimes blocks (a synchronous client
library, a burst of CPU) then stalls only that loop, never the one serving HTTP.

How a job crosses over (all of it through ``call_soon_threadsafe``):

- the job's task on the main loop runs a small driver, :func:`_drive`, which hands
  the coroutine to the isolated loop together with a copy of the job's context (so
  ``current_job()`` works there) and waits for the outcome on a main-loop future;
- on the isolated loop the coroutine becomes an ordinary task; when it ends, its
  outcome (result, exception or cancellation) is posted back to the main loop;
- cancelling the job's task cancels the remote task, and the driver keeps waiting
  until the remote task has really finished (its ``finally`` blocks have run), so
  ``job.close()`` and ``Scheduler.close()`` mean the same as for any other job.

A thread is not a daemon: the interpreter waits for it at exit, so a scheduler
that has isolated loops must be closed (``setup()`` does it with the application).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Collection, Coroutine, Generator, Iterator, Mapping
from typing import Any, Generic, TypeVar

from .._checks import check_name, check_strings
from .._errors import SchedulerClosedError
from .job import _lent

__all__ = ["IsolatedLoop", "IsolatedLoops", "check_loop_names"]

logger = logging.getLogger("aiohttp_jobs")

_T = TypeVar("_T")


def check_loop_names(name: str, value: object) -> tuple[str, ...]:
    """The ``loops=`` argument of ``Scheduler``: distinct, non-empty names."""
    return check_strings(name, value, what="loop names", unique=True)


class IsolatedLoop:
    """One named event loop, run by a thread of its own until it is stopped.

    Created and stopped by :class:`IsolatedLoops` (that is, by the scheduler);
    ``loop`` is there for code that must reach it directly, e.g.
    ``asyncio.run_coroutine_threadsafe(coro, isolated.loop)``.
    """

    __slots__ = (
        "_done",
        "_finished",
        "_lock",
        "_loop",
        "_name",
        "_stopping",
        "_thread",
    )

    def __init__(self, name: str) -> None:
        self._name = name
        # Created here, run and closed by the thread: nothing else touches it
        # except through call_soon_threadsafe().
        self._loop = asyncio.new_event_loop()
        self._stopping = False
        #: Resolved on the stopping loop's thread once this thread is done.
        self._finished: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None
        self._finished = None
        self._done = False  # the thread has closed the loop
        self._lock = threading.Lock()  # orders _done against _finished
        self._thread = threading.Thread(
            target=self._run, name=f"aiohttp-jobs loop {name!r}", daemon=False
        )

    def __repr__(self) -> str:
        if self._loop.is_closed():
            state = "closed"
        elif self._stopping:
            state = "stopping"
        else:
            state = "running"
        return f"<IsolatedLoop {self._name!r} {state}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop itself (use it only through its thread-safe methods)."""
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def running(self) -> bool:
        """Started and not asked to stop."""
        return self._thread.is_alive() and not self._stopping

    def _start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        """The thread: run the loop until stopped, then finish what is left on it
        (cancel its tasks, close async generators and its default executor) and
        close it; finally tell the stopping loop, if it still listens."""
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                _cancel_leftovers(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                with self._lock:
                    self._done = True
                    finished = self._finished
                if finished is not None:
                    waiter_loop, waiter = finished
                    try:
                        waiter_loop.call_soon_threadsafe(_resolve, waiter)
                    except RuntimeError:  # that loop is closed: nobody waits
                        pass

    async def _stop(self, grace: float | None) -> bool:
        """Stop the loop and wait up to *grace* seconds for its thread to end.

        ``False`` when the thread still runs (a call blocks it): it then closes
        the loop itself when that call returns.
        """
        if self._stopping:
            return not self._thread.is_alive()
        self._stopping = True
        thread = self._thread
        if thread.ident is None:  # never started
            self._loop.close()
            return True
        main = asyncio.get_running_loop()
        waiter = main.create_future()
        with self._lock:
            done = self._done
            self._finished = (main, waiter)
        try:
            self._loop.call_soon_threadsafe(self._loop.stop)
        except RuntimeError:  # already closed: the thread is ending or ended
            pass
        if not done:
            await asyncio.wait((waiter,), timeout=grace)
            if not waiter.done():
                return False
        thread.join()  # it has closed its loop: returns at once
        return True

    def _post(self, callback: Any, *args: Any) -> None:
        self._loop.call_soon_threadsafe(callback, *args)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still on a stopped *loop* and let them finish."""
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "task on an isolated loop failed while the loop stopped",
                    "exception": task.exception(),
                    "task": task,
                }
            )


class IsolatedLoops(Mapping[str, IsolatedLoop]):
    """The isolated loops of one scheduler, by name.

    Declared loops start with the scheduler's first job; others start with the
    first job spawned on them. All of them stop when the scheduler closes, after
    its jobs. As a mapping it holds the loops started so far.
    """

    __slots__ = ("_closed", "_declared", "_loops")

    def __init__(self, declared: Collection[str] = ()) -> None:
        self._declared = check_loop_names("loops", declared)
        self._loops: dict[str, IsolatedLoop] = {}
        self._closed = False

    def __repr__(self) -> str:
        names = ", ".join(repr(name) for name in self._loops)
        return f"<IsolatedLoops [{names}]>"

    def __getitem__(self, name: str) -> IsolatedLoop:
        return self._loops[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._loops))

    def __len__(self) -> int:
        return len(self._loops)

    @property
    def declared(self) -> tuple[str, ...]:
        """The names given to ``Scheduler(loops=...)``."""
        return self._declared

    @property
    def closed(self) -> bool:
        return self._closed

    def start_declared(self) -> None:
        """Start the declared loops that are not running yet."""
        for name in self._declared:
            self.start(name)

    def start(self, name: str) -> IsolatedLoop:
        """The loop called *name*, started now if it is not running yet."""
        isolated = self._loops.get(name)
        if isolated is None:
            if self._closed:
                raise SchedulerClosedError(
                    f"cannot start the isolated loop {name!r}: the scheduler is closed"
                )
            isolated = IsolatedLoop(name)
            self._loops[name] = isolated
            isolated._start()
        return isolated

    def hop(self, name: object, coro: Coroutine[Any, Any, _T]) -> Hop[_T]:
        """*coro* wrapped to run on the loop called *name* (checked, started if
        needed); *coro* is closed if that is refused."""
        try:
            checked = check_name("loop", name)
            assert checked is not None
            isolated = self.start(checked)
        except BaseException:
            coro.close()  # refused: no "coroutine was never awaited" warning
            raise
        return Hop(isolated, coro)

    async def close(self, grace: float | None) -> None:
        """Stop every loop, waiting up to *grace* seconds for each thread to end."""
        self._closed = True
        loops = list(self._loops.values())
        if not loops:
            return
        stopped = await asyncio.gather(*(isolated._stop(grace) for isolated in loops))
        for isolated, ok in zip(loops, stopped, strict=True):
            if not ok:
                logger.warning(
                    "isolated loop %r did not stop within %s s (a call blocks its "
                    "thread); it closes itself when that call returns, and the "
                    "interpreter waits for it at exit",
                    isolated.name,
                    grace,
                )


# -- one job's crossing ---------------------------------------------------------------

_OK, _FAILED, _CANCELLED = 0, 1, 2


class _Link:
    """What the two sides of one crossing share. The main loop's fields
    (``waiter``, ``outcome``) are touched only on the main thread, ``task``
    only on the isolated loop's thread."""

    __slots__ = ("main", "outcome", "task", "waiter")

    def __init__(self, main: asyncio.AbstractEventLoop) -> None:
        self.main = main
        self.waiter: asyncio.Future[None] = main.create_future()
        self.outcome: tuple[int, Any] | None = None
        self.task: asyncio.Task[Any] | None = None

    # on the isolated loop

    def begin(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        ctx: contextvars.Context,
    ) -> None:
        # The task runs in a copy of ctx, the context the job's own task had.
        task = ctx.run(loop.create_task, coro)
        self.task = task
        task.add_done_callback(self.ended)

    def cancel(self) -> None:
        # Posted after begin(), and one loop runs its callbacks in order.
        if self.task is not None:
            self.task.cancel()

    def ended(self, task: asyncio.Task[Any]) -> None:
        outcome: tuple[int, Any]
        if task.cancelled():
            outcome = (_CANCELLED, None)
        else:
            exc = task.exception()
            outcome = (_OK, task.result()) if exc is None else (_FAILED, exc)
        self.task = None
        try:
            self.main.call_soon_threadsafe(self.settle, outcome)
        except RuntimeError:  # the main loop is closed: nobody waits any more
            pass

    # on the main loop

    def settle(self, outcome: tuple[int, Any]) -> None:
        self.outcome = outcome
        if not self.waiter.done():
            self.waiter.set_result(None)


async def _drive(isolated: IsolatedLoop, hop: Hop[_T]) -> _T:
    """The job's own coroutine on the main loop: run the work on *isolated* and
    return (or raise) what it did there."""
    coro = hop._coro
    assert coro is not None
    main = asyncio.get_running_loop()
    link = _Link(main)
    try:
        isolated._post(link.begin, isolated._loop, coro, contextvars.copy_context())
    except RuntimeError:
        hop._drop_work()
        raise SchedulerClosedError(
            f"the isolated loop {isolated.name!r} is closed"
        ) from None
    hop._coro = None  # the isolated loop owns it now
    try:
        while True:
            with contextlib.suppress(asyncio.CancelledError):
                await link.waiter
            if link.outcome is not None:
                break
            # Cancelled: cancel the work where it runs, then wait until it has
            # finished. A stopped loop has cancelled its tasks already.
            with contextlib.suppress(RuntimeError):
                isolated._post(link.cancel)
            link.waiter = main.create_future()
        kind, value = link.outcome
        if kind == _OK:
            return value  # type: ignore[no-any-return]
        if kind == _FAILED:
            raise value
        raise asyncio.CancelledError()
    finally:
        _give_back(coro)  # no longer in use: the work has ended


class Hop(Coroutine[Any, Any, _T], Generic[_T]):
    """The coroutine a job runs on the main loop when its work runs on an
    isolated loop: it drives :func:`_drive` and owns the work's coroutine until
    the driver hands it over, so refusing, dropping or cancelling the job before
    it starts closes the work's coroutine too (no "never awaited" warning)."""

    __slots__ = ("_body", "_coro", "_isolated")

    def __init__(self, isolated: IsolatedLoop, coro: Coroutine[Any, Any, _T]) -> None:
        self._isolated = isolated
        self._coro: Coroutine[Any, Any, _T] | None = coro
        self._body = _drive(isolated, self)
        _lent[id(coro)] = coro  # in use: a second spawn of it is refused

    def __repr__(self) -> str:
        return f"<Hop {self.label!r} on {self._isolated!r}>"

    @property
    def label(self) -> str:
        """The work's name, for the job: its coroutine's qualified name."""
        return str(getattr(self._coro, "__qualname__", None) or "job")

    def __await__(self) -> Generator[Any, None, _T]:
        return self._body.__await__()

    def send(self, value: Any) -> Any:
        return self._body.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        try:
            if val is None and tb is None:
                return self._body.throw(typ)
            return self._body.throw(typ, val, tb)  # pragma: no cover - legacy form
        except BaseException:
            self._drop_work()
            raise

    def close(self) -> None:
        self._body.close()
        self._drop_work()

    def _drop_work(self) -> None:
        coro = self._coro
        if coro is not None:  # never handed over: close it here
            self._coro = None
            _give_back(coro)
            coro.close()


def _give_back(coro: Coroutine[Any, Any, Any]) -> None:
    if _lent.get(id(coro)) is coro:
        del _lent[id(coro)]

"""Protected work: coroutines that a request started and that must not be cut
off by the cancellation of its handler (``@atomic`` handlers, ``shield()``).

Each runs in its own task, registered here so that a graceful shutdown can wait
for it, and cancel and report what is still running after ``wait_timeout``.
Each task starts inside the scheduler's ``drain_exempt()``: work accepted
before the shutdown may spawn the jobs it needs to finish while the scheduler
drains (the task keeps the exemption in its copy of the context).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web

from .._core.scheduler import Scheduler
from .._errors import SchedulerClosedError

__all__ = ["Entry", "ProtectedWork", "describe", "unavailable"]

logger = logging.getLogger("aiohttp_jobs.web")

_T = TypeVar("_T")

# One piece of protected work: its request, when it started (loop time), and
# whether it is an @atomic handler (else shield()). A plain tuple: one is made
# per atomic request.
Entry = tuple[web.BaseRequest, float, bool]


def describe(entry: Entry) -> str:
    request, _, atomic = entry
    kind = "atomic handler" if atomic else "shielded work"
    return f"{kind} for {request.method} {request.path}"


def unavailable(reason: str, retry_after: float) -> web.HTTPServiceUnavailable:
    """A 503 answer with a ``Retry-After`` header (whole seconds, at least 1)."""
    seconds = max(1, math.ceil(retry_after))
    return web.HTTPServiceUnavailable(
        headers={"Retry-After": str(seconds)},
        text=f"{reason}; retry in {seconds} s\n",
    )


class ProtectedWork:
    """The protected work of one application."""

    __slots__ = ("closing", "entries", "retry_after", "scheduler", "stopping")

    def __init__(self, *, retry_after: float) -> None:
        #: running protected work; @atomic adds and removes its own entries
        self.entries: dict[asyncio.Future[Any], Entry] = {}
        self.stopping = False  # set when the shutdown (the drain) begins
        self.closing = False  # set when the shutdown starts cancelling
        self.retry_after = retry_after
        #: the application's scheduler, once it has started
        self.scheduler: Scheduler | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"<ProtectedWork running={len(self.entries)}>"

    def refuse(self, aw: Awaitable[Any]) -> web.HTTPServiceUnavailable:
        """The 503 for work offered once the shutdown cancels (closes *aw*)."""
        if asyncio.iscoroutine(aw):
            aw.close()
        return unavailable("the server is shutting down", self.retry_after)

    def cut_off(self) -> web.HTTPServiceUnavailable:
        """The 503 for an atomic request whose work the shutdown cancelled."""
        return unavailable(
            "the server shut down before this request finished", self.retry_after
        )

    def refused(
        self, exc: SchedulerClosedError, entry: Entry
    ) -> web.HTTPServiceUnavailable | None:
        """The answer of an atomic handler that failed with *exc*, a refusal
        (the scheduler or the task runtime no longer takes work): during the
        shutdown a 503 with ``Retry-After``, and a warning, since the work the
        handler asked for will not happen. ``None`` (let *exc* through) before."""
        if not self.stopping:
            return None
        logger.warning(
            "%s answered 503: the shutdown refused the work it asked for: %s",
            describe(entry),
            exc,
        )
        # The details stay in the log: the client learns only that it may retry.
        answer = unavailable(
            "the server is shutting down and refused the work this request asked for",
            self.retry_after,
        )
        answer.__cause__ = exc
        return answer

    @staticmethod
    def log_orphan(task: asyncio.Future[Any], entry: Entry) -> None:
        """Log the failure of work whose caller was cancelled (no one gets it)."""
        if not task.done() or task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, web.HTTPException):
            logger.error(
                "%s failed after its request was cancelled",
                describe(entry),
                exc_info=exc,
            )

    def shield(self, aw: Awaitable[_T], request: web.BaseRequest) -> asyncio.Future[_T]:
        """Run *aw* in its own task (``shield()``); the returned future
        carries its outcome.

        Cancelling the returned future (or the task awaiting it) leaves the
        work running; its failure is then logged, as no one is left to get it.
        """
        if self.closing:
            raise self.refuse(aw)
        loop = asyncio.get_running_loop()
        scheduler = self.scheduler
        if scheduler is None:
            task = asyncio.ensure_future(aw)
        else:
            with scheduler.drain_exempt():  # the new task copies the exemption
                task = asyncio.ensure_future(aw)
        if task.done():
            return task
        outer: asyncio.Future[_T] = loop.create_future()
        entry = self.entries[task] = (request, loop.time(), False)

        def done(task: asyncio.Future[_T]) -> None:
            del self.entries[task]
            if outer.cancelled():
                self.log_orphan(task, entry)
            elif task.cancelled():
                outer.cancel()
            elif (exc := task.exception()) is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(task.result())

        task.add_done_callback(done)
        return outer

    # -- shutdown -----------------------------------------------------------------

    async def wait(self, seconds: float | None) -> bool:
        """Wait until no protected work runs; ``False`` if *seconds* passed first."""
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while self.entries:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(tuple(self.entries), timeout=remaining)
        return True

    async def cancel_all(
        self, seconds: float | None
    ) -> dict[asyncio.Future[Any], Entry]:
        """Refuse new work, cancel what runs and wait up to *seconds* for it.

        Returns what was cancelled (done or not), for the shutdown report.
        """
        self.closing = True
        left = dict(self.entries)
        for fut in left:
            if isinstance(fut, asyncio.Task):
                # The base class's cancel: an atomic task declines others.
                asyncio.Task.cancel(fut)
            else:
                fut.cancel()
        if left:
            await asyncio.wait(left, timeout=seconds)
        return left

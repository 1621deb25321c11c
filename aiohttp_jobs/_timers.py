"""A timer for a deadline on a clock of one's own, run by the event loop.

The event loop's timers follow the monotonic clock; a clock whose time moves
otherwise (the system clock, which NTP steps and a suspend move; a clock that
follows a server's) cannot hand its deadline to them as it is. A
:class:`DeadlineTimer` arms the loop's timer for the delay its clock shows now,
at most a minute ahead, and arms it again when it fires before its clock
reaches the deadline. The clocks check the deadline they are given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["DeadlineTimer"]

# A jump of the clock is noticed at least this often.
_MAX_STEP = 60.0
# The last stretch before a deadline is waited out by yielding to the event loop
# (other callbacks keep running), so timers fire within microseconds, not within
# the selector's one-millisecond resolution.
_SPIN = 0.0015


class DeadlineTimer:
    """Calls *callback* in the running event loop once ``time() >= when``
    (a :class:`~aiohttp_jobs.Clock`'s ``TimerHandle``)."""

    __slots__ = ("_callback", "_handle", "_time", "_when")

    def __init__(
        self, time: Callable[[], float], when: float, callback: Callable[[], object]
    ) -> None:
        self._time = time
        self._when = when
        self._callback: Callable[[], object] | None = callback
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._when - self._time()
        if delay <= _SPIN:
            self._handle = None
            loop.call_soon(self._fire)
            return
        # The selector rounds its timeout up to whole milliseconds: wake a little
        # early and let _fire() step through the loop until the deadline.
        step = min(delay - _SPIN, _MAX_STEP)
        self._handle = loop.call_at(loop.time() + step, self._fire)

    def _fire(self) -> None:
        callback = self._callback
        if callback is None:
            return
        # Re-arm until the clock reaches the deadline (long delays are taken
        # in steps).
        if self._time() < self._when:
            self._arm()
            return
        self._callback = None
        callback()

    def cancel(self) -> None:
        self._callback = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def __repr__(self) -> str:
        state = "cancelled" if self._callback is None else "armed"
        return f"<DeadlineTimer {state} at={self._when:.3f}>"

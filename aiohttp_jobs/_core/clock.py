"""Time, as the task runner sees it.

The runner never polls: it asks the clock to call it back at the next due time
(:meth:`Clock.call_at`) and cancels or re-arms that timer when schedules change.
:class:`SystemClock` maps wall-clock deadlines onto the event loop's monotonic
timers; :class:`aiohttp_jobs.testing.FakeClock` moves time only when a test says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from .._checks import MAX_TIMESTAMP, check_timestamp
from .._errors import ConfigTypeError

__all__ = ["Clock", "SystemClock", "TimerHandle", "check_clock", "sleep_until"]

# Wall-clock jumps (NTP steps, suspend and resume) are noticed at least this often.
_MAX_TIMER_STEP = 60.0
# The last stretch before a deadline is waited out by yielding to the event loop
# (other callbacks keep running), so timers fire within microseconds, not within
# the selector's one-millisecond resolution.
_SPIN = 0.0015


@runtime_checkable
class TimerHandle(Protocol):
    """What :meth:`Clock.call_at` returns: a timer that can be cancelled."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """A source of wall-clock time that can wake the runner at a given moment.

    Times are POSIX timestamps in seconds (``float``), as :func:`time.time`.
    """

    def time(self) -> float:
        """The current time as a POSIX timestamp."""
        ...

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Call ``callback()`` in the event loop once ``time() >= when``."""
        ...


class _SystemTimer:
    __slots__ = ("_callback", "_clock", "_handle", "_when")

    def __init__(
        self, clock: SystemClock, when: float, callback: Callable[[], object]
    ) -> None:
        self._clock = clock
        self._when = when
        self._callback: Callable[[], object] | None = callback
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._when - self._clock.time()
        if delay <= _SPIN:
            self._handle = None
            loop.call_soon(self._fire)
            return
        # The selector rounds its timeout up to whole milliseconds: wake a little
        # early and let _fire() step through the loop until the deadline.
        step = min(delay - _SPIN, _MAX_TIMER_STEP)
        self._handle = loop.call_at(loop.time() + step, self._fire)

    def _fire(self) -> None:
        callback = self._callback
        if callback is None:
            return
        # The loop's timers are monotonic; the deadline is wall-clock. Re-arm until
        # the wall clock reaches it (long delays are taken in steps).
        if self._clock.time() < self._when:
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
        return f"<SystemTimer {state} at={self._when:.3f}>"


class SystemClock:
    """The real clock: :func:`time.time` and the running event loop's timers."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        if type(when) is not float or not 0.0 <= when <= MAX_TIMESTAMP:
            when = check_timestamp("when", when)  # a NaN timer would never fire
        return _SystemTimer(self, when, callback)

    def __repr__(self) -> str:
        return "<SystemClock>"


def check_clock(name: str, value: object) -> Clock | None:
    """A ``clock=`` argument: a :class:`Clock` or ``None`` (the default clock)."""
    if value is None or isinstance(value, Clock):
        return value
    raise ConfigTypeError(
        f"{name} must be an aiohttp_jobs.Clock (time(), now(), call_at()) or None, "
        f"got {value!r} ({type(value).__name__})"
    )


async def sleep_until(clock: Clock, when: float) -> None:
    """Wait until *clock* reaches *when* (a POSIX timestamp)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    handle = clock.call_at(when, wake)
    try:
        await fut
    finally:
        handle.cancel()

"""Time, as the task runner sees it.

The runner never polls: it asks the clock to call it back at the next due time
(:meth:`Clock.call_at`) and cancels or re-arms that timer when schedules change.
:class:`SystemClock` maps wall-clock deadlines onto the event loop's monotonic
timers (a :class:`~aiohttp_jobs._timers.DeadlineTimer`, as the Redis store's
server clock does); :class:`aiohttp_jobs.testing.FakeClock` moves time only when
a test says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from .._checks import MAX_TIMESTAMP, check_timestamp
from .._errors import ConfigTypeError
from .._timers import DeadlineTimer

__all__ = ["Clock", "SystemClock", "TimerHandle", "check_clock", "sleep_until"]


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
        return DeadlineTimer(self.time, when, callback)

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

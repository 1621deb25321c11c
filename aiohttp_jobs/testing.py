"""Helpers for testing code that uses aiohttp-jobs.

:class:`FakeClock` replaces the wall clock of scheduled tasks, so a test can say
"it is now 02:59:59 on the day the clocks go forward" and "let two minutes pass",
and see exactly the runs that fall due, without sleeping::

    clock = FakeClock(datetime(2024, 3, 31, 0, 59, tzinfo=timezone.utc))
    aiohttp_jobs.setup(app, tasks=tasks, clock=clock)
    ...
    await clock.advance(timedelta(minutes=2))   # fires everything due, in order
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ._checks import MAX_TIMESTAMP, check_duration, check_timestamp
from ._core.clock import TimerHandle
from ._errors import ConfigError, ConfigTypeError

__all__ = ["FakeClock", "settle"]

_SETTLE_ROUNDS = 10_000


class _FakeTimer:
    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback: Callable[[], object] | None = callback

    def cancel(self) -> None:
        self.callback = None

    def fire(self) -> None:
        callback = self.callback
        if callback is not None:
            self.callback = None
            callback()

    def __repr__(self) -> str:
        state = "cancelled" if self.callback is None else "armed"
        return f"<FakeTimer {state} at={self.when:.3f}>"


def _timestamp(name: str, value: datetime | float) -> float:
    """A moment for the fake clock: finite, from 1970 to the year 9999."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(
                f"{name}: FakeClock needs aware datetimes (e.g. "
                f"tzinfo=timezone.utc), got {value!r}"
            )
        return check_timestamp(name, value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigTypeError(
            f"{name} must be an aware datetime or a POSIX timestamp, got {value!r}"
        )
    return check_timestamp(name, value)


class FakeClock:
    """A clock that moves only when told to; timers fire in time order.

    ``advance()`` / ``set()`` step from one due timer to the next, and after each
    step let the event loop run until it has nothing ready (so the runs it fired,
    and whatever they schedule, complete before time moves on).
    """

    def __init__(
        self, start: datetime | float = datetime(2024, 1, 1, tzinfo=UTC)
    ) -> None:
        self._now = _timestamp("start", start)
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"<FakeClock {self.now().isoformat()} timers={len(self._timers)}>"

    def time(self) -> float:
        return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        if type(when) is not float or not 0.0 <= when <= MAX_TIMESTAMP:
            when = check_timestamp("when", when)  # a NaN timer would never fire
        timer = _FakeTimer(when, callback)
        if when <= self._now:
            asyncio.get_running_loop().call_soon(timer.fire)
        else:
            heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    @property
    def next_timer(self) -> float | None:
        """When the earliest armed timer fires, or ``None``."""
        timers = self._timers
        while timers and timers[0][2].callback is None:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _target(self, seconds: float | timedelta) -> float:
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            if seconds < 0:
                raise ConfigError(
                    "time only moves forward: advance() takes seconds >= 0, "
                    f"got {seconds!r}"
                )
        step = check_duration("seconds", seconds)
        target = self._now + step
        if target > MAX_TIMESTAMP:
            raise ConfigError(
                f"seconds={seconds!r} would move the clock past the year 9999"
            )
        return target

    async def advance(self, seconds: float | timedelta = 0.0) -> None:
        """Let *seconds* pass, firing every timer that falls due on the way."""
        await self._run_until(self._target(seconds))

    async def set(self, when: datetime | float) -> None:
        """Move to *when* (not earlier than now), firing what falls due."""
        target = _timestamp("when", when)
        if target < self._now:
            raise ConfigError("time only moves forward: set() takes a later moment")
        await self._run_until(target)

    async def jump(self, seconds: float | timedelta) -> None:
        """Let *seconds* pass at once, as a blocked event loop or a suspended
        machine lives them: nothing fires on the way; then every timer that fell
        due fires, late, in time order."""
        self._now = self._target(seconds)
        await self._run_until(self._now)

    async def _run_until(self, target: float) -> None:
        await settle()
        while True:
            nxt = self.next_timer
            if nxt is None or nxt > target:
                break
            _, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, timer.when)
            timer.fire()
            await settle()
        self._now = target
        await settle()


async def settle() -> None:
    """Yield to the event loop until no callback is ready to run.

    Work waiting on real I/O or real timers is not waited for.
    """
    loop = asyncio.get_running_loop()
    # The loop's ready queue is private; other loops get a fixed number of rounds.
    ready = getattr(loop, "_ready", None)
    rounds = _SETTLE_ROUNDS if ready is not None else 100
    for _ in range(rounds):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            await asyncio.sleep(0)
            if not ready:
                return

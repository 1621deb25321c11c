"""The real clock's timers and the FakeClock (tiny real delays only)."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from aiohttp_jobs import Clock, ConfigError, SystemClock
from aiohttp_jobs._core.clock import sleep_until
from aiohttp_jobs.testing import FakeClock


async def test_system_clock_fires_at_the_wall_clock_deadline() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    fired: list[float] = []
    when = clock.time() + 0.01
    clock.call_at(when, lambda: fired.append(time.time()))
    cancelled = clock.call_at(when, lambda: fired.append(-1.0))
    cancelled.cancel()
    await sleep_until(clock, when + 0.005)
    assert len(fired) == 1
    assert fired[0] >= when
    assert abs(clock.now().timestamp() - clock.time()) < 0.1


async def test_system_clock_past_deadline_fires_soon() -> None:
    clock = SystemClock()
    fired = asyncio.Event()
    clock.call_at(clock.time() - 5, fired.set)
    await asyncio.wait_for(fired.wait(), 1)


async def test_fake_clock_runs_timers_in_order_without_sleeping() -> None:
    start = datetime(2024, 3, 31, tzinfo=UTC)
    clock = FakeClock(start)
    order: list[tuple[str, float]] = []
    clock.call_at(start.timestamp() + 20, lambda: order.append(("b", clock.time())))
    clock.call_at(start.timestamp() + 10, lambda: order.append(("a", clock.time())))
    late = clock.call_at(start.timestamp() + 15, lambda: order.append(("x", 0.0)))
    late.cancel()
    assert clock.next_timer == start.timestamp() + 10
    await clock.advance(timedelta(seconds=15))
    assert order == [("a", start.timestamp() + 10)]
    assert clock.now() == start + timedelta(seconds=15)
    await clock.set(start + timedelta(minutes=1))
    assert [name for name, _ in order] == ["a", "b"]
    assert clock.next_timer is None
    assert "FakeClock" in repr(clock)


async def test_fake_clock_only_moves_forward() -> None:
    clock = FakeClock(1000.0)
    with pytest.raises(ConfigError):
        await clock.advance(-1)
    with pytest.raises(ConfigError):
        await clock.set(999.0)
    with pytest.raises(ConfigError):
        FakeClock(datetime(2024, 1, 1))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300])
async def test_fake_clock_refuses_times_it_could_never_reach(value: float) -> None:
    with pytest.raises(ConfigError, match="start"):
        FakeClock(value)
    clock = FakeClock(0.0)
    with pytest.raises(ConfigError, match="seconds"):
        await clock.advance(value)
    with pytest.raises(ConfigError, match="seconds"):
        await clock.jump(value)
    with pytest.raises(ConfigError, match="when"):
        await clock.set(value)
    with pytest.raises(ConfigError, match="when"):
        clock.call_at(value, lambda: None)  # a NaN timer would never fire
    assert clock.time() == 0.0


async def test_fake_clock_jump_fires_what_fell_due_late_and_in_order() -> None:
    clock = FakeClock(0.0)
    fired: list[tuple[str, float]] = []
    clock.call_at(10.0, lambda: fired.append(("a", clock.time())))
    clock.call_at(20.0, lambda: fired.append(("b", clock.time())))
    clock.call_at(50.0, lambda: fired.append(("c", clock.time())))
    await clock.jump(35)  # as a blocked event loop: nothing fired on the way
    assert fired == [("a", 35.0), ("b", 35.0)]
    await clock.advance(15)
    assert fired[-1] == ("c", 50.0)


async def test_sleep_until_on_a_fake_clock_wakes_when_advanced() -> None:
    clock = FakeClock(0.0)
    woke: list[float] = []

    async def sleeper() -> None:
        await sleep_until(clock, 30.0)
        woke.append(clock.time())

    task = asyncio.ensure_future(sleeper())
    await clock.advance(29)
    assert woke == []
    await clock.advance(5)
    assert woke == [30.0]
    await task


@pytest.mark.parametrize("when", [float("nan"), float("inf"), "1", None])
async def test_system_clock_refuses_a_time_it_could_never_reach(when: object) -> None:
    with pytest.raises(ConfigError, match="when"):
        SystemClock().call_at(when, lambda: None)  # type: ignore[arg-type]

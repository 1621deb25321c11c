"""Helpers of the scheduled-task tests (time on a FakeClock that starts at T0)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp_jobs import Context
from aiohttp_jobs._core.clock import sleep_until
from aiohttp_jobs.testing import FakeClock

#: Where every test's FakeClock starts.
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def elapsed(clock: FakeClock) -> float:
    """Seconds since T0 on *clock*."""
    return clock.time() - T0.timestamp()


async def task_sleep(ctx: Context, seconds: float) -> None:
    """Inside a task: sleep on the runtime's clock (a FakeClock in tests)."""
    clock = ctx.runtime.clock
    await sleep_until(clock, clock.time() + seconds)

"""Fixtures of the scheduled-task tests: a scheduler and a clock at ``T0``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiohttp_jobs import Scheduler
from aiohttp_jobs.testing import FakeClock
from tests.tasks.support import T0


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    async with Scheduler(limit=None) as sched:
        yield sched


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)

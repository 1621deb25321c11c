"""The bounded, queryable history of finished jobs."""

from __future__ import annotations

import pytest

from aiohttp_jobs import (
    JobState,
    Scheduler,
)
from tests.helpers import failing, returning


async def test_history_is_bounded_and_queryable() -> None:
    async with Scheduler(history_limit=3) as scheduler:
        for n in range(4):
            await (await scheduler.spawn(returning(n), f"n{n}")).wait()
        failed = await scheduler.spawn(failing(KeyError()), "boom")
        with pytest.raises(KeyError):
            await failed.wait()
    history = scheduler.history
    assert len(history) == 3 and history.maxlen == 3
    assert [j.name for j in history.query()] == ["boom", "n3", "n2"]
    assert history.query(state="failed") == [failed]
    assert [j.name for j in history.query(state=JobState.SUCCEEDED, limit=1)] == ["n3"]
    assert history.query(name="n2")[0].result() == 2


async def test_history_limit_zero_keeps_nothing() -> None:
    async with Scheduler(history_limit=0) as scheduler:
        await (await scheduler.spawn(returning(1))).wait()
    assert len(scheduler.history) == 0

"""Priorities: reserved slots, start order, start-timeout warnings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import aiohttp_jobs
from aiohttp_jobs import (
    Priority,
    Scheduler,
)


async def test_reserves_extend_the_limit_by_priority() -> None:
    scheduler = Scheduler(limit=1, reserve_normal=1, reserve_high=1)
    release = asyncio.Event()
    low = [await scheduler.spawn(release.wait(), priority="low") for _ in range(2)]
    normal = [await scheduler.spawn(release.wait()) for _ in range(2)]
    high = [
        await scheduler.spawn(release.wait(), priority=Priority.HIGH) for _ in range(2)
    ]
    critical = await scheduler.spawn(release.wait(), priority=3)
    assert [j.active for j in low] == [True, False]
    assert [j.active for j in normal] == [True, False]
    assert [j.active for j in high] == [True, False]
    assert critical.active
    assert scheduler.capacity("low") == 1 and scheduler.capacity() == 2
    assert scheduler.capacity("high") == 3 and scheduler.capacity("critical") is None
    release.set()
    await scheduler.wait_and_close()


async def test_pending_jobs_start_by_priority_then_fifo() -> None:
    scheduler = Scheduler(limit=1)
    gate = asyncio.Event()
    order: list[str] = []

    async def work(tag: str) -> None:
        order.append(tag)
        await gate.wait()

    await scheduler.spawn(work("first"))
    for tag, prio in [
        ("l1", "low"),
        ("n1", "normal"),
        ("h1", "high"),
        ("n2", "normal"),
    ]:
        await scheduler.spawn(work(tag), priority=prio)
    gate.set()
    await scheduler.wait_and_close()
    assert order == ["first", "h1", "n1", "n2", "l1"]


async def test_start_timeouts_warn_then_turn_critical(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports: list[tuple[str, str]] = []
    both = asyncio.get_running_loop().create_future()

    def on_start_timeout(job: aiohttp_jobs.Job[Any], level: str) -> None:
        reports.append((job.name, level))
        if level == "critical":
            both.set_result(None)

    scheduler = Scheduler(
        limit=1,
        start_timeout_warning=0.005,
        start_timeout_critical=0.01,
        on_start_timeout=on_start_timeout,
    )
    release = asyncio.Event()
    await scheduler.spawn(release.wait(), "busy")
    await scheduler.spawn(release.wait(), "stuck")
    await asyncio.wait_for(both, 5)
    assert reports == [("stuck", "warning"), ("stuck", "critical")]
    assert "has waited" in caplog.text
    release.set()
    await scheduler.wait_and_close()

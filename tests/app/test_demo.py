"""example_app/demo.py: the demo traffic ``python -m example_app`` shows on the
dashboard, driven by a FakeClock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import aiohttp_jobs
from aiohttp_jobs.testing import FakeClock
from example_app import demo
from example_app.app import create_app
from example_app.tasks import OUTBOX
from tests.tasks.support import T0


async def test_demo_schedules_a_recurring_dynamic_instance(
    aiohttp_client: Any,
) -> None:
    app = create_app(demo=True, clock=FakeClock(T0))
    await aiohttp_client(app)
    infos = {info.key: info for info in await aiohttp_jobs.get_tasks(app).list_tasks()}
    standup = infos["remind:ada.standup"]
    assert standup.enabled and standup.schedule is not None
    assert standup.next_fire_at is not None
    assert standup.next_fire_at.weekday() < 5  # a weekday
    assert "demo-traffic" in infos


async def test_each_burst_spawns_jobs_fires_a_keyword_and_runs_a_release(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "DELAY", 0.0)
    clock = FakeClock(T0)
    app = create_app(demo=True, clock=clock, wait_timeout=0.1)
    await aiohttp_client(app)
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    runtime = aiohttp_jobs.get_tasks(app)
    for burst in (1, 2, 3):
        await clock.advance(demo.EVERY)
        await runtime.wait_idle()
        due = [job for job in scheduler if job.state.value != "scheduled"]
        await asyncio.gather(*(job.wait() for job in due), return_exceptions=True)
        runs = scheduler.history.query(name="demo-traffic")
        assert len(runs) == burst, [job.state for job in runs]
    assert runs[-1].result() == "burst 1: release deployed"
    names = {job.name for job in scheduler.history}
    assert {"report", "thumbnail", "charge-card", "welcome", "db1"} <= names
    assert "digest-mail" in names  # each burst's, due EVERY / 2 later
    assert [job.state.value for job in scheduler] == ["scheduled"]  # the third
    assert app[OUTBOX] == [{"to": "ada", "subject": "Welcome!"}]

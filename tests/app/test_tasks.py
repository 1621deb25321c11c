"""The example application's scheduled tasks, driven by a FakeClock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp_jobs
from aiohttp_jobs.testing import FakeClock
from example_app.app import create_app
from example_app.tasks import SESSIONS
from tests.tasks.support import T0


async def test_signup_fires_welcome_and_sessions_expire(aiohttp_client: Any) -> None:
    clock = FakeClock(T0)
    app = create_app(clock=clock)
    client = await aiohttp_client(app)
    resp = await client.post("/api/signup/ann")
    assert (await resp.json())["runs"] == ["welcome@1704067200000"]
    await clock.advance(0)
    assert await (await client.get("/api/outbox")).json() == [
        {"to": "ann", "subject": "Welcome!"}
    ]
    assert "ann" in app[SESSIONS]
    await clock.advance(timedelta(minutes=30))
    assert "ann" in app[SESSIONS]  # 30 minutes old at 00:30: not expired yet
    await clock.advance(timedelta(minutes=5))
    assert "ann" not in app[SESSIONS]
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    purges = scheduler.history.query(name="purge-sessions")
    assert [job.result() for job in purges][:2] == [1, 0]


async def test_reminders_are_sent_on_time_and_can_be_cancelled(
    aiohttp_client: Any,
) -> None:
    clock = FakeClock(T0)
    client = await aiohttp_client(create_app(clock=clock))
    for name, delay in (("tea", 60), ("call", 120)):
        resp = await client.post(
            "/api/reminders",
            json={"user": "bob", "name": name, "text": name, "in_seconds": delay},
        )
        assert resp.status == 201
    assert (await resp.json())["key"] == "remind:bob.call"
    bad = await client.post("/api/reminders", json={"user": "bob"})
    assert bad.status == 400
    tasks = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
    assert {t["key"] for t in tasks} >= {
        "purge-sessions",
        "remind:bob.tea",
        "remind:bob.call",
        "welcome",
    }
    await clock.advance(90)
    assert (await client.delete("/api/reminders/bob/call")).status == 200
    assert (await client.delete("/api/reminders/bob/call")).status == 404
    await clock.advance(600)
    assert await (await client.get("/api/outbox")).json() == [
        {"to": "bob", "subject": "tea"}
    ]


async def test_a_reminder_at_a_time_that_cannot_exist_is_a_bad_request(
    aiohttp_client: Any,
) -> None:
    client = await aiohttp_client(create_app(clock=FakeClock(T0)))
    for delay in ("nan", 1e12, "inf"):
        resp = await client.post(
            "/api/reminders",
            json={"user": "bob", "name": "x", "text": "x", "in_seconds": delay},
        )
        assert resp.status == 400, delay
        assert "in_seconds" in await resp.text()
    listed = await client.get("/jobs/api/tasks")  # nothing half-saved breaks it
    assert listed.status == 200
    tasks = (await listed.json())["tasks"]
    assert not [t for t in tasks if t["key"].startswith("remind:")]


async def test_signing_up_or_adding_a_reminder_while_stopping_answers_503(
    aiohttp_client: Any,
) -> None:
    app = create_app(clock=FakeClock(T0))
    client = await aiohttp_client(app)
    runtime = aiohttp_jobs.get_tasks(app)
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    scheduler.drain()  # as the graceful shutdown does: the runtime refuses runs
    assert runtime.stopping
    resp = await client.post("/api/signup/ann")
    assert (resp.status, resp.headers["Retry-After"]) == (503, "5")
    resp = await client.post(
        "/api/reminders",
        json={"user": "bob", "name": "x", "text": "x", "in_seconds": 5},
    )
    assert resp.status == 503
    assert "ann" not in app[SESSIONS]  # nothing half-done

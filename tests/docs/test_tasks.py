"""The examples of docs/tasks.md run, and do what the page says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jobs
from aiohttp_jobs.testing import FakeClock
from tests.docs.examples import load_example, run_example

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


def test_basics_example_prints_what_the_page_shows() -> None:
    lines = run_example("tasks_basics")
    nightly = [line for line in lines if line.startswith("nightly")]
    assert nightly == ["nightly   Sat 02:30 CET", "nightly   Sun 03:00 CEST"]
    assert "remind    Sat 09:15 CET ann: dentist at 10" in lines
    assert "welcome   bob" in lines
    assert [line for line in lines if line.startswith("flaky     Sun")] == [
        f"flaky     Sun 12:00 CEST attempt {n}" for n in range(3)
    ]
    assert "sync      Sun 07:00 CEST" in lines  # six hours of elapsed time
    assert "next      nightly  Mon 02:30" in lines
    assert lines[-1] == "history   19 jobs, 4 failed"


async def test_aiohttp_example_fires_archives_and_tears_down(
    aiohttp_client: Any,
) -> None:
    example = load_example("tasks_aiohttp")
    clock = FakeClock(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))
    app = example.create_app(clock=clock)
    client = await aiohttp_client(app)
    resp = await client.post("/orders/7")
    assert resp.status == 202
    await clock.advance(0)
    db = app[example.DB]
    assert db.orders == {7: "shipped"}
    await clock.advance(timedelta(minutes=15))
    assert db.orders == {7: "archived"}
    assert app[example.RUNS] == ["ship", "archive_shipped"]
    listing = await (await client.get("/tasks")).json()
    assert listing == {"archive_shipped": "2024-01-01T09:30:00+00:00", "ship": None}
    scheduler = aiohttp_jobs.get_scheduler_from_app(app)
    assert scheduler is not None
    assert scheduler.history.query(name="archive_shipped")[0].result() == 1
    await client.close()
    assert db.closed

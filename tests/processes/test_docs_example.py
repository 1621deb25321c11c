"""docs/examples/stores_shared.py: two instances of the application on one
store (SQLite file, Redis) share one schedule; its ledger refuses stale fences."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from aiohttp_jobs.stores import from_url
from tests.docs.examples import load_example
from tests.stores.redis_support import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        return server.url
    url: str = request.getfixturevalue("sqlite_url")
    return url


async def test_two_instances_share_the_nightly_schedule(
    store_url: str, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("JOBS_STORE", store_url)
    first = await aiohttp_client(load_example("stores_shared").create_app())
    second = await aiohttp_client(load_example("stores_shared").create_app())
    seen = []
    for client in (first, second):
        resp = await client.get("/tasks")
        assert resp.status == 200
        seen.append(await resp.json())
    assert seen[0] == seen[1]
    assert seen[0]["nightly_report"].endswith("T02:00:00+00:00")
    async with from_url(store_url, namespace="reports") as store:
        instances = await store.instances(now=time.time())
        assert [r.key for r in await store.records()] == ["nightly_report"]
    assert len(instances) == 2, instances  # both registered in the one store


def test_the_ledger_refuses_a_write_with_a_stale_fence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBS_STORE", "memory://")
    ledger = load_example("stores_shared").Ledger()
    assert ledger.write("nightly_report", 7, "first run")
    assert ledger.write("nightly_report", 9, "taken over")
    assert not ledger.write("nightly_report", 7, "the frozen one, late")
    assert ledger.rows["nightly_report"] == "taken over"

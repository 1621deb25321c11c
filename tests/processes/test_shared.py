"""Several real processes on one store, no fault: every occurrence runs, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes.conftest import Figures
from tests.processes.support import check, fleet, plan, stale_completions
from tests.stores.redis_support import RedisServer


@pytest.fixture(params=["redis", "sqlite"])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        return server.url
    url: str = request.getfixturevalue("sqlite_url")
    return url


async def test_four_processes_run_every_occurrence_exactly_once(
    store_url: str, tmp_path: Path, figures: Figures
) -> None:
    async with fleet(store_url, tmp_path / "logs", 4) as procs:
        cfg = await procs.go(seed=True, **plan(window=2.5, once=400))
        codes = await procs.finish()
    events = procs.events()
    report = check(cfg, events)
    scheme = store_url.split(":", 1)[0]
    figures(f"none ({scheme}, 4 processes)", **report.figures())
    assert codes == dict.fromkeys(codes, 0), procs.stderr()
    assert not report.lost and not report.duplicates, report
    assert not stale_completions(events)
    # the work was shared: more than one process ran something
    assert len(report.per_instance) > 1, report

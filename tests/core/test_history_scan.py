"""History.scan(): keyset pages of the finished jobs, newest first, filtered
and bounded."""

from __future__ import annotations

import pytest

from aiohttp_jobs import ConfigError, JobState, Priority, Scheduler
from aiohttp_jobs._core.history import matcher, scan
from tests.helpers import failing, returning


async def _fill(scheduler: Scheduler, count: int) -> None:
    for n in range(count):
        job = await scheduler.spawn(
            returning(n) if n % 5 else failing(KeyError(f"key {n}")),
            f"job{n}",
            tags=("even",) if n % 2 == 0 else ("odd",),
            priority=Priority.HIGH if n % 3 == 0 else Priority.NORMAL,
        )
        try:
            await job.wait()
        except KeyError:
            pass


async def test_pages_walk_the_whole_history_newest_first_without_repeats() -> None:
    async with Scheduler(history_limit=100) as scheduler:
        await _fill(scheduler, 23)
    history = scheduler.history
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = scan(history, before=before, limit=5)
        pages += 1
        seen.extend(job.name for job in page.jobs)
        if page.next is None:
            assert page.exhausted
            break
        before = page.next
    assert seen == [f"job{n}" for n in reversed(range(23))]
    assert pages == 5


async def test_filters_match_state_name_tag_priority_and_search() -> None:
    async with Scheduler(history_limit=100) as scheduler:
        await _fill(scheduler, 20)
    history = scheduler.history
    failed = scan(history, match=matcher(state="failed"), limit=50).jobs
    assert [j.name for j in failed] == ["job15", "job10", "job5", "job0"]
    assert scan(history, match=matcher(state=JobState.FAILED), limit=50).jobs == failed
    assert [j.name for j in scan(history, match=matcher(name="job7")).jobs] == ["job7"]
    odd = scan(history, match=matcher(tag="odd"), limit=50).jobs
    assert all("odd" in j.tags for j in odd) and len(odd) == 10
    high = scan(history, match=matcher(priority=int(Priority.HIGH)), limit=50).jobs
    assert {j.name for j in high} == {f"job{n}" for n in range(0, 20, 3)}
    # Search: id, name or error text, whatever the case.
    assert [j.name for j in scan(history, match=matcher(search="KEY 10")).jobs] == [
        "job10"
    ]
    target = history.query(name="job12")[0]
    assert scan(history, match=matcher(search=target.id)).jobs == [target]
    assert matcher() is None


async def test_a_bounded_scan_says_how_far_it_looked_and_continues() -> None:
    async with Scheduler(history_limit=100) as scheduler:
        await _fill(scheduler, 30)
    history = scheduler.history
    page = scan(history, match=matcher(state="failed"), limit=50, scan_limit=8)
    assert page.scanned == 8
    assert [j.name for j in page.jobs] == ["job25"]
    assert page.next is not None and not page.exhausted
    rest = scan(history, before=page.next, match=matcher(state="failed"), limit=50)
    assert [j.name for j in rest.jobs] == ["job20", "job15", "job10", "job5", "job0"]
    assert rest.exhausted and rest.scanned == 22


async def test_a_cursor_survives_jobs_leaving_and_joining_the_history() -> None:
    async with Scheduler(history_limit=10) as scheduler:
        await _fill(scheduler, 10)
        first = scan(scheduler.history, limit=4)
        assert [j.name for j in first.jobs] == ["job9", "job8", "job7", "job6"]
        await _fill(scheduler, 3)  # job0..job2 again: three old jobs leave
        second = scan(scheduler.history, before=first.next, limit=4)
    assert [j.name for j in second.jobs] == ["job5", "job4", "job3"]
    assert second.exhausted


async def test_empty_history_and_bad_arguments() -> None:
    async with Scheduler(history_limit=5) as scheduler:
        page = scan(scheduler.history)
        assert page == ([], 0, None, True)
        with pytest.raises(ConfigError, match="before"):
            scan(scheduler.history, before="nonsense")
        with pytest.raises(ConfigError, match="limit"):
            scan(scheduler.history, limit=0)
        with pytest.raises(ConfigError, match="state"):
            matcher(state="exploded")
        with pytest.raises(ConfigError, match="priority"):
            matcher(priority="high")  # type: ignore[arg-type]


async def test_newest_iterates_newest_first() -> None:
    async with Scheduler(history_limit=5) as scheduler:
        await _fill(scheduler, 3)
    assert [j.name for j in scheduler.history.newest()] == ["job2", "job1", "job0"]

"""Pure overlap and misfire arithmetic (aiohttp_jobs._tasks.policy)."""

from __future__ import annotations

from typing import Any

import pytest

from aiohttp_jobs import Context, Misfire, Overlap, Tasks
from aiohttp_jobs._tasks.policy import after_downtime, after_run, due_between
from aiohttp_jobs._tasks.schedules import IntervalSchedule, OnceSchedule
from aiohttp_jobs.stores import Cursor

EVERY_10 = IntervalSchedule(10)


def _task(**options: Any) -> Any:
    tasks = Tasks()

    async def body(ctx: Context) -> None:
        pass

    tasks.task(name="t", interval=10, **options)(body)
    return tasks["t"]


def test_due_between_is_bounded() -> None:
    assert due_between(EVERY_10, 100, 135, cap=10) == [110, 120, 130]
    assert due_between(EVERY_10, 100, 135, cap=2) == [110, 120]
    assert due_between(EVERY_10, 100, 105, cap=10) == []


@pytest.mark.parametrize(
    ("options", "backlog", "now", "cursor", "skipped"),
    [
        ({}, 0, 105, Cursor(110), 0),  # finished in time
        ({}, 0, 135, Cursor(140), 3),  # SKIP: 110, 120, 130 passed
        ({"overlap": Overlap.QUEUE}, 0, 135, Cursor(110, 2), 0),
        ({"overlap": Overlap.QUEUE, "queue_limit": 2}, 0, 135, Cursor(110, 1), 1),
        ({"overlap": Overlap.QUEUE}, 2, 135, Cursor(110, 1), 0),  # draining a queue
        ({}, 0, 140, Cursor(150), 4),  # "after" is exclusive of now's occurrence
    ],
)
def test_after_run(
    options: dict[str, Any], backlog: int, now: float, cursor: Cursor, skipped: int
) -> None:
    plan = after_run(_task(**options), EVERY_10, 100, backlog, now)
    assert (plan.cursor, plan.skipped) == (cursor, skipped)


@pytest.mark.parametrize(
    ("started", "skipped", "late"),
    [
        (100, 3, 0),  # on time: 110, 120, 130 came due during the run
        (125, 1, 2),  # 25 s late: 110 and 120 passed before it started
        (135, 0, 3),  # started at the end (a blocked loop): all of them were late
    ],
)
def test_after_run_tells_late_occurrences_from_overlapped_ones(
    started: float, skipped: int, late: int
) -> None:
    plan = after_run(_task(), EVERY_10, 100, 0, 135, started=started)
    assert (plan.cursor, plan.skipped, plan.late) == (Cursor(140), skipped, late)


def test_after_run_of_a_folded_run_skips_silently_even_when_queueing() -> None:
    plan = after_run(_task(overlap=Overlap.QUEUE), EVERY_10, 100, 0, 135, folded=True)
    assert (plan.cursor, plan.skipped) == (Cursor(140), 0)


def test_after_run_of_once_off_and_keyword_ends_the_cursor() -> None:
    assert after_run(_task(), OnceSchedule(100), 100, 0, 200).cursor == Cursor(None)
    assert after_run(_task(), None, 100, 0, 200).cursor == Cursor(None)


@pytest.mark.parametrize(
    ("options", "now", "cursor", "skipped", "missed"),
    [
        ({}, 95, Cursor(100), 0, 0),  # not due yet
        ({}, 105, Cursor(100), 0, 0),  # one late occurrence simply runs
        ({}, 135, Cursor(100), 0, 3),  # RUN_ONCE folds 100..130
        ({"misfire": Misfire.SKIP}, 135, Cursor(140), 4, 0),
        ({"misfire": Misfire.RUN_ALL}, 135, Cursor(100, 3), 0, 0),
        ({"misfire": Misfire.RUN_ALL, "misfire_limit": 2}, 135, Cursor(100, 1), 2, 0),
    ],
)
def test_after_downtime(
    options: dict[str, Any], now: float, cursor: Cursor, skipped: int, missed: int
) -> None:
    plan = after_downtime(_task(**options), EVERY_10, 100, now)
    assert (plan.cursor, plan.skipped, plan.missed) == (cursor, skipped, missed)

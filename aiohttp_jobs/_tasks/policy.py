"""Pure cursor arithmetic for the overlap and misfire policies.

Given a schedule, the occurrence that just ran (or was missed) and the current
time, these functions say where a task's cursor goes next and how many
occurrences were skipped. No I/O, no clock: the runtime calls them and logs.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

from ..stores.base import Cursor
from .options import Misfire, Overlap, Task
from .schedules import OnceSchedule, Schedule

__all__ = ["COUNT_CAP", "Catchup", "after_downtime", "after_run", "due_between"]

COUNT_CAP = 1000
"""Missed or skipped occurrences are counted up to this many."""


def due_between(sched: Schedule, fire_at: float, now: float, cap: int) -> list[float]:
    """Occurrences after *fire_at* up to *now* (at most *cap* of them)."""
    found: list[float] = []
    last = fire_at
    while len(found) < cap:
        nxt = sched.following(last, last)
        if nxt is None or nxt > now:
            break
        found.append(nxt)
        last = nxt
    return found


class Catchup(NamedTuple):
    """Where the cursor goes, and what happened to the occurrences in between."""

    cursor: Cursor
    skipped: int = 0
    """Came due while the run went on, and dropped by the overlap policy."""
    missed: int = 0  # folded into one run (Misfire.RUN_ONCE)
    late: int = 0
    """Came due before the run could start (it started late: a blocked event
    loop, a busy scheduler), and were dropped."""


def after_run(
    task: Task,
    sched: Schedule | None,
    fire_at: float,
    backlog: int,
    now: float,
    *,
    started: float | None = None,
    folded: bool = False,
) -> Catchup:
    """The cursor after the occurrence *fire_at* ran (or started, when overlapping).

    Occurrences that came due meanwhile follow the task's overlap policy, unless
    the run stood for them all already (*folded*: ``Misfire.RUN_ONCE``). Those
    due before the run *started* (default: on time, at *fire_at*) were not
    overlapped by it: the run itself was late, and they are counted as ``late``,
    not ``skipped``.
    """
    if sched is None or isinstance(sched, OnceSchedule):
        return Catchup(Cursor(None))
    if backlog > 0:
        return Catchup(Cursor(sched.following(fire_at, fire_at), backlog - 1))
    passed = due_between(sched, fire_at, now, COUNT_CAP)
    if not passed:
        return Catchup(Cursor(sched.following(fire_at, fire_at)))
    if task.overlap is Overlap.QUEUE and not folded:
        keep = min(len(passed), task.queue_limit)
        return Catchup(Cursor(passed[0], keep - 1), skipped=len(passed) - keep)
    cursor = Cursor(sched.following(fire_at, now))
    if folded:
        return Catchup(cursor)
    start = fire_at if started is None else started
    late = bisect.bisect_right(passed, start)
    return Catchup(cursor, skipped=len(passed) - late, late=late)


def after_downtime(
    task: Task, sched: Schedule | None, fire_at: float, now: float
) -> Catchup:
    """The cursor for an occurrence found overdue at start-up (misfire policy).

    A single overdue occurrence simply runs; several are handled by the policy.
    """
    if sched is None or fire_at > now:
        return Catchup(Cursor(fire_at))
    later = due_between(sched, fire_at, now, COUNT_CAP)
    if not later:
        return Catchup(Cursor(fire_at))
    total = len(later) + 1
    if task.misfire is Misfire.SKIP:
        return Catchup(Cursor(sched.following(fire_at, now)), skipped=total)
    if task.misfire is Misfire.RUN_ALL:
        keep = min(total, task.misfire_limit)
        return Catchup(Cursor(fire_at, keep - 1), skipped=total - keep)
    return Catchup(Cursor(fire_at), missed=total - 1)

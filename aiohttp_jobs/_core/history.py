"""A bounded, queryable record of finished jobs."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from .._checks import MAX_COUNT, check_count, check_text
from .._errors import ConfigError
from .job import JobState

if TYPE_CHECKING:
    from .job import Job

_STATES = tuple(state.value for state in JobState)

__all__ = ["History", "HistoryPage", "matcher", "scan"]


class History:
    """The last ``maxlen`` finished jobs, oldest first when iterated.

    ``maxlen=0`` keeps nothing. Lookups scan the record, so they cost O(maxlen):
    fine for inspection, not meant for hot paths.
    """

    __slots__ = ("_jobs", "append")

    def __init__(self, *, maxlen: int) -> None:
        maxlen = check_count("maxlen", maxlen, minimum=0, maximum=MAX_COUNT)
        self._jobs: deque[Job[object]] = deque(maxlen=maxlen)
        #: Record a finished job (the deque's own method: called once per job).
        self.append: Callable[[Job[object]], None] = self._jobs.append

    def __repr__(self) -> str:
        return f"<History {len(self._jobs)}/{self.maxlen}>"

    @property
    def maxlen(self) -> int:
        maxlen = self._jobs.maxlen
        assert maxlen is not None
        return maxlen

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job[object]]:
        return iter(self._jobs)

    def newest(self) -> Iterator[Job[object]]:
        """The remembered jobs, newest first (do not await while iterating:
        finishing jobs change the record)."""
        return reversed(self._jobs)

    def clear(self) -> None:
        self._jobs.clear()

    def query(
        self,
        *,
        state: JobState | str | None = None,
        name: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> list[Job[object]]:
        """Finished jobs matching every given filter, newest first.

        *state* is a :class:`JobState` or its value (``"failed"``); *name* matches
        the job name exactly; *tag* keeps jobs carrying that tag; *limit* (an
        integer >= 0) caps how many are returned.
        """
        if state is not None and state not in _STATES:
            raise ConfigError(
                f"state must be a JobState or one of {', '.join(_STATES)}, "
                f"got {state!r}"
            )
        check_text("name", name, optional=True)
        check_text("tag", tag, optional=True)
        if limit is not None:
            check_count("limit", limit, minimum=0)
        found: list[Job[object]] = []
        if limit == 0:
            return found
        for job in reversed(self._jobs):
            if state is not None and job.state != state:
                continue
            if name is not None and job.name != name:
                continue
            if tag is not None and tag not in job.tags:
                continue
            found.append(job)
            if limit is not None and len(found) >= limit:
                break
        return found

    def get(self, job_id: str) -> Job[object] | None:
        """The remembered job with this id, else ``None``."""
        check_text("job_id", job_id)
        for job in reversed(self._jobs):
            if job.id == job_id:
                return job
        return None


# -- read-only queries for dashboards: bounded keyset scans ----------------------


class HistoryPage(NamedTuple):
    """One page of :meth:`History.scan`: newest first."""

    jobs: list[Job[object]]
    """The matching jobs, at most ``limit``."""
    scanned: int
    """How many jobs were looked at to find them."""
    next: str | None
    """The cursor of the next page (pass it as ``before``), ``None`` at the end."""
    exhausted: bool
    """Whether the scan reached the oldest remembered job."""


#: How far around the cursor's place :meth:`History.scan` looks for the job it
#: names (finish times are non-decreasing, but the wall clock may step back).
_CURSOR_WINDOW = 256


def _error_text(job: Job[object]) -> str:
    exc = job._exception
    if exc is None:
        return ""
    return f"{type(exc).__name__}: {exc}"


def matcher(
    *,
    state: JobState | str | None = None,
    name: str | None = None,
    tag: str | None = None,
    priority: int | None = None,
    search: str | None = None,
) -> Callable[[Job[object]], bool] | None:
    """A predicate keeping the jobs that match every given filter (``None``
    when there is no filter): *state* a :class:`JobState` or its value, *name*
    the exact job name, *tag* a tag the job carries, *priority* the priority's
    integer value, *search* a case-insensitive substring of the job's id, name
    or error text (``"<ExceptionType>: <message>"``)."""
    if state is not None and state not in _STATES:
        raise ConfigError(
            f"state must be a JobState or one of {', '.join(_STATES)}, got {state!r}"
        )
    check_text("name", name, optional=True)
    check_text("tag", tag, optional=True)
    check_text("search", search, optional=True)
    if priority is not None and (type(priority) is not int):
        raise ConfigError(f"priority must be an integer or None, got {priority!r}")
    needle = search.casefold() if search else None
    if state is None and name is None and tag is None and priority is None:
        if needle is None:
            return None

    def match(job: Job[object]) -> bool:
        if state is not None and job._state != state:
            return False
        if name is not None and job.name != name:
            return False
        if tag is not None and tag not in job._tags:
            return False
        if priority is not None and job._priority != priority:
            return False
        if needle is not None:
            return (
                needle in job.id
                or needle in job.name.casefold()
                or needle in _error_text(job).casefold()
            )
        return True

    return match


def _cursor(job: Job[object]) -> str:
    return f"{job.finished_at!r}/{job.id}"


def _start_index(jobs: deque[Job[object]], cursor: str) -> int:
    """The index (from the oldest) of the newest job older than *cursor*'s."""
    at_text, sep, job_id = cursor.partition("/")
    try:
        at = float(at_text)
    except ValueError:
        at = float("nan")
    if not sep or at != at or not job_id:
        raise ConfigError(f"before must be a cursor given by scan(), got {cursor!r}")
    # Binary search for the first job finished after *at* (finish times are
    # appended in order; deque indexing is cheap near either end and fine
    # in between for the ~17 probes of 100,000 jobs).
    lo, hi = 0, len(jobs)
    while lo < hi:
        mid = (lo + hi) // 2
        finished = jobs[mid]._finished_at
        if finished is not None and finished > at:
            hi = mid
        else:
            lo = mid + 1
    # The cursor's own job, if still remembered, is just before; look around
    # (the wall clock may have stepped back) so no job is shown twice.
    low = max(0, lo - _CURSOR_WINDOW)
    high = min(len(jobs), lo + _CURSOR_WINDOW)
    for index in range(high - 1, low - 1, -1):
        if jobs[index].id == job_id:
            return index - 1
    return lo - 1


def scan(
    history: History,
    *,
    before: str | None = None,
    match: Callable[[Job[object]], bool] | None = None,
    limit: int = 50,
    scan_limit: int | None = None,
) -> HistoryPage:
    """A page of *history*, newest first: up to *limit* jobs that *match*
    (a predicate from :func:`matcher`, or ``None`` for all), older than the
    cursor *before*, looking at no more than *scan_limit* jobs.

    A keyset scan: finding the cursor costs a binary search, and a page costs
    what it looks at, never a sort; ``HistoryPage.scanned`` says how many jobs
    were looked at. When *scan_limit* stops the scan, ``next`` continues it.
    """
    limit = check_count("limit", limit, minimum=1)
    if scan_limit is not None:
        scan_limit = check_count("scan_limit", scan_limit, minimum=1)
    if before is not None:
        check_text("before", before)
    jobs = history._jobs
    start = len(jobs) - 1 if before is None else _start_index(jobs, before)
    found: list[Job[object]] = []
    scanned = 0
    last: Job[object] | None = None
    if start < 0:
        return HistoryPage(found, 0, None, True)
    skip = len(jobs) - 1 - start
    for job in itertools.islice(reversed(jobs), skip, None):
        scanned += 1
        last = job
        if match is None or match(job):
            found.append(job)
            if len(found) >= limit:
                break
        if scan_limit is not None and scanned >= scan_limit:
            break
    exhausted = scanned >= start + 1
    cursor = None if exhausted or last is None else _cursor(last)
    return HistoryPage(found, scanned, cursor, exhausted)

"""What a task declaration says: delivery options, the ``Task`` record, and the
argument checks shared by declarations and dynamic instances."""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from .._checks import check_count as _check_count
from .._checks import check_duration
from .._core.priority import Priority
from .._errors import ConfigError, TaskDefinitionError
from ..stores.base import JSON, TaskStore
from .schedules import CronSchedule, IntervalSchedule, OnceSchedule, Schedule
from .zones import to_timestamp

__all__ = [
    "RESERVED",
    "Declared",
    "ExecutionMode",
    "FailureMode",
    "Fixture",
    "Middleware",
    "Misfire",
    "Overlap",
    "Task",
    "TaskFunc",
    "build_schedule",
    "check_count",
    "check_params",
    "check_seconds",
]


class ExecutionMode(enum.Enum):
    """How often one occurrence may run."""

    AT_LEAST_ONCE = "at_least_once"
    """Leased while it runs; a run that fails or whose lease expires runs again."""
    AT_MOST_ONCE = "at_most_once"
    """The next occurrence is committed before the run starts; no retries."""


class FailureMode(enum.Enum):
    """What an at-least-once occurrence does once its retries are used up."""

    NONE = "none"
    """Keep the lease: the occurrence runs again when the lease expires."""
    UNLOCK = "unlock"
    """Release the lease: the occurrence runs again after the backoff delay."""
    COMMIT = "commit"
    """Count the failure as done and move on to the next occurrence."""


class Overlap(enum.Enum):
    """What happens to occurrences that come due while the previous run goes on."""

    SKIP = "skip"
    """They are skipped (and logged); the next run is the next future occurrence."""
    QUEUE = "queue"
    """They run one after the other once the current run ends (up to queue_limit)."""
    ALLOW = "allow"
    """They start on time, up to ``max_overlap`` runs at once."""


class Misfire(enum.Enum):
    """What happens at start-up to occurrences missed while the app was down."""

    RUN_ONCE = "run_once"
    """Run once now for all of them (``context.missed`` says how many)."""
    RUN_ALL = "run_all"
    """Run each of them, oldest first, up to ``misfire_limit``; skip the rest."""
    SKIP = "skip"
    """Skip them all (logged); wait for the next future occurrence."""


# A task takes the Context of its run and a middleware takes it with the next
# call; the Context (a layer above, since it refers to the runtime) is not
# named here.
TaskFunc = Callable[..., Awaitable[object]]
Middleware = Callable[..., Awaitable[object]]
Fixture = Callable[[Any], AsyncIterator[object]]

# Context attributes that a fixture name would shadow.
RESERVED = frozenset(
    {
        "app",
        "task",
        "params",
        "payload",
        "scheduled_at",
        "fire_at",
        "run_id",
        "attempt",
        "missed",
        "job",
        "runtime",
        "fixtures",
        "heartbeat",
        "leased",
        "name",
    }
)


@dataclass(frozen=True, eq=False)
class Task:
    """One declared task (see :meth:`Tasks.task` for the meaning of each option)."""

    name: str
    func: TaskFunc
    schedule: Schedule | None
    keyword: str | None
    dynamic: bool
    params: Mapping[str, JSON]
    enabled: bool
    timezone: tzinfo | None
    execution_mode: ExecutionMode
    failure_mode: FailureMode
    lease_duration: float
    heartbeat: float | None
    retries: int
    retry_backoff: float
    retry_backoff_max: float
    overlap: Overlap
    max_overlap: int
    queue_limit: int
    misfire: Misfire
    misfire_limit: int
    priority: Priority

    def __repr__(self) -> str:
        kind = (
            "dynamic"
            if self.dynamic
            else f"keyword={self.keyword!r}"
            if self.keyword is not None
            else repr(self.schedule)
        )
        return f"<Task {self.name!r} {kind}>"

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return min(self.retry_backoff * 2.0 ** min(attempt, 60), self.retry_backoff_max)

    @property
    def max_running(self) -> int:
        """How many runs of one schedule may be in progress at once."""
        return self.max_overlap if self.overlap is Overlap.ALLOW else 1


@dataclass(frozen=True)
class Declared:
    """What a :class:`~.declarations.Tasks` registry holds when a runtime starts.

    The runtime works from this snapshot: the registry refuses declarations
    while one of its runtimes runs, so the two never disagree.
    """

    tasks: Mapping[str, Task]
    fixtures: Mapping[str, Fixture]
    middlewares: tuple[Middleware, ...]
    store: TaskStore | None
    concurrency_limit: int | None
    batch_size: int
    owner: str | None


def check_params(params: Mapping[str, object], where: str) -> dict[str, JSON]:
    """*params* as a plain dict, after checking that JSON can carry it."""
    if not params:
        return {}
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TaskDefinitionError(
            f"{where}: parameters must be JSON-serialisable ({exc}); pass ids or "
            "plain data and load objects inside the task or from a fixture"
        ) from None
    return dict(params)  # type: ignore[arg-type]


def check_seconds(value: float | timedelta, what: str, *, zero: bool = False) -> float:
    """Seconds (or a ``timedelta``): finite, positive (or 0 with *zero*), at most
    about 100 years; a :class:`TaskDefinitionError` naming *what* otherwise."""
    try:
        return check_duration(what, value, positive=not zero)
    except ConfigError as exc:
        raise TaskDefinitionError(str(exc)) from None


def check_count(value: int, what: str, minimum: int) -> int:
    try:
        return _check_count(what, value, minimum=minimum)
    except ConfigError as exc:
        raise TaskDefinitionError(str(exc)) from None


def build_schedule(
    where: str,
    *,
    schedule: str | None,
    interval: float | timedelta | None,
    execute_at: datetime | float | None,
    timezone: tzinfo | None,
    start_at: datetime | float | None,
    end_at: datetime | float | None,
) -> Schedule:
    """The schedule of a task or dynamic instance; exactly one kind must be given."""
    if (schedule is not None) + (interval is not None) + (execute_at is not None) != 1:
        kinds = (
            ("schedule", schedule),
            ("interval", interval),
            ("execute_at", execute_at),
        )
        given = [name for name, value in kinds if value is not None]
        raise TaskDefinitionError(
            f"{where}: give exactly one of schedule= (cron), interval= or execute_at=, "
            f"got {' and '.join(given) if given else 'none'}"
        )
    if execute_at is not None and (start_at is not None or end_at is not None):
        raise TaskDefinitionError(
            f"{where}: execute_at= takes no start_at/end_at window"
        )
    try:
        if execute_at is not None:
            return OnceSchedule(to_timestamp(execute_at, timezone, "execute_at"))
        start = (
            None if start_at is None else to_timestamp(start_at, timezone, "start_at")
        )
        end = None if end_at is None else to_timestamp(end_at, timezone, "end_at")
        if schedule is not None:
            return CronSchedule(schedule, timezone=timezone, start_at=start, end_at=end)
        assert interval is not None
        return IntervalSchedule(
            check_seconds(interval, f"{where}: interval"), start_at=start, end_at=end
        )
    except TaskDefinitionError:  # already names where it comes from
        raise
    except ConfigError as exc:
        raise TaskDefinitionError(f"{where}: {exc}") from None

"""What a task run sees (:class:`Context`), what it can ask of the runtime that
runs it (:class:`TaskControl`), and what the runtime reports about tasks
(:class:`TaskInfo`, :class:`RunInfo`).

:class:`TaskControl` is the runtime as a run sees it: the runtime module
implements it, so this module (and the runner that builds contexts) never
imports the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from .._checks import MAX_TIMESTAMP
from .._core.clock import Clock
from .._core.job import Job
from .._core.tracing import LINK_KEY, unlink
from .._errors import LeaseLostError
from ..stores.base import (
    JSON,
    Claim,
    InstanceInfo,
    Lease,
    LeaseInfo,
    RunLogEntry,
    TaskStore,
)
from .options import ExecutionMode, Task

__all__ = [
    "Context",
    "RunInfo",
    "TaskControl",
    "TaskInfo",
    "TaskStats",
    "describe",
    "utc",
]


class TaskControl(Protocol):
    """The task runtime, as seen from a run (``context.runtime``).

    :class:`~aiohttp_jobs.TaskRuntime` is the implementation; see its methods.
    """

    @property
    def app(self) -> object: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def store(self) -> TaskStore: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def stopping(self) -> bool: ...

    async def schedule_task(
        self,
        task: str | Callable[..., object],
        instance: str,
        /,
        *,
        schedule: str | None = None,
        interval: float | timedelta | None = None,
        execute_at: datetime | float | None = None,
        timezone: str | tzinfo | None = None,
        start_at: datetime | float | None = None,
        end_at: datetime | float | None = None,
        enabled: bool = True,
        **params: JSON,
    ) -> str: ...
    async def unschedule_task(
        self, task: str | Callable[..., object], instance: str, /
    ) -> bool: ...
    async def run_now(self, name: str, /, **payload: JSON) -> str: ...
    async def fire(self, keyword: str, /, **payload: JSON) -> list[str]: ...
    async def enable(self, name: str, /) -> None: ...
    async def disable(self, name: str, /) -> None: ...
    async def list_tasks(self) -> list[TaskInfo]: ...
    async def wait_idle(self) -> None: ...
    @property
    def instance_id(self) -> str: ...
    async def cancel_run(self, run_id: str, /) -> bool: ...
    async def instances(self) -> list[InstanceInfo]: ...
    async def leases(self) -> list[LeaseInfo]: ...
    async def recent_runs(
        self, name: str, /, *, limit: int = ...
    ) -> list[RunLogEntry]: ...


Extend = Callable[[Claim, float], Awaitable[Lease]]
"""Moves a claim's lease to *seconds* from now; what the store said of it."""


class Context:
    """What a task run receives: the app, fixtures by name, the task, params, times."""

    __slots__ = (
        "_claim",
        "_extend",
        "_fixtures",
        "_leased",
        "_runtime",
        "_trace_link",
        "app",
        "missed",
        "params",
        "payload",
        "task",
    )

    def __init__(
        self,
        runtime: TaskControl,
        fixtures: Mapping[str, object],
        extend: Extend,
        task: Task,
        claim: Claim,
        missed: int,
    ) -> None:
        self._runtime = runtime
        self._claim = claim
        self._fixtures = fixtures
        self._extend = extend
        self._leased = task.execution_mode is ExecutionMode.AT_LEAST_ONCE
        self.app: Any = runtime.app  # the user's application: its type is theirs
        self.task = task
        payload = claim.payload
        self._trace_link: Mapping[str, JSON] | None = None
        if payload and LINK_KEY in payload:
            # Added by fire() or run_now() on a traced instance: not the task's.
            payload, self._trace_link = unlink(payload)
        self.params: dict[str, JSON] = {**claim.record.params, **(payload or {})}
        self.payload = payload
        self.missed = missed

    def __getattr__(self, name: str) -> Any:
        # Fixtures by name (their types are the user's: hence Any).
        try:
            return self._fixtures[name]
        except KeyError:
            raise AttributeError(
                f"task context has no attribute or fixture {name!r}; declared "
                f"fixtures: {sorted(self._fixtures)}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"<Context {self.task.name!r} run={self.run_id!r} attempt={self.attempt}>"
        )

    @property
    def fixtures(self) -> Mapping[str, object]:
        return self._fixtures

    @property
    def runtime(self) -> TaskControl:
        """The :class:`~aiohttp_jobs.TaskRuntime` running this task."""
        return self._runtime

    @property
    def run_id(self) -> str:
        """``"<task or instance key>@<fire time in ms>"``, the same on all instances."""
        return self._claim.run_id

    @property
    def name(self) -> str:
        """The task name, or ``"<task>:<instance>"`` for a dynamic instance."""
        return self._claim.record.key

    @property
    def fire_at(self) -> float:
        return self._claim.fire_at

    @property
    def scheduled_at(self) -> datetime:
        """When this occurrence was due (aware UTC)."""
        return datetime.fromtimestamp(self._claim.fire_at, UTC)

    @property
    def attempt(self) -> int:
        """0 on the first execution of this occurrence, then 1, 2, ..."""
        return self._claim.attempt

    @property
    def fence(self) -> int:
        """Fencing token of this execution: greater than that of every earlier
        execution of this task (or instance), on any instance of the app.

        Pass it to a system that can refuse writes carrying an older token, so a
        run that lost its lease (a paused process) cannot overwrite the work of
        the run that took over.
        """
        return self._claim.fence

    @property
    def leased(self) -> bool:
        return self._leased

    async def heartbeat(self) -> None:
        """Extend this run's lease by ``lease_duration`` now (the runner also
        does it by itself, every ``heartbeat`` seconds).

        Raises :class:`LeaseLostError` when the lease was already lost (another
        run of the same occurrence may be executing, or the instance was
        unscheduled or replaced): stop working then. When the run was cancelled
        from an instance, it is cancelled at its next ``await``.
        """
        if not self._leased:
            return
        if not await self._extend(self._claim, self.task.lease_duration):
            raise LeaseLostError(
                f"task {self.name!r} lost the lease of run {self.run_id!r}; another "
                "runner may be executing it, or the instance was unscheduled or "
                "replaced: stop and let this exception propagate"
            )


@dataclass(frozen=True)
class RunInfo:
    """The last run of a task (for dashboards)."""

    run_id: str
    job_id: str
    state: str
    scheduled_at: datetime
    started_at: datetime | None
    """When the job started (the scheduler's wall clock), ``None`` while pending."""
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class TaskInfo:
    """One task or dynamic instance, as the runtime sees it now."""

    key: str
    task: str
    kind: str  # "cron", "interval", "once", "keyword"
    schedule: str
    enabled: bool
    next_fire_at: datetime | None
    running: int
    runs: int
    failures: int
    skipped: int
    last_run: RunInfo | None


class TaskStats:
    __slots__ = ("failures", "last", "running", "runs", "skipped")

    def __init__(self) -> None:
        self.running = 0
        self.runs = 0
        self.failures = 0
        self.skipped = 0
        self.last: tuple[Claim, Job[Any]] | None = None


def describe(spec: Mapping[str, object] | None) -> tuple[str, str]:
    """``(kind, text)`` of a stored schedule description, for listings.

    Never raises: a description this version cannot read is shown as it is.
    """
    if spec is None:
        return "keyword", ""
    if "cron" in spec:
        return "cron", f"{spec['cron']} ({spec.get('timezone', 'UTC')})"
    interval = spec.get("interval")
    if isinstance(interval, float | int):
        return "interval", f"every {interval:g}s"
    at = spec.get("at")
    if isinstance(at, float | int):
        when = utc(at)
        return "once", when.isoformat() if when is not None else repr(at)
    return "unknown", repr(dict(spec))


def utc(ts: float | None) -> datetime | None:
    """*ts* as an aware UTC datetime; ``None`` for ``None`` or a time no datetime
    can show (a store written by a version that did not check it)."""
    if ts is None or not 0.0 <= ts <= MAX_TIMESTAMP:
        return None
    return datetime.fromtimestamp(ts, UTC)

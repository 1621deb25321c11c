"""What a task run sees (:class:`Context`) and what the runtime reports about
tasks (:class:`TaskInfo`, :class:`RunInfo`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._core.job import Job
from .._errors import LeaseLostError
from ..stores.base import JSON, Claim
from .options import ExecutionMode, Task

if TYPE_CHECKING:
    from .runtime import TaskRuntime

__all__ = ["Context", "RunInfo", "TaskInfo", "TaskStats", "describe", "utc"]


class Context:
    """What a task run receives: the app, fixtures by name, the task, params, times."""

    __slots__ = (
        "_claim",
        "_fixtures",
        "_leased",
        "_runtime",
        "app",
        "missed",
        "params",
        "payload",
        "task",
    )

    def __init__(
        self,
        runtime: TaskRuntime,
        task: Task,
        claim: Claim,
        params: dict[str, JSON],
        missed: int,
    ) -> None:
        self._runtime = runtime
        self._claim = claim
        self._fixtures = runtime._fixtures
        self._leased = task.execution_mode is ExecutionMode.AT_LEAST_ONCE
        self.app: Any = runtime.app
        self.task = task
        self.params = params
        self.payload = claim.payload
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
    def runtime(self) -> TaskRuntime:
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
        return datetime.fromtimestamp(self._claim.fire_at, timezone.utc)

    @property
    def attempt(self) -> int:
        """0 on the first execution of this occurrence, then 1, 2, ..."""
        return self._claim.attempt

    @property
    def leased(self) -> bool:
        return self._leased

    async def heartbeat(self) -> None:
        """Extend this run's lease by ``lease_duration``.

        Raises :class:`LeaseLostError` when the lease was already lost (another
        run of the same occurrence may be executing): stop working then.
        """
        if not self._leased:
            return
        runtime = self._runtime
        until = runtime._clock.time() + self.task.lease_duration
        if not await runtime._store.extend(self._claim, until=until):
            raise LeaseLostError(
                f"task {self.name!r} lost the lease of run {self.run_id!r}; another "
                "runner may be executing it: stop and let this exception propagate"
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
    if spec is None:
        return "keyword", ""
    if "cron" in spec:
        return "cron", f"{spec['cron']} ({spec.get('timezone', 'UTC')})"
    if "interval" in spec:
        return "interval", f"every {spec['interval']:g}s"
    at = spec.get("at")
    assert isinstance(at, float | int)
    return "once", datetime.fromtimestamp(at, timezone.utc).isoformat()


def utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)

"""The task runner: claims due runs from the store and spawns each as a Job.

It never polls: one clock timer is armed for the store's next due time and
re-armed whenever a schedule changes or a run finishes. Every run goes through
``Scheduler.spawn`` so it has an id, a state, a result, timings, history and
events like any other job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from ._clock import Clock, SystemClock, TimerHandle, sleep_until
from ._cron import OnceSchedule, Schedule, parse_timezone, schedule_from_spec
from ._errors import (
    ConfigError,
    LeaseLostError,
    SchedulerClosedError,
    TaskDefinitionError,
    TaskNotFoundError,
)
from ._job import Job
from ._tasks import (
    ExecutionMode,
    FailureMode,
    Misfire,
    Overlap,
    Task,
    Tasks,
    build_schedule,
    check_params,
)
from .stores.base import JSON, Claim, Cursor, TaskRecord, TaskStore

if TYPE_CHECKING:
    from ._scheduler import Scheduler

__all__ = ["Context", "RunInfo", "TaskInfo", "TaskRuntime"]

log = logging.getLogger("aiohttp_jobs.tasks")

_COUNT_CAP = 1000  # missed/skipped occurrences are counted up to this many
_RETRY_LOOP = 1.0  # seconds between attempts when the store fails


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


class _Stats:
    __slots__ = ("failures", "last", "running", "runs", "skipped")

    def __init__(self) -> None:
        self.running = 0
        self.runs = 0
        self.failures = 0
        self.skipped = 0
        self.last: tuple[Claim, Job[Any]] | None = None


def _describe(spec: Mapping[str, object] | None) -> tuple[str, str]:
    if spec is None:
        return "keyword", ""
    if "cron" in spec:
        return "cron", f"{spec['cron']} ({spec.get('timezone', 'UTC')})"
    if "interval" in spec:
        return "interval", f"every {spec['interval']:g}s"
    at = spec.get("at")
    assert isinstance(at, float | int)
    return "once", datetime.fromtimestamp(at, timezone.utc).isoformat()


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc)


class TaskRuntime:
    """The running side of a :class:`Tasks` registry, bound to one app.

    Get it with ``aiohttp_jobs.get_tasks(app_or_request)``.
    """

    def __init__(
        self,
        *,
        tasks: Tasks,
        app: object,
        scheduler: Scheduler,
        clock: Clock,
        store: TaskStore,
    ) -> None:
        self.tasks = tasks
        self.app = app
        self.scheduler = scheduler
        self._clock = clock
        self._store = store
        self._owner = tasks.owner or f"tasks-{uuid.uuid4().hex[:12]}"
        self._fixtures: dict[str, object] = {}
        self._chains: dict[str, Callable[[Context], Awaitable[object]]] = {}
        self._schedules: dict[str, tuple[Mapping[str, object], Schedule]] = {}
        self._missed: dict[str, int] = {}
        self._stats: dict[str, _Stats] = {}
        self._inflight: set[Job[Any]] = set()
        self._changed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._lease = 60.0

    def __repr__(self) -> str:
        state = "stopping" if self._stopping else "running"
        return (
            f"<TaskRuntime {state} tasks={len(self.tasks.tasks)} "
            f"in_flight={len(self._inflight)}>"
        )

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def store(self) -> TaskStore:
        return self._store

    @property
    def in_flight(self) -> int:
        """Runs spawned and not finished yet."""
        return len(self._inflight)

    # -- public handle ------------------------------------------------------------

    def _task(self, task: str | Callable[..., object]) -> Task:
        if not isinstance(task, str):
            matches = [t for t in self.tasks.tasks.values() if t.func is task]
            if len(matches) != 1:
                raise TaskNotFoundError(
                    f"{task!r} is declared {len(matches)} times; pass the task name"
                )
            return matches[0]
        found = self.tasks.tasks.get(task)
        if found is None:
            raise TaskNotFoundError(
                f"no task named {task!r}; declared: {sorted(self.tasks.tasks)}"
            )
        return found

    async def schedule_task(
        self,
        task: str | Callable[..., object],
        instance: str,
        *,
        schedule: str | None = None,
        interval: float | timedelta | None = None,
        execute_at: datetime | float | None = None,
        timezone: str | tzinfo | None = None,
        start_at: datetime | float | None = None,
        end_at: datetime | float | None = None,
        enabled: bool = True,
        **params: JSON,
    ) -> str:
        """Add (or replace) an instance of a dynamic task; returns its key."""
        declared = self._task(task)
        if not declared.dynamic:
            raise TaskNotFoundError(
                f"task {declared.name!r} is not a dynamic task; declare it with "
                "@tasks.dynamic_task()"
            )
        if not isinstance(instance, str) or not instance:
            raise TaskNotFoundError("an instance name must be a non-empty string")
        key = f"{declared.name}:{instance}"
        where = f"dynamic task {key!r}"
        tz = declared.timezone
        if timezone is not None:
            try:
                tz = parse_timezone(timezone)
            except ConfigError as exc:
                raise TaskDefinitionError(f"{where}: {exc}") from None
        sched = build_schedule(
            where,
            schedule=schedule,
            interval=interval,
            execute_at=execute_at,
            timezone=tz,
            start_at=start_at,
            end_at=end_at,
        )
        merged = {**declared.params, **check_params(params, where)}
        record = TaskRecord(
            key=key,
            task=declared.name,
            schedule=sched.to_spec(),
            params=merged,
            enabled=enabled,
            fire_at=sched.first(self._clock.time()),
            max_running=self._max_running(declared),
        )
        self._schedules[key] = (record.schedule or {}, sched)
        await self._store.save(record)
        self._changed.set()
        return key

    async def unschedule_task(
        self, task: str | Callable[..., object], instance: str
    ) -> bool:
        """Remove a dynamic task instance; ``False`` if it did not exist."""
        key = f"{self._task(task).name}:{instance}"
        self._schedules.pop(key, None)
        removed = await self._store.delete(key)
        self._changed.set()
        return removed

    async def _record(self, name: str) -> TaskRecord:
        record = await self._store.get(name)
        if record is None:
            raise TaskNotFoundError(
                f"no task or dynamic instance {name!r}; declared tasks: "
                f"{sorted(self.tasks.tasks)}"
            )
        return record

    async def run_now(self, name: str, **payload: JSON) -> str:
        """Run a task (or dynamic instance ``"task:instance"``) once, now.

        The run does not move the schedule; returns its run id.
        """
        record = await self._record(name)
        run_id = await self._store.add_run(
            record.key,
            fire_at=self._clock.time(),
            payload=check_params(payload, f"run_now({name!r})") if payload else None,
        )
        self._changed.set()
        return run_id

    async def fire(self, keyword: str, **payload: JSON) -> list[str]:
        """Run every task declared with ``keyword=keyword`` once, now.

        ``payload`` is merged into ``context.params``; returns the run ids.
        """
        checked = check_params(payload, f"fire({keyword!r})")
        now = self._clock.time()
        run_ids = [
            await self._store.add_run(task.name, fire_at=now, payload=checked)
            for task in self.tasks.tasks.values()
            if task.keyword == keyword and task.enabled
        ]
        if run_ids:
            self._changed.set()
        else:
            log.warning("fire(%r): no enabled task has this keyword", keyword)
        return run_ids

    async def enable(self, name: str) -> None:
        """Let a disabled task (or dynamic instance) fire again."""
        await self._set_enabled(name, True)

    async def disable(self, name: str) -> None:
        """Stop firing a task (or dynamic instance) until ``enable()``."""
        await self._set_enabled(name, False)

    async def _set_enabled(self, name: str, enabled: bool) -> None:
        record = await self._record(name)
        if record.enabled is enabled:
            return
        fire_at = record.fire_at
        if enabled and fire_at is not None:
            # Occurrences that passed while disabled are not runs owed.
            sched = self._schedule(record)
            now = self._clock.time()
            if sched is not None and fire_at <= now:
                fire_at = sched.following(fire_at, now)
        await self._store.save(
            TaskRecord(
                key=record.key,
                task=record.task,
                schedule=record.schedule,
                params=record.params,
                enabled=enabled,
                fire_at=fire_at,
                max_running=record.max_running,
            )
        )
        self._changed.set()

    async def list_tasks(self) -> list[TaskInfo]:
        """Every task and dynamic instance with its next fire time and last run."""
        infos = []
        for record in await self._store.records():
            kind, text = _describe(record.schedule)
            stats = self._stats.get(record.key) or _Stats()
            last = None
            if stats.last is not None:
                claim, job = stats.last
                error = (
                    job.exception()
                    if job.done and not job.state == "cancelled"
                    else None
                )
                last = RunInfo(
                    run_id=claim.run_id,
                    job_id=job.id,
                    state=str(job.state),
                    scheduled_at=datetime.fromtimestamp(claim.fire_at, timezone.utc),
                    started_at=_utc(job.started_at),
                    finished_at=_utc(job.finished_at),
                    error=None if error is None else repr(error),
                )
            infos.append(
                TaskInfo(
                    key=record.key,
                    task=record.task,
                    kind=kind,
                    schedule=text,
                    enabled=record.enabled,
                    next_fire_at=_utc(record.fire_at) if record.enabled else None,
                    running=stats.running,
                    runs=stats.runs,
                    failures=stats.failures,
                    skipped=stats.skipped,
                    last_run=last,
                )
            )
        return infos

    async def wait_idle(self) -> None:
        """Wait until no run is in flight (runs due later are not waited for)."""
        while self._inflight:
            self._idle.clear()
            await self._idle.wait()

    # -- start-up and shutdown ----------------------------------------------------

    async def _start(self) -> None:
        now = self._clock.time()
        declared = self.tasks.tasks
        for task in declared.values():
            self._chains[task.name] = self._build_chain(task)
            if task.dynamic:
                continue
            spec = None if task.schedule is None else task.schedule.to_spec()
            existing = await self._store.get(task.name)
            if existing is not None and existing.schedule == spec:
                record = TaskRecord(
                    key=task.name,
                    task=task.name,
                    schedule=spec,
                    params=dict(task.params),
                    enabled=task.enabled,
                    fire_at=existing.fire_at,
                    backlog=existing.backlog,
                    max_running=self._max_running(task),
                )
            else:
                record = TaskRecord(
                    key=task.name,
                    task=task.name,
                    schedule=spec,
                    params=dict(task.params),
                    enabled=task.enabled,
                    fire_at=None if task.schedule is None else task.schedule.first(now),
                    max_running=self._max_running(task),
                )
            await self._store.save(self._misfired(task, record, now))
        for record in await self._store.records():
            dynamic = declared.get(record.task)
            if dynamic is not None and dynamic.dynamic:
                fixed = self._misfired(dynamic, record, now)
                if fixed is not record:
                    await self._store.save(fixed)
        self._loop_task = asyncio.get_running_loop().create_task(self._run_loop())

    def _misfired(self, task: Task, record: TaskRecord, now: float) -> TaskRecord:
        """Apply the misfire policy to occurrences missed while nobody ran them."""
        fire_at = record.fire_at
        sched = self._schedule(record)
        if fire_at is None or sched is None or fire_at > now or record.backlog:
            return record
        missed = [fire_at]
        while len(missed) <= _COUNT_CAP:
            nxt = sched.following(missed[-1], missed[-1])
            if nxt is None or nxt > now:
                break
            missed.append(nxt)
        if len(missed) == 1:
            return record  # one late occurrence is simply run
        count = f"{len(missed)}{'+' if len(missed) > _COUNT_CAP else ''}"
        policy = task.misfire
        if policy is Misfire.SKIP:
            log.warning(
                "task %r: skipping %s missed runs (misfire=SKIP)", record.key, count
            )
            self._stats_for(record.key).skipped += len(missed)
            return _with_cursor(record, sched.following(fire_at, now), 0)
        if policy is Misfire.RUN_ALL:
            keep = min(len(missed), task.misfire_limit)
            if keep < len(missed):
                log.warning(
                    "task %r: %s missed runs, running the first %d (misfire_limit)",
                    record.key,
                    count,
                    keep,
                )
                self._stats_for(record.key).skipped += len(missed) - keep
            else:
                log.warning("task %r: running %s missed runs", record.key, count)
            return _with_cursor(record, fire_at, keep - 1)
        log.warning(
            "task %r: %s missed runs, running once (misfire=RUN_ONCE)",
            record.key,
            count,
        )
        self._missed[record.key] = len(missed) - 1
        return record

    async def _stop(self) -> None:
        self._stopping = True
        self._changed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop_task is not None:
            await self._loop_task
        await self.wait_idle()

    # -- the loop -----------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        self._changed.set()

    def _arm(self, when: float | None) -> None:
        if when == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._clock.call_at(when, self._on_timer)

    async def _run_loop(self) -> None:
        while not self._stopping:
            try:
                await self._run_some()
            except Exception:  # noqa: PERF203 - the loop restarts after an error
                log.exception("task runner: store error; retrying in %gs", _RETRY_LOOP)
                await sleep_until(self._clock, self._clock.time() + _RETRY_LOOP)

    async def _run_some(self) -> None:
        store = self._store
        limit = self.tasks.concurrency_limit
        batch = self.tasks.batch_size
        changed = self._changed
        while not self._stopping:
            changed.clear()
            free = batch if limit is None else min(batch, limit - len(self._inflight))
            if free > 0:
                now = self._clock.time()
                if self._timer is None and self._timer_at is not None:
                    now = max(now, self._timer_at)  # woken by the due timer
                claims = await store.acquire(
                    now=now, owner=self._owner, lease_duration=self._lease, limit=free
                )
                if claims:
                    for claim in claims:
                        if not await self._spawn(claim):
                            return
                    continue
                self._arm(await store.next_due())
            await changed.wait()

    async def _spawn(self, claim: Claim) -> bool:
        record = claim.record
        task = self.tasks.tasks.get(record.task)
        if task is None:
            log.error(
                "no declared task %r for %r: dropping the run", record.task, record.key
            )
            await self._store.commit(claim, cursor=Cursor(None))
            return True
        missed = self._missed.pop(record.key, 0) if claim.from_cursor else 0
        coro = self._execute(task, claim, missed)
        try:
            job = await self.scheduler.spawn(
                coro, name=record.key, priority=task.priority, tags=("task", task.name)
            )
        except SchedulerClosedError:
            log.warning("scheduler closed: run %r left to its lease", claim.run_id)
            self._stopping = True
            return False
        stats = self._stats_for(record.key)
        stats.running += 1
        stats.last = (claim, job)
        self._inflight.add(job)
        job.add_done_callback(self._on_done)
        return True

    def _on_done(self, job: Job[Any]) -> None:
        self._inflight.discard(job)
        stats = self._stats.get(job.name)
        if stats is not None:
            stats.running -= 1
            stats.runs += 1
            if job.state == "failed":
                stats.failures += 1
        if not self._inflight:
            self._idle.set()
        self._changed.set()

    def _stats_for(self, key: str) -> _Stats:
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = _Stats()
        return stats

    # -- one run ------------------------------------------------------------------

    def _build_chain(self, task: Task) -> Callable[[Context], Awaitable[object]]:
        call: Callable[[Context], Awaitable[object]] = task.func
        for middleware in reversed(self.tasks.middlewares):

            def wrap(
                ctx: Context,
                _mw: Any = middleware,
                _next: Callable[[Context], Awaitable[object]] = call,
            ) -> Awaitable[object]:
                return _mw(ctx, lambda: _next(ctx))  # type: ignore[no-any-return]

            call = wrap
        return call

    def _schedule(self, record: TaskRecord) -> Schedule | None:
        spec = record.schedule
        if spec is None:
            return None
        task = self.tasks.tasks.get(record.task)
        if task is not None and not task.dynamic and task.schedule is not None:
            return task.schedule
        cached = self._schedules.get(record.key)
        if cached is not None and cached[0] == spec:
            return cached[1]
        sched = schedule_from_spec(spec)
        self._schedules[record.key] = (spec, sched)
        return sched

    def _max_running(self, task: Task) -> int:
        return task.max_overlap if task.overlap is Overlap.ALLOW else 1

    def _next_cursor(self, task: Task, claim: Claim, now: float) -> Cursor:
        """Where the cursor goes after the occurrence *claim* (overlap policy)."""
        record = claim.record
        sched = self._schedule(record)
        fire_at = claim.fire_at
        if sched is None or isinstance(sched, OnceSchedule):
            return Cursor(None)
        if record.backlog > 0:
            return Cursor(sched.following(fire_at, fire_at), record.backlog - 1)
        nxt = sched.following(fire_at, fire_at)
        if nxt is None or nxt > now:
            return Cursor(nxt)
        passed = [nxt]  # occurrences that came due while this one ran
        while len(passed) < _COUNT_CAP:
            later = sched.following(passed[-1], passed[-1])
            if later is None or later > now:
                break
            passed.append(later)
        if task.overlap is Overlap.QUEUE:
            keep = min(len(passed), task.queue_limit)
            if keep < len(passed):
                self._skipped(record.key, len(passed) - keep, "queue_limit")
            return Cursor(nxt, keep - 1)
        self._skipped(record.key, len(passed), "overlap=SKIP")
        return Cursor(sched.following(fire_at, now))

    def _skipped(self, key: str, count: int, why: str) -> None:
        self._stats_for(key).skipped += count
        log.warning(
            "task %r: skipped %d occurrence(s) that came due during a run (%s)",
            key,
            count,
            why,
        )

    async def _execute(self, task: Task, claim: Claim, missed: int) -> object:
        store = self._store
        clock = self._clock
        params = dict(claim.record.params)
        if claim.payload:
            params.update(claim.payload)
        ctx = Context(self, task, claim, params, missed)
        mode = task.execution_mode
        if claim.from_cursor and mode is ExecutionMode.AT_MOST_ONCE:
            await store.commit(
                claim, cursor=self._next_cursor(task, claim, clock.time())
            )
            self._changed.set()
        elif mode is ExecutionMode.AT_MOST_ONCE:
            await store.commit(claim)
        elif claim.from_cursor and claim.record.max_running > 1:
            cursor = self._next_cursor(task, claim, clock.time())
            await store.commit(claim, cursor=cursor, keep_lease=True)
            self._changed.set()
        if ctx.leased and task.lease_duration != self._lease:
            await store.extend(claim, until=clock.time() + task.lease_duration)
            self._changed.set()  # the lease may now expire before the armed timer
        beat: asyncio.Task[None] | None = None
        if ctx.leased and task.heartbeat is not None:
            beat = asyncio.get_running_loop().create_task(
                self._beat(ctx, task.heartbeat)
            )
        try:
            result = await self._chains[task.name](ctx)
        except Exception as exc:
            if ctx.leased:
                await self._failed(task, claim, exc)
            else:
                log.error(
                    "task %r run %r failed", task.name, claim.run_id, exc_info=exc
                )
            raise
        finally:
            if beat is not None:
                beat.cancel()
        if ctx.leased:
            await self._succeeded(task, claim)
        return result

    async def _beat(self, ctx: Context, every: float) -> None:
        clock = self._clock
        with contextlib.suppress(LeaseLostError):
            while True:
                await sleep_until(clock, clock.time() + every)
                await ctx.heartbeat()

    async def _succeeded(self, task: Task, claim: Claim) -> None:
        store = self._store
        if claim.from_cursor and claim.record.max_running == 1:
            cursor = self._next_cursor(task, claim, self._clock.time())
            ok = await store.commit(claim, cursor=cursor)
            if ok and cursor.fire_at is None and task.dynamic:
                await store.delete(claim.record.key)  # a finished once-off instance
        else:
            ok = await store.commit(claim)
        if not ok:
            log.warning(
                "task %r run %r finished after losing its lease; it may have run twice",
                claim.record.key,
                claim.run_id,
            )

    async def _failed(self, task: Task, claim: Claim, exc: BaseException) -> None:
        store = self._store
        attempt = claim.attempt
        now = self._clock.time()
        key = claim.record.key
        if attempt < task.retries or task.failure_mode is FailureMode.UNLOCK:
            delay = task.backoff(attempt)
            log.warning(
                "task %r run %r failed (attempt %d), retrying in %gs: %r",
                key,
                claim.run_id,
                attempt + 1,
                delay,
                exc,
            )
            await store.commit(claim, retry_at=now + delay)
            return
        log.error("task %r run %r failed", key, claim.run_id, exc_info=exc)
        if task.failure_mode is FailureMode.COMMIT:
            await self._succeeded(task, claim)
        # FailureMode.NONE: keep the lease; the occurrence runs again on expiry.


def _with_cursor(record: TaskRecord, fire_at: float | None, backlog: int) -> TaskRecord:
    return TaskRecord(
        key=record.key,
        task=record.task,
        schedule=record.schedule,
        params=record.params,
        enabled=record.enabled,
        fire_at=fire_at,
        backlog=backlog,
        max_running=record.max_running,
    )


@contextlib.asynccontextmanager
async def run_tasks(
    tasks: Tasks, *, app: object, scheduler: Scheduler, clock: Clock | None
) -> AsyncIterator[TaskRuntime]:
    """The body of :meth:`Tasks.runtime`."""
    runtime = TaskRuntime(
        tasks=tasks,
        app=app,
        scheduler=scheduler,
        clock=clock if clock is not None else SystemClock(),
        store=tasks.store,
    )
    async with contextlib.AsyncExitStack() as stack:
        for name, fixture in tasks.fixtures.items():
            manager = contextlib.asynccontextmanager(fixture)(app)
            runtime._fixtures[name] = await stack.enter_async_context(manager)
        await runtime._start()
        try:
            yield runtime
        finally:
            await runtime._stop()

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
from ._job import Job, JobState
from ._task_context import Context, RunInfo, TaskInfo, TaskStats, describe, utc
from ._task_policy import COUNT_CAP, after_downtime, after_run
from ._tasks import (
    FailureMode,
    Misfire,
    Overlap,
    Task,
    Tasks,
    build_schedule,
    check_params,
)
from .stores.base import JSON, NO_PARAMS, Claim, Cursor, TaskRecord, TaskStore
from .stores.memory import MemoryStore

if TYPE_CHECKING:
    from ._scheduler import Scheduler

__all__ = ["TaskRuntime"]

log = logging.getLogger("aiohttp_jobs.tasks")

_RETRY_LOOP = 1.0  # seconds between attempts when the store fails


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
        self._tags = {name: ("task", name) for name in tasks.tasks}
        self._schedules: dict[str, tuple[Mapping[str, object], Schedule]] = {}
        self._missed: dict[str, int] = {}
        self._stats: dict[str, TaskStats] = {}
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
        merged = (
            {**declared.params, **check_params(params, where)}
            if params or declared.params
            else NO_PARAMS
        )
        record = TaskRecord(
            key=key,
            task=declared.name,
            schedule=sched.to_spec(),
            params=merged,
            enabled=enabled,
            fire_at=sched.first(self._clock.time()),
            max_running=self._max_running(declared),
        )
        if not isinstance(sched, OnceSchedule):  # once-off: nothing to compute later
            self._schedules[key] = (record.schedule or {}, sched)
        else:
            self._schedules.pop(key, None)
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
        run_ids = []
        for task in self.tasks.tasks.values():
            if task.keyword != keyword:
                continue
            record = await self._store.get(task.name)
            if record is not None and record.enabled:  # enable()/disable() count
                run_ids.append(
                    await self._store.add_run(task.name, fire_at=now, payload=checked)
                )
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
        await self._store.save(record._replace(enabled=enabled, fire_at=fire_at))
        self._changed.set()

    async def list_tasks(self) -> list[TaskInfo]:
        """Every task and dynamic instance with its next fire time and last run."""
        infos = []
        for record in await self._store.records():
            kind, text = describe(record.schedule)
            stats = self._stats.get(record.key) or TaskStats()
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
                    started_at=utc(job.started_at),
                    finished_at=utc(job.finished_at),
                    error=None if error is None else repr(error),
                )
            infos.append(
                TaskInfo(
                    key=record.key,
                    task=record.task,
                    kind=kind,
                    schedule=text,
                    enabled=record.enabled,
                    next_fire_at=utc(record.fire_at) if record.enabled else None,
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
        if record.fire_at is None or record.backlog:
            return record
        sched = self._schedule(record)
        plan = after_downtime(task, sched, record.fire_at, now)
        if not plan.skipped and not plan.missed and plan.cursor.backlog == 0:
            return record
        key = record.key
        if plan.skipped:
            self._stats_for(key).skipped += plan.skipped
        if plan.missed:
            self._missed[key] = plan.missed
        if task.misfire is Misfire.SKIP:
            runs, total = 0, plan.skipped
        elif task.misfire is Misfire.RUN_ALL:
            runs = plan.cursor.backlog + 1
            total = runs + plan.skipped
        else:
            runs, total = 1, plan.missed + 1
        log.warning(
            "task %r: %d%s runs were missed while nothing ran them (misfire=%s): "
            "%d will run now, %d skipped",
            key,
            total,
            "+" if total > COUNT_CAP else "",
            task.misfire.name,
            runs,
            plan.skipped,
        )
        return _with_cursor(record, plan.cursor.fire_at, plan.cursor.backlog)

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
        spawn = self.scheduler.spawn
        declared = self.tasks.tasks
        tags = self._tags
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
                        record = claim.record
                        task = declared.get(record.task)
                        if task is None:
                            await self._orphan(claim)
                            continue
                        missed = self._missed.pop(record.key, 0) if self._missed else 0
                        coro = self._execute(task, claim, missed)
                        try:
                            job = await spawn(
                                coro,
                                name=record.key,
                                priority=task.priority,
                                tags=tags[task.name],
                            )
                        except SchedulerClosedError:
                            log.warning(
                                "scheduler closed: run %r left to its lease",
                                claim.run_id,
                            )
                            self._stopping = True
                            return
                        self._track(claim, job)
                    # Let this batch start before claiming more: bounded memory,
                    # and timers and I/O are not starved by a large backlog.
                    await asyncio.sleep(0)
                    continue
                self._arm(await store.next_due())
            await changed.wait()

    async def _orphan(self, claim: Claim) -> None:
        record = claim.record
        log.error(
            "no declared task %r for %r: dropping the run", record.task, record.key
        )
        await self._store.commit(claim, cursor=Cursor(None))

    def _track(self, claim: Claim, job: Job[Any]) -> None:
        self._inflight.add(job)
        job.add_done_callback(self._on_done)
        record = claim.record
        spec = record.schedule
        if spec is not None and "at" in spec:
            return  # once-off instances leave when done: no statistics kept
        stats = self._stats.get(record.key)
        if stats is None:
            stats = self._stats[record.key] = TaskStats()
        stats.running += 1
        stats.last = (claim, job)

    def _on_done(self, job: Job[Any]) -> None:
        inflight = self._inflight
        inflight.discard(job)
        stats = self._stats.get(job.name)
        if stats is not None:
            stats.running -= 1
            stats.runs += 1
            if job.state is JobState.FAILED:
                stats.failures += 1
        if not inflight:
            self._idle.set()
        self._changed.set()

    def _stats_for(self, key: str) -> TaskStats:
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = TaskStats()
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

    def _next_cursor(
        self, task: Task, claim: Claim, now: float, *, folded: bool = False
    ) -> Cursor:
        """Where the cursor goes after the occurrence *claim* (overlap policy)."""
        record = claim.record
        plan = after_run(
            task,
            self._schedule(record),
            claim.fire_at,
            record.backlog,
            now,
            folded=folded,
        )
        if plan.skipped:
            why = "queue_limit" if task.overlap is Overlap.QUEUE else "overlap=SKIP"
            self._skipped(record.key, plan.skipped, why)
        return plan.cursor

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
        record = claim.record
        if claim.payload:
            params = {**record.params, **claim.payload}
        else:
            params = dict(record.params) if record.params else {}
        ctx = Context(self, task, claim, params, missed)
        leased = ctx.leased
        if leased and self._clock.time() >= claim.expires_at - self._lease / 2:
            # The job waited in the scheduler's pending list: renew the lease
            # first, and leave the run to whoever took it over if it expired.
            until = self._clock.time() + task.lease_duration
            if not await store.extend(claim, until=until):
                log.warning(
                    "task %r run %r waited past its lease and was taken over; "
                    "not running it twice",
                    record.key,
                    claim.run_id,
                )
                return None
            self._changed.set()
        if not leased:  # at most once: commit before running
            if claim.from_cursor:
                cursor = self._next_cursor(task, claim, self._clock.time())
                await store.commit(claim, cursor=cursor)
                self._changed.set()
            else:
                await store.commit(claim)
        elif claim.from_cursor and record.max_running > 1:
            cursor = self._next_cursor(task, claim, self._clock.time())
            await store.commit(claim, cursor=cursor, keep_lease=True)
            self._changed.set()
        if leased and task.lease_duration != self._lease:
            await store.extend(claim, until=self._clock.time() + task.lease_duration)
            self._changed.set()  # the lease may now expire before the armed timer
        beat: asyncio.Task[None] | None = None
        if leased and task.heartbeat is not None:
            beat = asyncio.get_running_loop().create_task(
                self._beat(ctx, task.heartbeat)
            )
        try:
            result = await self._chains[task.name](ctx)
        except Exception as exc:
            if leased:
                await self._failed(task, claim, exc)
            else:
                log.error(
                    "task %r run %r failed", task.name, claim.run_id, exc_info=exc
                )
            raise
        finally:
            if beat is not None:
                beat.cancel()
        if leased:
            await self._succeeded(task, claim, folded=missed > 0)
        return result

    async def _beat(self, ctx: Context, every: float) -> None:
        clock = self._clock
        with contextlib.suppress(LeaseLostError):
            while True:
                await sleep_until(clock, clock.time() + every)
                await ctx.heartbeat()

    async def _succeeded(
        self, task: Task, claim: Claim, *, folded: bool = False
    ) -> None:
        store = self._store
        record = claim.record
        if not claim.from_cursor or record.max_running > 1:
            ok = await store.commit(claim)
        elif task.dynamic and record.schedule is not None and "at" in record.schedule:
            # A finished once-off instance leaves (if the claim is still ours).
            ok = await store.delete(record.key, claim=claim)
            if ok:
                self._schedules.pop(record.key, None)
                self._stats.pop(record.key, None)
        else:
            cursor = self._next_cursor(task, claim, self._clock.time(), folded=folded)
            ok = await store.commit(claim, cursor=cursor)
        if not ok:
            log.warning(
                "task %r run %r finished after losing its lease; it may have run twice",
                record.key,
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
    return record._replace(fire_at=fire_at, backlog=backlog)


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
        store=tasks.store if tasks.store is not None else MemoryStore(),
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

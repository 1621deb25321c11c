"""The task runtime: the public handle (``get_tasks()``), start-up (fixtures,
declared tasks, misfires) and shutdown. It *has* a :class:`~.runner.TaskRunner`
that claims and executes the runs.

Once the runtime has begun stopping, the calls that would add work (``fire()``,
``run_now()``, ``schedule_task()``) raise :class:`SchedulerClosedError` instead
of returning a run id for work that would never run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import itertools
import logging
import os
import random
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo

from .._checks import MAX_DURATION, check_count, check_flag, check_name
from .._core.clock import Clock, SystemClock, sleep_until
from .._core.job import JobState
from .._core.scheduler import Scheduler
from .._core.tracing import LINK_KEY, carry
from .._errors import (
    ConfigError,
    ConfigTypeError,
    SchedulerClosedError,
    TaskDefinitionError,
    TaskNotFoundError,
)
from ..stores.base import (
    JSON,
    NO_PARAMS,
    RUN_LOG_SIZE,
    InstanceInfo,
    LeaseInfo,
    RunLogEntry,
    TaskRecord,
    TaskStore,
    Unsubscribe,
)
from ..stores.memory import MemoryStore
from .context import RunInfo, TaskInfo, TaskStats, describe, utc
from .options import Declared, Misfire, Task, build_schedule, check_params
from .policy import COUNT_CAP, after_downtime
from .runner import TaskRunner
from .schedules import OnceSchedule
from .zones import parse_timezone

__all__ = ["TaskRuntime", "run_tasks"]

log = logging.getLogger("aiohttp_jobs.tasks")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Each definition saved by schedule_task() (and each declared task whose
# schedule changed) gets a revision no earlier definition of its key had, also
# one that was unscheduled while its run went on, or one written by another
# process (random start): the store replaces a record saved with another
# revision (stores/base.py, rule 5). No read of the old record is needed.
_REVISIONS = itertools.count(random.getrandbits(40))

INSTANCE_HEARTBEAT = 10.0
"""Seconds between two heartbeats of a runtime in the store's instance registry."""
INSTANCE_TTL = 3 * INSTANCE_HEARTBEAT
"""An instance that missed its heartbeats this long is no longer listed."""


def _version() -> str:
    try:
        return importlib.metadata.version("aiohttp-jobs")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


class TaskRuntime:
    """The running side of a :class:`Tasks` registry, bound to one app.

    Get it with ``aiohttp_jobs.get_tasks(app_or_request)``.
    """

    def __init__(
        self,
        *,
        declared: Declared,
        app: object,
        scheduler: Scheduler,
        clock: Clock,
        store: TaskStore,
    ) -> None:
        self._declared = declared
        self._app = app
        self._scheduler = scheduler
        self._clock = clock
        self._store = store
        self._fixtures: dict[str, object] = {}
        self._runner = TaskRunner(
            declared=declared,
            control=self,
            fixtures=self._fixtures,
            scheduler=scheduler,
            clock=clock,
            store=store,
        )
        self._unsubscribe: Unsubscribe | None = None
        self._registry_task: asyncio.Task[None] | None = None
        self._info: InstanceInfo | None = None
        # Each function to its task (None where several tasks share it), for
        # schedule_task(fn).
        self._by_func: dict[object, Task | None] = {}
        for task in declared.tasks.values():
            self._by_func[task.func] = None if task.func in self._by_func else task

    def __repr__(self) -> str:
        state = "stopping" if self.stopping else "running"
        return (
            f"<TaskRuntime {state} tasks={len(self._declared.tasks)} "
            f"in_flight={self._runner.in_flight}>"
        )

    @property
    def app(self) -> object:
        """The application given to ``runtime(app=...)`` (tasks see it as
        ``context.app``)."""
        return self._app

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def store(self) -> TaskStore:
        return self._store

    @property
    def instance_id(self) -> str:
        """This runtime's id in the store: its runs' leases and run log entries
        name it, and :meth:`instances` lists it."""
        return self._runner.owner

    @property
    def tasks(self) -> Mapping[str, Task]:
        """The declared tasks this runtime runs, by name."""
        return self._declared.tasks

    @property
    def in_flight(self) -> int:
        """Runs spawned and not finished yet."""
        return self._runner.in_flight

    @property
    def stopping(self) -> bool:
        """Whether the runtime has begun stopping (or its scheduler is closing):
        new runs are refused from then on."""
        scheduler = self._scheduler
        return self._runner.stopping or scheduler.closed or scheduler.draining

    async def wait_idle(self) -> None:
        """Wait until no run is in flight (runs due later are not waited for)."""
        await self._runner.wait_idle()

    # -- public handle ------------------------------------------------------------

    def _stopped(self, what: str) -> SchedulerClosedError:
        return SchedulerClosedError(
            f"cannot {what}: the task runtime is stopping (the application is "
            "shutting down), so the run would never happen; nothing was queued"
        )

    def _task(self, task: str | Callable[..., object]) -> Task:
        declared = self._declared.tasks
        if not isinstance(task, str):
            if not callable(task):
                raise ConfigTypeError(
                    f"task must be a task name or a declared task function, got "
                    f"{task!r} ({type(task).__name__})"
                )
            found = self._by_func.get(task)
            if found is None:
                count = sum(t.func is task for t in declared.values())
                raise TaskNotFoundError(
                    f"{task!r} is declared {count} times; pass the task name"
                )
            return found
        found = declared.get(task)
        if found is None:
            check_name("task", task)
            raise TaskNotFoundError(
                f"no task named {task!r}; declared: {sorted(declared)}"
            )
        return found

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
    ) -> str:
        """Add (or replace) an instance of a dynamic task; returns its key.

        Replacing an instance whose run is in progress, or waiting to retry,
        lets that run end without touching the new definition, which runs at
        its own time. *task* and *instance* are positional, so params may use
        those names.
        """
        declared = self._task(task)
        if not declared.dynamic:
            raise TaskNotFoundError(
                f"task {declared.name!r} is not a dynamic task; declare it with "
                "@tasks.dynamic_task()"
            )
        if type(instance) is not str or not instance.strip():
            check_name("instance", instance)
        if self.stopping:
            raise self._stopped(f"schedule {declared.name!r} instance {instance!r}")
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
            key,
            declared.name,
            sched.to_spec(),
            merged,
            enabled if enabled is True else check_flag("enabled", enabled),
            sched.first(self._clock.time()),
            0,
            declared.max_running,
            next(_REVISIONS),
        )
        runner = self._runner
        if isinstance(sched, OnceSchedule):  # once-off: nothing to compute later
            runner.forget(key)  # nor any statistics (of an earlier definition)
        else:
            runner.remember(key, record.schedule or {}, sched)
        await self._store.save(record)
        runner.wake()
        return key

    async def unschedule_task(
        self, task: str | Callable[..., object], instance: str, /
    ) -> bool:
        """Remove a dynamic task instance; ``False`` if it did not exist.

        A run of it in progress finishes; it is not run again.
        """
        name = self._task(task).name
        check_name("instance", instance)
        key = f"{name}:{instance}"
        self._runner.forget(key)
        removed = await self._store.delete(key)
        self._runner.wake()
        return removed

    async def _record(self, name: str) -> TaskRecord:
        check_name("name", name)
        record = await self._store.get(name)
        if record is None:
            raise TaskNotFoundError(
                f"no task or dynamic instance {name!r}; declared tasks: "
                f"{sorted(self._declared.tasks)}"
            )
        return record

    async def run_now(self, name: str, /, **payload: JSON) -> str:
        """Run a task (or dynamic instance ``"task:instance"``) once, now.

        The run does not move the schedule; returns its run id. *name* is
        positional, so the payload may have a key ``name``.
        """
        if self.stopping:
            raise self._stopped(f"run {name!r} now")
        record = await self._record(name)
        checked = _checked(payload, f"run_now({name!r})") if payload else None
        run_id = await self._store.add_run(
            record.key,
            fire_at=self._clock.time(),
            # The span current now travels with the run: the run's span links it.
            payload=carry(checked, "run_now"),
        )
        self._runner.wake()
        return run_id

    async def fire(self, keyword: str, /, **payload: JSON) -> list[str]:
        """Run every task declared with ``keyword=keyword`` once, now.

        ``payload`` is merged into ``context.params``; returns the run ids.
        *keyword* is positional, so the payload may have a key ``keyword``.
        """
        check_name("keyword", keyword)
        if self.stopping:
            raise self._stopped(f"fire {keyword!r}")
        # The span current now travels with the runs: their spans link it.
        checked = carry(_checked(payload, f"fire({keyword!r})"), "fire")
        now = self._clock.time()
        store = self._store
        run_ids = []
        for task in self._declared.tasks.values():
            if task.keyword != keyword:
                continue
            record = await store.get(task.name)
            if record is not None and record.enabled:  # enable()/disable() count
                run_ids.append(
                    await store.add_run(task.name, fire_at=now, payload=checked)
                )
        if run_ids:
            self._runner.wake()
        else:
            log.warning("fire(%r): no enabled task has this keyword", keyword)
        return run_ids

    async def enable(self, name: str, /) -> None:
        """Let a disabled task (or dynamic instance) fire again."""
        await self._set_enabled(name, True)

    async def disable(self, name: str, /) -> None:
        """Stop firing a task (or dynamic instance) until ``enable()``."""
        await self._set_enabled(name, False)

    async def _set_enabled(self, name: str, enabled: bool) -> None:
        record = await self._record(name)
        if record.enabled is enabled:
            return
        fire_at = record.fire_at
        if enabled and fire_at is not None:
            # Occurrences that passed while disabled are not runs owed.
            sched = self._runner.schedule_of(record)
            now = self._clock.time()
            if sched is not None and fire_at <= now:
                fire_at = sched.following(fire_at, now)
        await self._store.save(record._replace(enabled=enabled, fire_at=fire_at))
        self._runner.wake()

    async def cancel_run(self, run_id: str, /) -> bool:
        """Cancel run *run_id* wherever it runs; ``False`` if no such run exists
        (it finished, or never was).

        On this instance the job is cancelled at once; on another, at its next
        heartbeat (a third of the task's ``lease_duration`` by default). A run
        waiting (queued, or for a retry) is not run. Either way the occurrence
        is settled: the schedule moves on, and the run log says ``cancelled``.
        """
        check_name("run_id", run_id)
        found = await self._store.cancel(run_id, now=self._clock.time())
        if found:
            self._runner.cancel_local(run_id)
            self._runner.wake()
        return found

    async def instances(self) -> list[InstanceInfo]:
        """The application instances sharing this store that are alive (this
        one included), by ``instance_id``."""
        return await self._store.instances(now=self._clock.time())

    async def leases(self) -> list[LeaseInfo]:
        """The runs in progress on every instance sharing the store (this one
        included) that hold a lease, by record key then run id: each names
        its holder (``owner``, an :attr:`instance_id`), attempt, occurrence
        and lease expiry, and whether a cancel was requested.

        Runs of tasks declared with ``execution_mode=AT_MOST_ONCE`` hold no
        lease while they run (they settle their occurrence first): they are
        not listed.
        """
        return await self._store.leases(now=self._clock.time())

    async def recent_runs(
        self, name: str, /, *, limit: int = RUN_LOG_SIZE
    ) -> list[RunLogEntry]:
        """The latest finished runs of a task (or ``"task:instance"``), on every
        instance, newest first (at most ``RUN_LOG_SIZE`` are kept)."""
        check_name("name", name)
        check_count("limit", limit, minimum=1)
        return await self._store.recent_runs(name, limit=limit)

    async def list_tasks(self) -> list[TaskInfo]:
        """Every task and dynamic instance with its next fire time and last run."""
        infos = []
        runner = self._runner
        for record in await self._store.records():
            kind, text = describe(record.schedule)
            stats = runner.stats(record.key) or TaskStats()
            last = None
            if stats.last is not None:
                claim, job = stats.last
                error = job.exception() if job.state is JobState.FAILED else None
                last = RunInfo(
                    run_id=claim.run_id,
                    job_id=job.id,
                    state=str(job.state),
                    scheduled_at=utc(claim.fire_at) or _EPOCH,
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

    # -- start-up and shutdown ----------------------------------------------------

    async def _start(self) -> None:
        now = self._clock.time()
        store = self._store
        declared = self._declared.tasks
        for task in declared.values():
            if task.dynamic:
                continue
            spec = None if task.schedule is None else task.schedule.to_spec()
            existing = await store.get(task.name)
            if existing is not None and existing.schedule == spec:
                fire_at, backlog = existing.fire_at, existing.backlog
                revision = existing.revision
            else:  # new, or declared with another schedule: a new definition
                fire_at = None if task.schedule is None else task.schedule.first(now)
                backlog = 0
                revision = 0 if existing is None else next(_REVISIONS)
            record = TaskRecord(
                key=task.name,
                task=task.name,
                schedule=spec,
                params=dict(task.params),
                enabled=task.enabled,
                fire_at=fire_at,
                backlog=backlog,
                max_running=task.max_running,
                revision=revision,
            )
            await store.save(self._misfired(task, record, now))
        for record in await store.records():
            dynamic = declared.get(record.task)
            if dynamic is not None and dynamic.dynamic:
                fixed = self._misfired(dynamic, record, now)
                if fixed is not record:
                    await store.save(fixed)
        self._unsubscribe = store.subscribe(self._runner.wake)
        if isinstance(store, MemoryStore):
            # One process: no instance can die unnoticed, so no heartbeat (and no
            # timer that would wake a FakeClock every few seconds in tests).
            info = self._instance_info(now)
            await store.register_instance(info, ttl=MAX_DURATION)
        else:
            await self._register(now)
            self._registry_task = asyncio.get_running_loop().create_task(
                self._keep_registered()
            )
        self._runner.start()

    def _instance_info(self, now: float) -> InstanceInfo:
        info = self._info
        if info is None:
            info = InstanceInfo(
                self.instance_id,
                socket.gethostname(),
                os.getpid(),
                _version(),
                now,
                now,
            )
        self._info = info = info._replace(last_seen=now)
        return info

    async def _register(self, now: float) -> None:
        await self._store.register_instance(self._instance_info(now), ttl=INSTANCE_TTL)

    async def _keep_registered(self) -> None:
        clock = self._clock
        while True:
            await sleep_until(clock, clock.time() + INSTANCE_HEARTBEAT)
            try:
                await self._register(clock.time())
            except Exception as exc:
                log.warning("could not refresh this instance in the store: %r", exc)

    def _misfired(self, task: Task, record: TaskRecord, now: float) -> TaskRecord:
        """Apply the misfire policy to occurrences missed while nobody ran them."""
        if record.fire_at is None or record.backlog:
            return record
        sched = self._runner.schedule_of(record)
        plan = after_downtime(task, sched, record.fire_at, now)
        if not plan.skipped and not plan.missed and plan.cursor.backlog == 0:
            return record
        key = record.key
        if plan.skipped:
            self._runner.stats_for(key).skipped += plan.skipped
        if plan.missed:
            self._runner.note_missed(key, plan.missed)
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
        return record._replace(fire_at=plan.cursor.fire_at, backlog=plan.cursor.backlog)

    async def _stop(self) -> None:
        try:
            await self._runner.stop()
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            task = self._registry_task
            if task is not None:
                self._registry_task = None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._info is not None:
                self._info = None
                try:
                    await self._store.deregister_instance(self.instance_id)
                except Exception as exc:
                    log.warning(
                        "could not remove this instance from the store: %r", exc
                    )


def _checked(payload: dict[str, JSON], where: str) -> dict[str, JSON]:
    """The payload of ``fire()`` or ``run_now()``, checked."""
    if LINK_KEY in payload:
        raise TaskDefinitionError(
            f"{where}: the payload key {LINK_KEY!r} is reserved (it carries the "
            "trace that caused the run); use another name"
        )
    return check_params(payload, where)


@contextlib.asynccontextmanager
async def run_tasks(
    declared: Declared, *, app: object, scheduler: Scheduler, clock: Clock | None
) -> AsyncIterator[TaskRuntime]:
    """Open the store, set up fixtures, start firing; on exit stop firing, wait
    for the runs in flight, tear fixtures down and close the store.

    The body of :meth:`Tasks.runtime`.
    """
    store = declared.store if declared.store is not None else MemoryStore()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(store)  # closed last
        if clock is None:
            # A store may offer its server's clock (RedisStore(server_clock=True)):
            # then every instance agrees on what is due, whatever its host's clock.
            offered = getattr(store, "clock", None)
            clock = offered if isinstance(offered, Clock) else SystemClock()
        runtime = TaskRuntime(
            declared=declared, app=app, scheduler=scheduler, clock=clock, store=store
        )
        for name, fixture in declared.fixtures.items():
            manager = contextlib.asynccontextmanager(fixture)(app)
            runtime._fixtures[name] = await stack.enter_async_context(manager)
        await runtime._start()
        try:
            yield runtime
        finally:
            await runtime._stop()

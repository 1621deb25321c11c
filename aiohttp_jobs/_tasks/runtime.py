"""The task runtime: the public handle (``get_tasks()``) over the runner, and
start-up (fixtures, declared tasks, misfires) and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING

from .._core.clock import Clock, SystemClock
from .._core.job import JobState
from .._errors import (
    ConfigError,
    TaskDefinitionError,
    TaskNotFoundError,
)
from ..stores.base import JSON, NO_PARAMS, TaskRecord
from ..stores.memory import MemoryStore
from .context import RunInfo, TaskInfo, TaskStats, describe, utc
from .declarations import Tasks
from .options import Misfire, Task, build_schedule, check_params
from .policy import COUNT_CAP, after_downtime
from .runner import TaskRunner
from .schedules import OnceSchedule, parse_timezone

if TYPE_CHECKING:
    from .._core.scheduler import Scheduler

__all__ = ["TaskRuntime"]

log = logging.getLogger("aiohttp_jobs.tasks")


class TaskRuntime(TaskRunner):
    """The running side of a :class:`Tasks` registry, bound to one app.

    Get it with ``aiohttp_jobs.get_tasks(app_or_request)``.
    """

    # -- public handle ------------------------------------------------------------

    def _task(self, task: str | Callable[..., object]) -> Task:
        if not isinstance(task, str):
            found = self._by_func.get(task)
            if found is None:
                count = sum(t.func is task for t in self.tasks.tasks.values())
                raise TaskNotFoundError(
                    f"{task!r} is declared {count} times; pass the task name"
                )
            return found
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
                error = job.exception() if job.state is JobState.FAILED else None
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
        return record._replace(fire_at=plan.cursor.fire_at, backlog=plan.cursor.backlog)

    async def _stop(self) -> None:
        self._stopping = True
        self._changed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop_task is not None:
            await self._loop_task
        await self.wait_idle()


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

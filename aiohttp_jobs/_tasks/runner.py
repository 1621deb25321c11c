"""The task runner: claims due runs from the store and spawns each as a Job.

It never polls: one clock timer is armed for the store's next due time and
re-armed whenever a schedule changes or a run finishes. Every run goes through
``Scheduler.spawn`` so it has an id, a state, a result, timings, history and
events like any other job. :class:`~._task_runtime.TaskRuntime` adds the public
handle and start-up on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from .._core.clock import Clock, TimerHandle, sleep_until
from .._core.job import Job, JobState
from .._core.scheduler import START_BATCH
from .._errors import LeaseLostError, SchedulerClosedError
from ..stores.base import Claim, Cursor, TaskRecord, TaskStore
from .context import Context, TaskStats
from .declarations import Tasks
from .options import FailureMode, Overlap, Task
from .policy import after_run
from .schedules import Schedule, schedule_from_spec

if TYPE_CHECKING:
    from .._core.scheduler import Scheduler
    from .runtime import TaskRuntime

__all__ = ["TaskRunner"]

log = logging.getLogger("aiohttp_jobs.tasks")

_RETRY_LOOP = 1.0  # seconds between attempts when the store fails


class TaskRunner:
    """Claims due runs and executes each as a job; the state both halves share."""

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
        # Each function to its task (None where several tasks share it), for
        # schedule_task(fn); like the tags, it is the tasks declared at start.
        self._by_func: dict[object, Task | None] = {}
        for task in tasks.tasks.values():
            self._by_func[task.func] = None if task.func in self._by_func else task

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

    async def wait_idle(self) -> None:
        """Wait until no run is in flight (runs due later are not waited for)."""
        while self._inflight:
            self._idle.clear()
            await self._idle.wait()

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
        try_spawn = self.scheduler._try_spawn
        wait_and_spawn = self.scheduler._wait_and_spawn
        on_done = self._on_done
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
                    budget = START_BATCH
                    for claim in claims:
                        if not budget:  # let what started run first
                            await asyncio.sleep(0)  # (see START_BATCH)
                            budget = START_BATCH
                        budget -= 1
                        record = claim.record
                        task = declared.get(record.task)
                        if task is None:
                            await self._orphan(claim)
                            continue
                        missed = self._missed.pop(record.key, 0) if self._missed else 0
                        coro = self._execute(task, claim, missed)
                        key, prio, tag = record.key, task.priority, tags[task.name]
                        try:
                            # Started here with its done callback set; only a
                            # full pending list makes the runner wait.
                            job = try_spawn(
                                coro, key, prio, tag, None, on_done
                            ) or await wait_and_spawn(
                                coro, key, prio, tag, None, on_done
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
        ctx = Context(cast("TaskRuntime", self), task, claim, params, missed)
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
        if leased and not await self._record_success(task, claim, missed > 0):
            self._finished_late(claim)
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
        if not await self._record_success(task, claim, folded):
            self._finished_late(claim)

    def _record_success(
        self, task: Task, claim: Claim, folded: bool
    ) -> Awaitable[bool]:
        """The store call that records a successful run (awaited by the caller:
        one coroutine fewer per run on the hot path)."""
        store = self._store
        record = claim.record
        if not claim.from_cursor or record.max_running > 1:
            return store.commit(claim)
        if task.dynamic and record.schedule is not None and "at" in record.schedule:
            # A finished once-off instance leaves (if the claim is still ours).
            self._schedules.pop(record.key, None)
            self._stats.pop(record.key, None)
            return store.delete(record.key, claim=claim)
        cursor = self._next_cursor(task, claim, self._clock.time(), folded=folded)
        return store.commit(claim, cursor=cursor)

    def _finished_late(self, claim: Claim) -> None:
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

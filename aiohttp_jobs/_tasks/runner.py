"""The task runner: claims due runs from the store and starts each as a Job.

It never polls: one clock timer is armed for the store's next due time and
re-armed whenever a schedule changes, a run finishes or the store reports a
change made elsewhere (:meth:`TaskStore.subscribe`). Every run is started with
the scheduler's public ``spawn_nowait()`` (or ``spawn()`` when the pending list
is full) and followed with ``Job.add_done_callback()``, so it has an id, a state,
a result, timings, history and events like any other job.

Every leased run in flight is *held*: a keeper extends its lease at a fraction
of it (``heartbeat=``, by default a third of ``lease_duration``); a run whose
lease could not be extended before it expired is lost (another instance may
take it over) and its job is cancelled, so no zombie work goes on. A heartbeat
also tells the holder of a cancel requested from any instance
(:meth:`TaskStore.cancel`): the job is cancelled and the occurrence settled.

The runner belongs to a :class:`~.runtime.TaskRuntime`, which holds the public
handle and start-up; the runner sees the runtime only as the
:class:`~.context.TaskControl` that each run's context hands to the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._core.clock import Clock, TimerHandle, sleep_until
from .._core.job import Job, JobState
from .._core.logs import run_extra
from .._core.scheduler import START_BATCH, Scheduler
from .._core.tracing import observe_run
from .._errors import SchedulerClosedError, SchedulerFullError
from ..stores.base import (
    Claim,
    Cursor,
    Lease,
    Outcome,
    RunLogEntry,
    TaskRecord,
    TaskStore,
)
from .context import Context, TaskControl, TaskStats
from .options import Declared, FailureMode, Overlap, Task
from .policy import Catchup, after_run
from .schedules import Schedule, schedule_from_spec

__all__ = ["TaskRunner"]

log = logging.getLogger("aiohttp_jobs.tasks")

_RETRY_LOOP = 1.0  # seconds between attempts when the store fails

Chain = Callable[[Context], Awaitable[object]]


class _Held:
    """A leased run in flight, as the keeper renews it."""

    __slots__ = (
        "cancel_requested",
        "claim",
        "every",
        "expires",
        "lease",
        "lost",
        "renew_at",
        "runner_task",
    )

    def __init__(
        self, claim: Claim, lease: float, every: float, now: float, expires: float
    ) -> None:
        self.claim = claim
        self.lease = lease
        self.every = every
        self.expires = expires
        self.renew_at = now + every
        self.lost = False
        self.cancel_requested = False
        self.runner_task: asyncio.Task[Any] | None = asyncio.current_task()


class TaskRunner:
    """Claims due runs and executes each as a job of *scheduler*."""

    def __init__(
        self,
        *,
        declared: Declared,
        control: TaskControl,
        fixtures: Mapping[str, object],
        scheduler: Scheduler,
        clock: Clock,
        store: TaskStore,
    ) -> None:
        self._declared = declared
        self._tasks = declared.tasks
        self._control = control
        self._fixtures = fixtures
        self._scheduler = scheduler
        self._clock = clock
        self._store = store
        self._owner = declared.owner or f"tasks-{uuid.uuid4().hex[:12]}"
        self._chains = {name: self._chain(task) for name, task in self._tasks.items()}
        self._tags = {name: ("task", name) for name in self._tasks}
        self._schedules: dict[str, tuple[Mapping[str, object], Schedule]] = {}
        self._missed: dict[str, int] = {}
        self._stats: dict[str, TaskStats] = {}
        self._inflight: set[Job[Any]] = set()
        self._changed = asyncio.Event()
        # Look at the store again (something changed); also the store subscriber.
        # The event's own method: a store calls it on every change.
        self.wake: Callable[[], None] = self._changed.set
        self._idle = asyncio.Event()
        self._idle.set()
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self.stopping = False
        """Set once :meth:`stop` began (or the scheduler refused a run)."""
        self._loop_task: asyncio.Task[None] | None = None
        # Claims are taken with the shortest lease of the declared tasks (each
        # run moves to its own task's lease when it starts): a runner killed
        # between claiming a batch and starting it holds nothing for longer
        # than any of its tasks would.
        self._lease = min(
            (task.lease_duration for task in self._tasks.values()), default=60.0
        )
        self._extend: Callable[[Claim, float], Awaitable[Lease]] = self.extend
        self._held: dict[str, _Held] = {}  # by run id
        self._keeper_wake = asyncio.Event()
        self._keeper_at: float | None = None  # when the keeper plans to wake
        self._keeper_task: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Task[None]] = set()  # run log appends

    def __repr__(self) -> str:
        state = "stopping" if self.stopping else "running"
        return f"<TaskRunner {state} in_flight={len(self._inflight)}>"

    # -- what the runtime asks ----------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Runs spawned and not finished yet."""
        return len(self._inflight)

    @property
    def owner(self) -> str:
        """This runner's name in the store: the instance id."""
        return self._owner

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._run_loop())
        self._keeper_task = loop.create_task(self._keep_leases())

    async def stop(self) -> None:
        """Stop claiming; runs already due start first; wait for every run."""
        self.stopping = True
        self._changed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop_task is not None:
            await self._loop_task
        await self.wait_idle()
        if self._keeper_task is not None:
            self._keeper_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper_task
            self._keeper_task = None
        if self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait until no run is in flight (runs due later are not waited for)."""
        while self._inflight:
            self._idle.clear()
            await self._idle.wait()

    def stats(self, key: str) -> TaskStats | None:
        return self._stats.get(key)

    def stats_for(self, key: str) -> TaskStats:
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = TaskStats()
        return stats

    def note_missed(self, key: str, count: int) -> None:
        """The next run of *key* stands for *count* missed occurrences too."""
        self._missed[key] = count

    def remember(self, key: str, spec: Mapping[str, object], sched: Schedule) -> None:
        """Cache the schedule of a dynamic instance (saves parsing it again)."""
        self._schedules[key] = (spec, sched)

    def forget(self, key: str) -> None:
        """Drop what is kept about an instance that left, or became once-off."""
        self._schedules.pop(key, None)
        self._stats.pop(key, None)
        self._missed.pop(key, None)

    def schedule_of(self, record: TaskRecord) -> Schedule | None:
        spec = record.schedule
        if spec is None:
            return None
        task = self._tasks.get(record.task)
        if task is not None and not task.dynamic and task.schedule is not None:
            return task.schedule
        cached = self._schedules.get(record.key)
        if cached is not None and cached[0] == spec:
            return cached[1]
        sched = schedule_from_spec(spec)
        self._schedules[record.key] = (spec, sched)
        return sched

    async def extend(self, claim: Claim, seconds: float) -> Lease:
        """Move the lease of *claim* to *seconds* from now (``ctx.heartbeat()``)."""
        now = self._clock.time()
        state = await self._store.extend(claim, until=now + seconds)
        held = self._held.get(claim.run_id)
        if held is not None and held.claim.token == claim.token:
            if state:
                held.expires = now + seconds
                held.renew_at = now + held.every
            self._heard(held, state)
        if state:
            self._changed.set()  # the lease expiry the timer waits for moved
        return state

    def cancel_local(self, run_id: str) -> bool:
        """Cancel the job of run *run_id* if this runner holds it (the store
        was told already); ``False`` otherwise."""
        held = self._held.get(run_id)
        if held is None:
            return False
        self._heard(held, Lease.CANCELLED)
        return True

    def _heard(self, held: _Held, state: Lease) -> None:
        """Act on what the store said of a held run: lost or cancelled -> stop."""
        if state is Lease.HELD or held.lost or held.cancel_requested:
            return
        if self._held.get(held.claim.run_id) is not held:
            return  # the task returned meanwhile: its commit says what happened
        claim = held.claim
        if state is Lease.LOST:
            held.lost = True
            log.warning(
                "task %r run %r lost its lease (another instance may take it "
                "over): cancelling it here",
                claim.record.key,
                claim.run_id,
                extra=run_extra(claim.record.task, claim),
            )
        else:
            held.cancel_requested = True
            log.info(
                "task %r run %r: cancel requested; cancelling it",
                claim.record.key,
                claim.run_id,
                extra=run_extra(claim.record.task, claim),
            )
        task = held.runner_task
        if task is None:
            return
        if task is asyncio.current_task():  # from inside the run (heartbeat):
            asyncio.get_running_loop().call_soon(task.cancel)  # at its next await
        else:
            task.cancel()

    # -- the lease keeper -----------------------------------------------------------

    def _hold(self, held: _Held) -> None:
        self._held[held.claim.run_id] = held
        planned = self._keeper_at
        if planned is None or held.renew_at < planned:
            self._keeper_wake.set()

    async def _keep_leases(self) -> None:
        """Renew the lease of every held run when due; one loop per runner."""
        clock = self._clock
        wake = self._keeper_wake
        while True:
            wake.clear()
            now = clock.time()
            due = [h for h in self._held.values() if h.renew_at <= now]
            if due:
                results = await asyncio.gather(
                    *(self._renew(h) for h in due), return_exceptions=True
                )
                for held, result in zip(due, results, strict=True):
                    if isinstance(result, Exception):  # a bug: keep the others going
                        log.error("lease keeper failed", exc_info=result)
                        held.renew_at = now + held.every
                continue
            if not self._held:
                self._keeper_at = None
                await wake.wait()
                continue
            when = min(h.renew_at for h in self._held.values())
            self._keeper_at = when
            timer = clock.call_at(when, wake.set)
            try:
                await wake.wait()
            finally:
                timer.cancel()

    async def _renew(self, held: _Held) -> None:
        if held.lost or held.cancel_requested:
            held.renew_at = float("inf")  # ending: nothing more to renew
            return
        now = self._clock.time()
        if now >= held.expires:
            held.renew_at = float("inf")
            self._heard(held, Lease.LOST)  # too late: it may be taken over
            return
        try:
            state = await self._store.extend(held.claim, until=now + held.lease)
        except Exception as exc:
            retry = min(held.every, max((held.expires - now) / 2, 0.05))
            held.renew_at = now + retry
            log.warning(
                "task %r run %r: could not extend its lease (%r); trying again "
                "in %.3gs, before it expires",
                held.claim.record.key,
                held.claim.run_id,
                exc,
                retry,
                extra=run_extra(held.claim.record.task, held.claim),
            )
            return
        if state:
            held.expires = now + held.lease
            held.renew_at = now + held.every
            self._changed.set()  # the lease expiry the due timer waits for moved
        else:
            held.renew_at = float("inf")
        self._heard(held, state)

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
        while not self.stopping:
            try:
                await self._run_some()
            except Exception:
                log.exception("task runner: store error; retrying in %gs", _RETRY_LOOP)
                await sleep_until(self._clock, self._clock.time() + _RETRY_LOOP)
        scheduler = self._scheduler
        if scheduler.closed or scheduler.draining:
            return  # nothing could start any more
        try:
            await self._flush()
        except Exception:
            log.exception("task runner: store error while stopping")

    def _free(self) -> int:
        limit = self._declared.concurrency_limit
        batch = self._declared.batch_size
        return batch if limit is None else min(batch, limit - len(self._inflight))

    async def _run_some(self) -> None:
        store = self._store
        changed = self._changed
        while not self.stopping:
            changed.clear()
            free = self._free()
            if free > 0:
                now = self._clock.time()
                if self._timer is None and self._timer_at is not None:
                    now = max(now, self._timer_at)  # woken by the due timer
                claims = await store.acquire(
                    now=now, owner=self._owner, lease_duration=self._lease, limit=free
                )
                if claims:
                    if not await self._start_runs(claims):
                        return
                    # Let this batch start before claiming more: bounded memory,
                    # and timers and I/O are not starved by a large backlog.
                    await asyncio.sleep(0)
                    continue
                self._arm(await store.next_due())
            await changed.wait()

    async def _flush(self) -> None:
        """While stopping: start what was due when the stop began (a ``fire()``
        or ``run_now()`` accepted just before it is run, not dropped)."""
        now = self._clock.time()
        while True:
            free = self._free()
            if free <= 0:  # concurrency_limit: wait for a run to end
                self._changed.clear()
                await self._changed.wait()
                continue
            claims = await self._store.acquire(
                now=now, owner=self._owner, lease_duration=self._lease, limit=free
            )
            if not claims or not await self._start_runs(claims):
                return

    async def _start_runs(self, claims: list[Claim]) -> bool:
        """Start a job per claim; ``False`` when the scheduler refused (closed)."""
        scheduler = self._scheduler
        spawn_nowait = scheduler.spawn_nowait
        execute = self._execute
        on_done = self._on_done
        declared = self._tasks
        tags = self._tags
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
            coro = execute(task, claim, missed)
            try:
                try:
                    job = spawn_nowait(
                        coro, record.key, priority=task.priority, tags=tags[task.name]
                    )
                except SchedulerFullError:  # only a full pending list waits
                    coro = execute(task, claim, missed)
                    job = await scheduler.spawn(
                        coro, record.key, priority=task.priority, tags=tags[task.name]
                    )
            except SchedulerClosedError:
                coro.close()
                log.warning(
                    "scheduler closed: run %r of task %r left to its lease",
                    claim.run_id,
                    record.key,
                    extra=run_extra(record.task, claim),
                )
                self.stopping = True
                return False
            job.add_done_callback(on_done)
            self._track(claim, job)
        return True

    async def _orphan(self, claim: Claim) -> None:
        record = claim.record
        log.error(
            "no declared task %r for %r: dropping the run",
            record.task,
            record.key,
            extra=run_extra(record.task, claim),
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
        if stats is not None and stats.running:
            stats.running -= 1
            stats.runs += 1
            if job.state is JobState.FAILED:
                stats.failures += 1
        if not inflight:
            self._idle.set()
        self._changed.set()

    # -- one run ------------------------------------------------------------------

    def _chain(self, task: Task) -> Chain:
        call: Chain = task.func
        for middleware in reversed(self._declared.middlewares):

            def wrap(
                ctx: Context, _mw: Any = middleware, _next: Chain = call
            ) -> Awaitable[object]:
                return _mw(ctx, lambda: _next(ctx))  # type: ignore[no-any-return]

            call = wrap
        # Log records of the run carry its fields; a span when tracing is on.
        return observe_run(call)

    def _next_cursor(
        self,
        task: Task,
        claim: Claim,
        now: float,
        started: float,
        *,
        folded: bool = False,
    ) -> Cursor:
        """Where the cursor goes after the occurrence *claim* (overlap policy)."""
        record = claim.record
        plan = after_run(
            task,
            self.schedule_of(record),
            claim.fire_at,
            record.backlog,
            now,
            started=started,
            folded=folded,
        )
        if plan.skipped or plan.late:
            self._report_skipped(task, claim, plan, started)
        return plan.cursor

    def _report_skipped(
        self, task: Task, claim: Claim, plan: Catchup, started: float
    ) -> None:
        key = claim.record.key
        self.stats_for(key).skipped += plan.skipped + plan.late
        if plan.late:
            log.warning(
                "task %r: skipped %d occurrence(s) that came due before run %r "
                "could start (it started %.3fs late: the event loop was blocked, "
                "or no slot was free)",
                key,
                plan.late,
                claim.run_id,
                started - claim.fire_at,
            )
        if plan.skipped:
            why = "queue_limit" if task.overlap is Overlap.QUEUE else "overlap=SKIP"
            log.warning(
                "task %r: skipped %d occurrence(s) that came due during a run (%s)",
                key,
                plan.skipped,
                why,
            )

    async def _execute(self, task: Task, claim: Claim, missed: int) -> object:
        store = self._store
        clock = self._clock
        record = claim.record
        started = clock.time()
        if claim.cancelled:  # cancelled while it waited: settle, do not run
            await self._settle_cancelled(task, claim, started)
            return None
        ctx = Context(self._control, self._fixtures, self._extend, task, claim, missed)
        leased = ctx.leased
        expires = claim.expires_at
        if leased and started >= claim.expires_at - self._lease / 2:
            # The job waited in the scheduler's pending list: renew the lease
            # first, and leave the run to whoever took it over if it expired.
            expires = started + task.lease_duration
            state = await store.extend(claim, until=expires)
            if not state:
                await self._lost(claim, "waited in the pending list", ran=False)
                return None
            self._changed.set()
            if state is Lease.CANCELLED:
                await self._settle_cancelled(task, claim, started)
                return None
        if not leased:  # at most once: commit before running
            if claim.from_cursor:
                cursor = self._next_cursor(task, claim, started, started)
                await store.commit(claim, cursor=cursor)
                self._changed.set()
            else:
                await store.commit(claim)
        elif claim.from_cursor and record.max_running > 1:
            cursor = self._next_cursor(task, claim, started, started)
            state = await store.commit(claim, cursor=cursor, keep_lease=True)
            self._changed.set()
            if state is Lease.CANCELLED:  # finished by the store: nothing to do
                self._log_run(self._entry(claim, "cancelled", started))
                return None
        if leased and task.lease_duration != self._lease:
            expires = clock.time() + task.lease_duration
            state = await store.extend(claim, until=expires)
            self._changed.set()  # the lease may now expire before the armed timer
            if state is Lease.CANCELLED:
                await self._settle_cancelled(task, claim, started)
                return None
        held: _Held | None = None
        if leased:
            lease = task.lease_duration
            every = task.heartbeat if task.heartbeat is not None else lease / 3
            held = _Held(claim, lease, every, clock.time(), expires)
            self._hold(held)
        try:
            result = await self._chains[task.name](ctx)
        except asyncio.CancelledError:
            if held is not None and held.cancel_requested:
                await self._settle_cancelled(task, claim, started)
            elif held is not None and held.lost:
                self._log_run(self._entry(claim, "lost", started))
            raise
        except Exception as exc:
            if leased:
                await self._failed(task, claim, exc, started)
            else:
                log.error(
                    "task %r run %r failed", task.name, claim.run_id, exc_info=exc
                )
                await self._log_run_now(self._entry(claim, "failed", started, exc))
            raise
        finally:
            if held is not None:
                del self._held[claim.run_id]
        if not leased:
            await self._log_run_now(self._entry(claim, "succeeded", started))
        elif not await self._record_success(task, claim, missed > 0, started):
            await self._lost(claim, "finished", started=started)
        return result

    def _entry(
        self,
        claim: Claim,
        outcome: Outcome,
        started: float,
        exc: BaseException | None = None,
    ) -> RunLogEntry:
        return RunLogEntry(
            claim.run_id,
            claim.record.key,
            self._owner,
            claim.attempt,
            outcome,
            started,
            self._clock.time(),
            None if exc is None else repr(exc),
        )

    def _log_run(self, entry: RunLogEntry) -> None:
        """Append *entry* to the run log in the background (a report, never in
        the way of the run)."""
        task = asyncio.get_running_loop().create_task(self._log_run_now(entry))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _log_run_now(self, entry: RunLogEntry) -> None:
        """Append *entry* to the run log (before the run's job ends, when
        awaited: whoever sees the job finish, a dashboard, finds its entry);
        a store error is logged and forgotten."""
        try:
            await self._store.log_run(entry)
        except Exception as error:
            log.warning("could not append to the run log: %r", error)

    async def _settle_cancelled(self, task: Task, claim: Claim, started: float) -> None:
        """A cancel was requested: finish the run, move the cursor on."""
        store = self._store
        record = claim.record
        entry = self._entry(claim, "cancelled", started)
        state: Lease | bool
        if not claim.from_cursor or record.max_running > 1:
            state = await store.commit(claim, log=entry)
        elif task.dynamic and record.schedule is not None and "at" in record.schedule:
            state = await store.delete(record.key, claim=claim)
        else:
            now = self._clock.time()
            cursor = self._next_cursor(task, claim, now, started)
            state = await store.commit(claim, cursor=cursor, log=entry)
        self._changed.set()
        if state:
            log.info("task %r run %r cancelled", record.key, claim.run_id)
        else:
            await self._lost(claim, "was cancelled", ran=False)

    def _record_success(
        self,
        task: Task,
        claim: Claim,
        folded: bool,
        started: float,
        exc: BaseException | None = None,
    ) -> Awaitable[object]:
        """The store call that records a finished run and logs it (awaited by
        the caller: one coroutine fewer per run on the hot path)."""
        store = self._store
        record = claim.record
        outcome: Outcome = "succeeded" if exc is None else "failed"
        entry = self._entry(claim, outcome, started, exc)
        if not claim.from_cursor or record.max_running > 1:
            return store.commit(claim, log=entry)
        if task.dynamic and record.schedule is not None and "at" in record.schedule:
            # A finished once-off instance leaves, if the claim still holds it
            # (not once it was unscheduled, or replaced by a new definition).
            return store.delete(record.key, claim=claim)
        cursor = self._next_cursor(
            task, claim, self._clock.time(), started, folded=folded
        )
        return store.commit(claim, cursor=cursor, log=entry)

    async def _lost(
        self,
        claim: Claim,
        what: str,
        *,
        ran: bool = True,
        started: float | None = None,
    ) -> None:
        """Say why the store no longer took a report of *claim*, truthfully."""
        key = claim.record.key
        current = await self._store.get(key)
        if current is None:
            log.info(
                "task %r run %r %s after the instance was unscheduled%s",
                key,
                claim.run_id,
                what,
                "" if ran else "; not running it",
            )
        elif current.revision != claim.record.revision:
            log.info(
                "task %r run %r %s after the instance was scheduled again; the new "
                "definition keeps its own schedule%s",
                key,
                claim.run_id,
                what,
                "" if ran else "; not running it",
            )
        elif ran:
            log.warning(
                "task %r run %r %s after losing its lease; it may have run twice",
                key,
                claim.run_id,
                what,
            )
            if started is not None:
                self._log_run(self._entry(claim, "lost", started))
        else:
            log.warning(
                "task %r run %r waited past its lease and was taken over; not "
                "running it twice",
                key,
                claim.run_id,
            )

    async def _failed(
        self, task: Task, claim: Claim, exc: BaseException, started: float
    ) -> None:
        store = self._store
        attempt = claim.attempt
        key = claim.record.key
        if attempt < task.retries or task.failure_mode is FailureMode.UNLOCK:
            delay = task.backoff(attempt)
            entry = self._entry(claim, "failed", started, exc)
            now = self._clock.time()
            if await store.commit(claim, retry_at=now + delay, log=entry):
                log.warning(
                    "task %r run %r failed (attempt %d), retrying in %gs: %r",
                    key,
                    claim.run_id,
                    attempt + 1,
                    delay,
                    exc,
                )
            else:
                await self._lost(claim, "failed")
            return
        log.error("task %r run %r failed", key, claim.run_id, exc_info=exc)
        if task.failure_mode is FailureMode.COMMIT:
            if not await self._record_success(task, claim, False, started, exc):
                await self._lost(claim, "failed")
            return
        # FailureMode.NONE: keep the lease; the occurrence runs again on expiry.
        self._log_run(self._entry(claim, "failed", started, exc))

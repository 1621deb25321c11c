"""A model-based stress test of admission: limits, pending places, waiting spawns.

Hypothesis drives a scheduler with small limits through random sequences of
spawns (awaited, not awaited, delayed on a controllable clock), jobs ending in the
same loop turn, closed jobs, cancelled spawners, resizes of the limits on the live
scheduler and a close, and checks after every quiet moment that the counts match
the jobs, that no job stays pending while a slot for its priority is free, and
that no spawn waits while a pending place is free. At the end every spawn must
have returned (a job, or the error that says why not).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from aiohttp_jobs import (
    Job,
    JobState,
    Priority,
    Scheduler,
    SchedulerClosedError,
    SchedulerFullError,
)
from aiohttp_jobs.testing import FakeClock

PRIORITIES = st.sampled_from(list(Priority))
_RUNNING = JobState.RUNNING


async def _body(gate: asyncio.Event) -> None:
    await gate.wait()


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@dataclass
class Spawn:
    """One spawn: its job's gate, the spawning task (awaited spawns) or the job."""

    priority: Priority
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Job[Any]] | None = None
    job: Job[Any] | None = None


class Admission(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.scheduler = Scheduler()
        self.max_high_cap: int | None = 0  # the largest HIGH capacity so far
        self.spawns: list[Spawn] = []
        self.closers: list[asyncio.Task[Any]] = []
        self.closing: asyncio.Task[None] | None = None

    # -- helpers -----------------------------------------------------------------

    def run(self, turns: int) -> None:
        self.loop.run_until_complete(_turns(turns))

    def quiesce(self) -> None:
        """Enough loop turns for every cascade of grants and starts to settle."""
        self.run(8 + 3 * len(self.spawns))

    def jobs(self) -> list[Job[Any]]:
        out = []
        for spawn in self.spawns:
            if spawn.job is None and spawn.task is not None and spawn.task.done():
                if not spawn.task.cancelled() and spawn.task.exception() is None:
                    spawn.job = spawn.task.result()
            if spawn.job is not None:
                out.append(spawn.job)
        return out

    def waiting(self) -> list[Spawn]:
        return [s for s in self.spawns if s.task is not None and not s.task.done()]

    def cap(self, priority: Priority) -> int | None:
        return self.scheduler.capacity(priority)

    async def _spawn(self, spawn: Spawn, delay: float | None = None) -> Job[Any]:
        coro = _body(spawn.gate)
        try:
            return await self.scheduler.spawn(
                coro, priority=spawn.priority, delay=delay
            )
        except SchedulerClosedError:
            coro.close()  # refused, or failed while waiting: ours to close
            raise

    # -- rules ---------------------------------------------------------------------

    @initialize(
        limit=st.integers(1, 3),
        pending_limit=st.integers(0, 2),
        reserve_normal=st.integers(0, 1),
        reserve_high=st.integers(0, 1),
    )
    def make(
        self, limit: int, pending_limit: int, reserve_normal: int, reserve_high: int
    ) -> None:
        self.scheduler = Scheduler(
            limit=limit,
            pending_limit=pending_limit,
            reserve_normal=reserve_normal,
            reserve_high=reserve_high,
            close_timeout=None,
            clock=self.clock,
        )
        self.max_high_cap = self.cap(Priority.HIGH)

    @rule(priorities=st.lists(PRIORITIES, min_size=1, max_size=4))
    def spawn(self, priorities: list[Priority]) -> None:
        for priority in priorities:  # a burst: all in the same loop turn
            spawn = Spawn(priority)
            spawn.task = self.loop.create_task(self._spawn(spawn))
            self.spawns.append(spawn)

    @rule(priority=PRIORITIES, delay=st.sampled_from([1.0, 2.0]))
    def spawn_later(self, priority: Priority, delay: float) -> None:
        spawn = Spawn(priority)
        spawn.task = self.loop.create_task(self._spawn(spawn, delay))
        self.spawns.append(spawn)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0]))
    def advance_clock(self, seconds: float) -> None:
        self.loop.run_until_complete(self.clock.advance(seconds))

    @precondition(lambda self: not self.scheduler.closed)
    @rule(
        limit=st.one_of(st.none(), st.integers(1, 3)),
        pending_limit=st.integers(0, 2),
        reserve_high=st.integers(0, 1),
    )
    def resize(self, limit: int | None, pending_limit: int, reserve_high: int) -> None:
        self.scheduler.reconfigure(
            limit=limit, pending_limit=pending_limit, reserve_high=reserve_high
        )
        high = self.cap(Priority.HIGH)
        if high is None or self.max_high_cap is None:
            self.max_high_cap = None
        else:
            self.max_high_cap = max(self.max_high_cap, high)

    @rule(priority=PRIORITIES)
    def spawn_nowait(self, priority: Priority) -> None:
        spawn = Spawn(priority)

        async def attempt() -> None:
            cap = self.cap(priority)
            slot = cap is None or self.scheduler.active_count < cap
            coro = _body(spawn.gate)
            try:
                spawn.job = self.scheduler.spawn_nowait(coro, priority=priority)
            except SchedulerFullError:
                assert not slot, "refused although a slot was free"
                assert self.scheduler.full
            except SchedulerClosedError:
                coro.close()
                assert self.scheduler.closed or self.scheduler.draining

        self.loop.run_until_complete(attempt())
        self.spawns.append(spawn)

    @rule(first=st.integers(0, 50), count=st.integers(1, 3))
    def finish_in_one_turn(self, first: int, count: int) -> None:
        self.jobs()  # collects the jobs of the spawns that returned
        running = [
            s for s in self.spawns if s.job is not None and s.job.state is _RUNNING
        ]
        for i in range(min(count, len(running))):
            running[(first + i) % len(running)].gate.set()
        self.run(1)

    @rule(pick=st.integers(0, 50))
    def close_a_job(self, pick: int) -> None:
        live = [j for j in self.jobs() if not j.closed]
        if live:
            self.closers.append(
                self.loop.create_task(live[pick % len(live)].close(timeout=None))
            )

    @rule(pick=st.integers(0, 50))
    def cancel_a_spawner(self, pick: int) -> None:
        waiting = self.waiting()
        if waiting:
            task = waiting[pick % len(waiting)].task
            assert task is not None
            task.cancel()

    @rule(turns=st.integers(1, 3))
    def turn(self, turns: int) -> None:
        self.run(turns)

    @precondition(lambda self: self.closing is None)
    @rule()
    def close(self) -> None:
        self.closing = self.loop.create_task(self.scheduler.close())

    @rule()
    def quiet(self) -> None:
        self.quiesce()
        scheduler = self.scheduler
        jobs = self.jobs()
        if scheduler.closed:
            assert self.closing is not None
            if self.closing.done():
                assert not self.waiting(), "a spawn outlived close()"
            return
        pending = [j for j in jobs if j.state is JobState.PENDING]
        # No pending job while a slot for its priority is free.
        for job in pending:
            cap = self.cap(job.priority)
            assert cap is not None and scheduler.active_count >= cap, (
                f"{job!r} pending with active={scheduler.active_count} cap={cap}"
            )
        # No spawn waits while a pending place is free.
        if self.waiting():
            assert scheduler.pending_limit, "a spawn waits on an unbounded list"
            assert scheduler.pending_count >= scheduler.pending_limit, (
                f"{len(self.waiting())} spawns wait with "
                f"pending={scheduler.pending_count} of {scheduler.pending_limit}"
            )

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def counts_match(self) -> None:
        scheduler = self.scheduler
        current = list(scheduler)
        running = sum(j.state is JobState.RUNNING for j in current)
        pending = sum(j.state is JobState.PENDING for j in current)
        scheduled = sum(j.state is JobState.SCHEDULED for j in current)
        assert len(current) == running + pending + scheduled
        if not scheduler.closed:
            assert scheduler.active_count == running
            assert scheduler.pending_count == pending
            assert scheduler.scheduled_count == scheduled
        for job in self.jobs():
            assert (job in scheduler) == (not job.done) or scheduler.closed
        capped = sum(
            j.state is JobState.RUNNING and j.priority is not Priority.CRITICAL
            for j in current
        )
        assert self.max_high_cap is None or capped <= self.max_high_cap

    def teardown(self) -> None:
        scheduler = self.scheduler

        async def end() -> None:
            await scheduler.close()
            if self.closing is not None:
                await self.closing
            await asyncio.gather(*self.closers, return_exceptions=True)
            await asyncio.gather(
                *(s.task for s in self.spawns if s.task is not None),
                return_exceptions=True,
            )

        try:
            for spawn in self.spawns:
                spawn.gate.set()
            self.loop.run_until_complete(self.clock.advance(10))  # all due
            self.quiesce()  # loop turns, never seconds: a hang fails at once
            assert not self.waiting(), "a spawn never returned"
            self.loop.run_until_complete(end())
            for spawn in self.spawns:
                if spawn.task is not None and not spawn.task.cancelled():
                    exc = spawn.task.exception()
                    assert exc is None or isinstance(exc, SchedulerClosedError), exc
            assert all(job.done for job in self.jobs())
            assert (scheduler.active_count, scheduler.pending_count) == (0, 0)
            assert len(scheduler) == 0
        finally:
            if not scheduler.closed:  # failed above: leave no task behind
                self.loop.run_until_complete(end())
            self.loop.close()


Admission.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_admission = Admission.TestCase

"""Delivery guarantees: retries, failure and execution modes, leases and heartbeats,
overlap and misfire policies, concurrency limit. All on a FakeClock."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from aiohttp_jobs import (
    Context,
    ExecutionMode,
    FailureMode,
    LeaseLostError,
    Misfire,
    Overlap,
    Scheduler,
    Tasks,
)
from aiohttp_jobs.stores import MemoryStore
from aiohttp_jobs.testing import FakeClock
from tests.tasks.support import T0, elapsed, task_sleep


async def test_retries_back_off_exponentially_then_succeed(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    attempts: list[tuple[float, int, float]] = []

    @tasks.task(schedule="0 * * * *", retries=3, retry_backoff=2)
    async def flaky(ctx: Context) -> None:
        attempts.append((elapsed(clock), ctx.attempt, ctx.fire_at - T0.timestamp()))
        if ctx.attempt < 2:
            raise RuntimeError("not yet")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(3600 + 10)
        [info] = await runtime.list_tasks()
    assert attempts == [(3600, 0, 3600), (3602, 1, 3600), (3606, 2, 3600)]
    assert info.next_fire_at == T0 + timedelta(hours=2)


async def test_failure_mode_none_reruns_after_the_lease_expires(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[tuple[float, int]] = []

    @tasks.task(interval=100, lease_duration=30)
    async def fragile(ctx: Context) -> None:
        starts.append((elapsed(clock), ctx.attempt))
        if len(starts) == 1:
            raise RuntimeError("first run fails")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(250)
    # failed at 100, lease (30 s) kept, rerun at 130; then on schedule
    assert starts == [(100, 0), (130, 1), (200, 0)]


async def test_failure_mode_unlock_retries_after_the_backoff(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[float] = []

    @tasks.task(interval=100, failure_mode=FailureMode.UNLOCK, retry_backoff=5)
    async def fragile(ctx: Context) -> None:
        starts.append(elapsed(clock))
        if len(starts) < 3:
            raise RuntimeError("fails twice")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(200)
    assert starts == [100, 105, 115, 200]


async def test_failure_mode_commit_moves_on(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[float] = []

    @tasks.task(interval=100, failure_mode=FailureMode.COMMIT)
    async def fragile(ctx: Context) -> None:
        starts.append(elapsed(clock))
        raise RuntimeError("always")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(300)
    assert starts == [100, 200, 300]


async def test_at_most_once_never_repeats_an_occurrence(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[float] = []

    @tasks.task(interval=100, execution_mode=ExecutionMode.AT_MOST_ONCE)
    async def once(ctx: Context) -> None:
        starts.append(elapsed(clock))
        assert not ctx.leased
        await ctx.heartbeat()  # a no-op without a lease
        raise RuntimeError("lost for good")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(300)
    assert starts == [100, 200, 300]


async def test_a_run_longer_than_its_lease_keeps_it_by_heartbeats(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[tuple[float, int]] = []

    @tasks.task(interval=1000, lease_duration=10)
    async def long(ctx: Context) -> None:
        starts.append((elapsed(clock), ctx.attempt))
        await task_sleep(ctx, 45)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(1100)
        [entry] = await runtime.recent_runs("long")
    assert starts == [(1000, 0)]  # never taken over: no duplicate
    assert (entry.outcome, entry.duration) == ("succeeded", 45)


async def test_a_run_stalled_past_its_lease_is_cancelled_and_taken_over(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    starts: list[tuple[float, str, int]] = []
    ended: list[str] = []

    @tasks.task(interval=1000, lease_duration=10)
    async def long(ctx: Context) -> None:
        starts.append((elapsed(clock), ctx.run_id, ctx.attempt))
        try:
            await task_sleep(ctx, 25 if ctx.attempt == 0 else 1)
        except asyncio.CancelledError:
            ended.append(f"cancelled {ctx.attempt}")
            raise
        ended.append(f"finished {ctx.attempt}")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(1000)
        await clock.jump(15)  # the process stalls past the lease (SIGSTOP)
        await clock.advance(30)
        [info] = await runtime.list_tasks()
        log = await runtime.recent_runs("long")
    # the same run id: the duplicate is detectable; the stale one did not go on
    assert starts == [(1000, "long@1704068200000", 0), (1015, "long@1704068200000", 1)]
    assert ended == ["cancelled 0", "finished 1"]
    assert info.next_fire_at == T0 + timedelta(seconds=2000)
    assert [(e.attempt, e.outcome) for e in log] == [(1, "succeeded"), (0, "lost")]
    lost = [r for r in caplog.records if "lost its lease" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING
    assert "long@1704068200000" in lost[0].getMessage()


async def test_cooperative_heartbeat_keeps_the_lease(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[float] = []

    @tasks.task(interval=1000, lease_duration=10)
    async def long(ctx: Context) -> None:
        starts.append(elapsed(clock))
        for _ in range(5):
            await task_sleep(ctx, 5)
            await ctx.heartbeat()

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(1100)
    assert starts == [1000]


async def test_automatic_heartbeat_keeps_the_lease(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    starts: list[float] = []

    @tasks.task(interval=1000, lease_duration=10, heartbeat=4)
    async def long(ctx: Context) -> None:
        starts.append(elapsed(clock))
        await task_sleep(ctx, 60)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(1100)
    assert starts == [1000]


async def test_heartbeat_after_the_instance_was_replaced_raises_lease_lost(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    outcomes: list[str] = []

    @tasks.dynamic_task(lease_duration=10)
    async def long(ctx: Context) -> None:
        if ctx.params["v"] == 2:
            outcomes.append("new definition ran")
            return
        await task_sleep(ctx, 2)
        await ctx.runtime.schedule_task(long, "a", interval=100, v=2)
        try:
            await ctx.heartbeat()
        except LeaseLostError:
            outcomes.append("lease lost")
            raise

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(long, "a", interval=100, v=1)
        await clock.advance(250)
    assert outcomes == ["lease lost", "new definition ran"]


async def _overlapping(
    scheduler: Scheduler, clock: FakeClock, **options: object
) -> list[tuple[float, float]]:
    tasks = Tasks()
    runs: list[tuple[float, float]] = []

    @tasks.task(interval=10, **options)  # type: ignore[arg-type]
    async def slow(ctx: Context) -> None:
        runs.append((elapsed(clock), ctx.fire_at - T0.timestamp()))
        if elapsed(clock) < 60:  # later runs are quick, so that shutdown finishes
            await task_sleep(ctx, 25)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(60)
        await clock.advance(100)  # let runs in flight finish
    return runs


async def test_overlap_skip_drops_occurrences_that_came_due_during_a_run(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "aiohttp_jobs.tasks"):
        runs = await _overlapping(scheduler, clock, overlap=Overlap.SKIP)
    # 10 runs until 35: 20 and 30 skipped; next at 40 runs until 65 ...
    assert runs[:2] == [(10, 10), (40, 40)]
    assert "skipped 2 occurrence(s)" in caplog.text


async def test_overlap_queue_runs_them_one_after_the_other(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = await _overlapping(scheduler, clock, overlap=Overlap.QUEUE, queue_limit=2)
    assert runs[:3] == [(10, 10), (35, 20), (60, 30)]


async def test_overlap_allow_starts_on_time_up_to_max_overlap(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = await _overlapping(scheduler, clock, overlap=Overlap.ALLOW, max_overlap=2)
    # two at once: the occurrence of 30 waits for the run of 10 to end at 35
    assert runs[:4] == [(10, 10), (20, 20), (35, 30), (45, 40)]


async def _downtime(
    scheduler: Scheduler, clock: FakeClock, **options: object
) -> list[tuple[float, float, int]]:
    """Run a per-minute task, stop for ten minutes, start again on the same store."""
    store = MemoryStore()
    tasks = Tasks(store=store)
    runs: list[tuple[float, float, int]] = []

    @tasks.task(schedule="* * * * *", **options)  # type: ignore[arg-type]
    async def minutely(ctx: Context) -> None:
        runs.append((elapsed(clock), ctx.fire_at - T0.timestamp(), ctx.missed))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(60)
    await clock.advance(600 + 30)  # nobody runs anything: down until 11:30
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(30)
    return runs


async def test_misfire_run_once_runs_once_and_says_how_many_were_missed(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = await _downtime(scheduler, clock)
    assert runs == [(60, 60, 0), (690, 120, 9), (720, 720, 0)]


async def test_misfire_run_all_runs_missed_ones_up_to_the_limit(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    runs = await _downtime(scheduler, clock, misfire=Misfire.RUN_ALL, misfire_limit=3)
    assert runs == [
        (60, 60, 0),
        (690, 120, 0),
        (690, 180, 0),
        (690, 240, 0),
        (720, 720, 0),
    ]


async def test_misfire_skip_waits_for_the_next_occurrence(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "aiohttp_jobs.tasks"):
        runs = await _downtime(scheduler, clock, misfire=Misfire.SKIP)
    assert runs == [(60, 60, 0), (720, 720, 0)]
    assert "10 runs were missed" in caplog.text
    assert "(misfire=SKIP): 0 will run now, 10 skipped" in caplog.text


async def test_concurrency_limit_applies_back_pressure(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks(concurrency_limit=2)
    gate = asyncio.Event()
    started: list[str] = []

    @tasks.dynamic_task()
    async def work(ctx: Context) -> None:
        started.append(ctx.name)
        await gate.wait()

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        for i in range(5):
            await runtime.schedule_task(work, f"w{i}", execute_at=T0)
        await clock.advance(0)
        assert (runtime.in_flight, len(started)) == (2, 2)
        assert await runtime.store.next_due() == T0.timestamp()  # still in the store
        gate.set()
        await clock.advance(0)
        assert len(started) == 5


async def test_batch_size_bounds_each_claim_but_everything_runs(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks(batch_size=3)
    done: list[str] = []

    @tasks.dynamic_task()
    async def work(ctx: Context) -> None:
        done.append(ctx.name)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        for i in range(10):
            await runtime.schedule_task(work, f"w{i}", execute_at=T0)
        await clock.advance(0)
    assert sorted(done) == sorted(f"work:w{i}" for i in range(10))
    assert len(scheduler.history) == 10


async def test_window_start_and_end(scheduler: Scheduler, clock: FakeClock) -> None:
    tasks = Tasks()
    runs: list[float] = []

    @tasks.task(
        interval=10,
        start_at=T0 + timedelta(seconds=100),
        end_at=T0 + timedelta(seconds=125),
    )
    async def windowed(ctx: Context) -> None:
        runs.append(elapsed(clock))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(300)
    assert runs == [100, 110, 120]


async def test_a_run_pending_past_its_lease_runs_once(clock: FakeClock) -> None:
    tasks = Tasks()
    runs: list[tuple[str, float, int]] = []

    @tasks.task(keyword="hog", lease_duration=1000)
    async def hog(ctx: Context) -> None:
        runs.append(("hog", elapsed(clock), ctx.attempt))
        await task_sleep(ctx, 100)

    @tasks.task(interval=1000, lease_duration=10)
    async def small(ctx: Context) -> None:
        runs.append(("small", elapsed(clock), ctx.attempt))

    async with Scheduler(limit=1) as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
            await clock.advance(999)
            await runtime.fire("hog")  # holds the only slot from 999 to 1099
            await clock.advance(200)
    # 'small' waited in the pending list past its lease (and was re-claimed);
    # it still ran exactly once
    assert [r[0] for r in runs] == ["hog", "small"]
    assert runs[1][1] == 1099


async def test_the_runner_starts_at_most_a_batch_of_runs_per_loop_turn(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    from aiohttp_jobs._core.scheduler import START_BATCH

    tasks = Tasks(batch_size=200)  # one claim of 200 runs
    active_when_first_ran: list[int] = []

    @tasks.dynamic_task()
    async def work(ctx: Context) -> None:
        if not active_when_first_ran:
            active_when_first_ran.append(scheduler.active_count)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        for i in range(200):
            await runtime.schedule_task(work, f"w{i}", execute_at=T0)
        await clock.advance(0)
        await runtime.wait_idle()
    # The first run started before the rest of the claimed batch was spawned.
    assert active_when_first_ran == [START_BATCH] and START_BATCH < 200


async def test_after_a_blocked_event_loop_the_log_says_the_run_was_late(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    runs: list[tuple[float, float]] = []

    @tasks.task(interval=10)
    async def tick(ctx: Context) -> None:
        runs.append((elapsed(clock), ctx.fire_at - T0.timestamp()))

    with caplog.at_level(logging.WARNING, "aiohttp_jobs.tasks"):
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
            await clock.advance(10)
            await clock.jump(35)  # the loop was blocked from 10 to 45
            await clock.advance(5)
            [info] = await rt.list_tasks()
    assert runs == [(10, 10), (45, 20), (50, 50)]
    assert info.skipped == 2  # 30 and 40
    assert "during a run" not in caplog.text
    assert "skipped 2 occurrence(s) that came due before run 'tick@" in caplog.text
    assert "it started 25.000s late" in caplog.text


async def test_a_run_that_waited_for_a_slot_does_not_blame_the_overlap_policy(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    runs: list[tuple[str, float]] = []

    @tasks.task(keyword="hog")
    async def hog(ctx: Context) -> None:
        await task_sleep(ctx, 30)

    @tasks.task(interval=10)
    async def tick(ctx: Context) -> None:
        runs.append(("tick", elapsed(clock)))

    with caplog.at_level(logging.WARNING, "aiohttp_jobs.tasks"):
        async with Scheduler(limit=1) as scheduler:
            async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
                await clock.advance(5)
                await rt.fire("hog")  # holds the only slot from 5 to 35
                await clock.advance(35)
    assert runs[0] == ("tick", 35)  # due at 10, started when the slot freed
    assert "during a run" not in caplog.text
    assert "skipped 2 occurrence(s) that came due before run 'tick@" in caplog.text


async def test_runs_start_through_the_schedulers_public_spawn_api(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = Tasks()
    gate = asyncio.Event()
    done: list[str] = []

    @tasks.dynamic_task()
    async def work(ctx: Context) -> None:
        await gate.wait()
        done.append(ctx.name)

    calls: list[str] = []
    async with Scheduler(limit=1, pending_limit=1) as scheduler:
        for method in ("spawn_nowait", "spawn"):
            original = getattr(scheduler, method)

            def spy(
                *args: Any, _name: str = method, _f: Any = original, **kw: Any
            ) -> Any:
                calls.append(_name)
                return _f(*args, **kw)

            monkeypatch.setattr(scheduler, method, spy)
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
            for i in range(4):
                await rt.schedule_task(work, f"w{i}", execute_at=T0)
            await clock.advance(0)
            # one running, one pending, the third waits in spawn() for a place
            assert (scheduler.active_count, scheduler.pending_count) == (1, 1)
            gate.set()
            await clock.advance(0)
            await rt.wait_idle()
    assert sorted(done) == [f"work:w{i}" for i in range(4)]
    assert calls.count("spawn_nowait") == 4
    assert "spawn" in calls  # the pending list was full: spawn() waited

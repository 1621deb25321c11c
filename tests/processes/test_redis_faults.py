"""Three processes on one Redis, one fault each: a process killed or frozen
mid-run, Redis restarted, unreachable, or its script cache flushed.

Each test prints (and keeps for the run's summary) its figures: occurrences
owed, lost, duplicates, and the recovery time.
"""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from tests.processes.conftest import Figures
from tests.processes.support import (
    FleetRun,
    check,
    fleet_run,
    leftovers,
    repeats_of,
    signal_mid_run,
    stale_completions,
)
from tests.stores.redis_support import RedisServer

LEASE = 1.0
# Beyond the lease: the bounded poll of an idle runner, and a loaded machine.
SLACK = 3.0


def _fleet(
    redis: RedisServer, tmp_path: Path, **planned: float
) -> AbstractAsyncContextManager[FleetRun]:
    """Three processes on *redis* following a plan with the tests' lease."""
    return fleet_run(redis.url, tmp_path / "logs", 3, lease=LEASE, **planned)


async def test_kill_9_mid_run_is_taken_over_with_the_next_attempt(
    redis: RedisServer, tmp_path: Path, figures: Figures
) -> None:
    async with _fleet(
        redis, tmp_path, window=2.5, once=200, slow_at=0.2, slow_seconds=2.0
    ) as run:
        slow = await signal_mid_run(
            run.procs, "slow:s0", signal.SIGKILL, timeout=LEASE + SLACK + 5
        )
    victim = slow.victim.name
    # a run the victim completed but could not commit may run again: that is
    # the at-least-once promise; any other repeat is a defect
    repeats = repeats_of(run.events, victim)
    figures(
        "kill -9 mid-run (redis)",
        **run.report.figures(),
        takeover_s=round(slow.seconds, 3),
        takeover_attempt=slow.again["attempt"],
        repeats_of_victims_runs=len(repeats),
    )
    run.assert_clean_exit(victim)
    assert run.codes[victim] == -signal.SIGKILL
    run.assert_nothing_lost()
    assert slow.again["instance"] != victim
    assert slow.again["attempt"] == slow.first["attempt"] + 1
    assert slow.seconds <= LEASE + SLACK, f"taken over after {slow.seconds:.3f}s"
    assert run.report.duplicate_count == len(repeats), (run.report, sorted(repeats))
    assert await leftovers(redis.url) == []


async def test_a_process_frozen_past_its_lease_changes_nothing_when_it_resumes(
    redis: RedisServer, tmp_path: Path, figures: Figures
) -> None:
    async with _fleet(
        redis, tmp_path, window=2.5, once=100, slow_at=0.2, slow_seconds=3.0
    ) as run:
        slow = await signal_mid_run(
            run.procs, "slow:s0", signal.SIGSTOP, timeout=LEASE + SLACK + 5
        )
        await asyncio.sleep(0.2)
        resumed_at = slow.victim.signal(signal.SIGCONT)
    events = run.events
    victim = slow.victim.name
    stopped_at = slow.signalled_at
    stale = stale_completions(events)
    zombie = [
        ev
        for ev in events
        if ev["ev"] == "done" and ev["key"] == "slow:s0" and ev["instance"] == victim
    ]
    repeats = repeats_of(events, victim)
    figures(
        "SIGSTOP past the lease, then SIGCONT (redis)",
        **run.report.figures(),
        repeats_of_victims_runs=len(repeats),
        takeover_s=round(slow.seconds, 3),
        frozen_s=round(resumed_at - stopped_at, 3),
        zombie_completions=len(zombie),
        stale_fence_completions=len(stale),
    )
    run.assert_clean_exit()
    run.assert_nothing_lost()
    assert slow.again["instance"] != victim
    assert slow.again["attempt"] == slow.first["attempt"] + 1
    # the frozen run noticed its lease was gone: it did not finish its work
    assert not zombie, f"the frozen run completed after losing its lease: {zombie}"
    # A run it had claimed but not started before freezing may still start on
    # resuming (a process can stop between any two instructions): its writes
    # carry the old fence, which a fenced downstream refuses. A run it had
    # finished before freezing but not yet committed is run again by the
    # process that takes it over: at least once, as with kill -9. Counted
    # with fences, nothing else completed twice.
    finished_before_freeze = {
        ev["run_id"]
        for ev in events
        if ev["ev"] == "done" and ev["instance"] == victim and ev["t"] <= stopped_at
    }
    assert repeats <= finished_before_freeze, (repeats, finished_before_freeze)
    counted = check(run.cfg, [ev for ev in events if ev not in stale])
    assert counted.duplicate_count == len(repeats), (counted, sorted(repeats))
    assert not counted.lost, counted
    assert await leftovers(redis.url) == []


async def test_redis_restarted_with_aof_loses_nothing(
    redis: RedisServer, tmp_path: Path, figures: Figures
) -> None:
    async with _fleet(redis, tmp_path, window=3.0, once=300) as run:
        await run.until(1.0)
        down_at = time.time()
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(0.5)  # refused connections, not only a broken one
        await asyncio.to_thread(redis.start)
        up_at = time.time()
    recovery = run.recovery_after(up_at)
    figures(
        "redis restarted (AOF, appendfsync always)",
        **run.report.figures(),
        down_s=round(up_at - down_at, 3),
        recovery_s=recovery,
    )
    run.assert_clean_exit()
    run.assert_nothing_lost()
    assert recovery is not None and recovery <= LEASE + SLACK, recovery
    assert await leftovers(redis.url) == []


async def test_redis_unreachable_for_seconds_loses_nothing(
    redis: RedisServer, tmp_path: Path, figures: Figures
) -> None:
    async with _fleet(redis, tmp_path, window=4.0, once=300) as run:
        await run.until(1.0)
        paused_at = time.time()
        redis.pause()  # SIGSTOP: connections hang, nothing answers
        try:
            await asyncio.sleep(2.5)
        finally:
            redis.resume()
        resumed_at = time.time()
    recovery = run.recovery_after(resumed_at)
    stderr = run.procs.stderr()
    logged = stderr.count("store error")
    figures(
        "redis unreachable (SIGSTOP 2.5 s)",
        **run.report.figures(),
        unreachable_s=round(resumed_at - paused_at, 3),
        recovery_s=recovery,
        store_errors_logged=logged,
    )
    run.assert_clean_exit()
    assert "Traceback" not in stderr or logged, stderr[-4000:]
    run.assert_nothing_lost()
    assert recovery is not None and recovery <= LEASE + SLACK, recovery
    assert await leftovers(redis.url) == []


async def test_script_cache_flushed_twice_changes_nothing(
    redis: RedisServer, tmp_path: Path, figures: Figures
) -> None:
    async with _fleet(redis, tmp_path, window=2.5, once=300) as run:
        flushed = []
        for at in (0.5, 1.5):
            await run.until(at)
            assert redis.command("SCRIPT", "FLUSH") == "+OK"
            flushed.append(time.time())
    figures(
        "SCRIPT FLUSH x2 (redis)",
        **run.report.figures(),
        first_run_after_flush_s=[run.recovery_after(t) for t in flushed],
    )
    run.assert_clean_exit()
    stderr = run.procs.stderr()
    assert "store error" not in stderr, stderr[-4000:]
    assert not run.report.lost and not run.report.duplicates, run.report
    assert await leftovers(redis.url) == []

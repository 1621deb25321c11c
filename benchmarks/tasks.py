"""Scheduled tasks: firing lateness and once-off throughput, against pyncette and
APScheduler 3 measured in the same run (when installed).

    .venv/bin/python benchmarks/tasks.py [--seconds 10]

Prints ONE JSON line. Lateness is (moment the task body starts) - (its scheduled
time), in milliseconds, for a per-second cron task and a 100 ms interval task
running side by side. Throughput: N once-off tasks due now, scheduled then run;
``*_per_s`` counts from the first schedule call to the last run finishing,
``run_per_s`` from the last schedule call. ``ran`` says how many actually ran.
Each throughput figure is the median of three runs (the garbage collector is
emptied before each), for every contender.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import gc
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from aiohttp_jobs import Context, Scheduler, Tasks

UTC = dt.UTC


def _stats(samples: list[float]) -> dict[str, float | int]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def _until(cond: Callable[[], bool], timeout: float) -> None:
    end = time.perf_counter() + timeout
    # polling is fine here: it only watches the anchors' progress
    while not cond() and time.perf_counter() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


# -- aiohttp-jobs ---------------------------------------------------------------------


async def ours_lateness(seconds: float) -> dict[str, Any]:
    tasks = Tasks()
    cron: list[float] = []
    interval: list[float] = []

    @tasks.task(schedule="* * * * * *")
    async def every_second(ctx: Context) -> None:
        cron.append(time.time() - ctx.fire_at)

    @tasks.task(interval=0.1)
    async def every_100ms(ctx: Context) -> None:
        interval.append(time.time() - ctx.fire_at)

    async with Scheduler() as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler):
            await asyncio.sleep(seconds)
    return {"cron_1s": _stats(cron), "interval_100ms": _stats(interval)}


async def ours_once(n: int) -> dict[str, Any]:
    tasks = Tasks()  # default batch_size (100 claims per acquire)
    done = 0
    finished = asyncio.Event()

    @tasks.dynamic_task()
    async def once(ctx: Context) -> None:
        nonlocal done
        done += 1
        if done == n:
            finished.set()

    async with Scheduler(limit=None) as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler) as runtime:
            t0 = time.perf_counter()
            now = time.time()
            for i in range(n):
                await runtime.schedule_task(once, f"t{i}", execute_at=now)
            t1 = time.perf_counter()
            await asyncio.wait_for(finished.wait(), 120)
            t2 = time.perf_counter()
    return {
        "n": n,
        "ran": done,
        "per_s": round(n / (t2 - t0)),
        "run_per_s": round(n / (t2 - t1)),
    }


# -- APScheduler 3 --------------------------------------------------------------------


async def aps_lateness(seconds: float) -> dict[str, Any] | None:
    try:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
    except ImportError:
        return None
    cron: list[float] = []
    interval: list[float] = []
    start = time.time() + 0.5
    start = float(int(start * 10) + 1) / 10  # on a 100 ms grid

    async def every_second() -> None:
        now = time.time()
        cron.append(now - int(now))  # fires on whole seconds

    async def every_100ms() -> None:
        now = time.time()
        interval.append((now - start) % 0.1)

    sched = AsyncIOScheduler(timezone=UTC)
    sched.add_job(every_second, "cron", second="*")
    sched.add_job(
        every_100ms,
        "interval",
        seconds=0.1,
        start_date=dt.datetime.fromtimestamp(start, UTC) - dt.timedelta(seconds=0.1),
    )
    sched.start()
    await asyncio.sleep(seconds)
    sched.shutdown(wait=False)
    return {"cron_1s": _stats(cron), "interval_100ms": _stats(interval)}


async def aps_once(n: int, *, grace: bool = True) -> dict[str, Any] | None:
    """With APScheduler's default misfire grace (1 s: late jobs are dropped), or
    with ``grace=False`` (``misfire_grace_time=None``: every job runs)."""
    try:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
    except ImportError:
        return None
    done = 0

    async def once() -> None:
        nonlocal done
        done += 1

    sched = AsyncIOScheduler(timezone=UTC)
    sched.start()
    t0 = time.perf_counter()
    now = dt.datetime.now(UTC)
    for _ in range(n):
        if grace:
            sched.add_job(once, "date", run_date=now)  # default misfire grace: 1 s
        else:
            sched.add_job(once, "date", run_date=now, misfire_grace_time=None)
    t1 = time.perf_counter()
    last = -1
    while done < n and done != last:  # stop when no progress for 2 s
        last = done
        await _until(lambda: done >= n, 2.0)
    t2 = time.perf_counter()
    sched.shutdown(wait=False)
    return {
        "n": n,
        "ran": done,
        "per_s": round(done / (t2 - t0)),
        "run_per_s": round(done / (t2 - t1)),
    }


# -- pyncette -------------------------------------------------------------------------


async def pyncette_lateness(seconds: float) -> dict[str, Any] | None:
    try:
        from pyncette import Pyncette
    except ImportError:
        return None
    app = Pyncette()  # default: in-memory SQLite, 1 s poll
    cron: list[float] = []
    interval: list[float] = []

    @app.task(schedule="* * * * * *")
    async def every_second(context: Any) -> None:
        cron.append(time.time() - context.scheduled_at.timestamp())

    @app.task(interval=dt.timedelta(milliseconds=100))
    async def every_100ms(context: Any) -> None:
        interval.append(time.time() - context.scheduled_at.timestamp())

    async with app.create() as ctx:
        runner = asyncio.ensure_future(ctx.run())
        await asyncio.sleep(seconds)
        ctx.shutdown()
        await runner
    return {"cron_1s": _stats(cron), "interval_100ms": _stats(interval)}


async def pyncette_once(n: int, timeout: float) -> dict[str, Any] | None:
    try:
        from pyncette import Pyncette
    except ImportError:
        return None
    app = Pyncette()
    done = 0

    @app.dynamic_task()
    async def once(context: Any) -> None:
        nonlocal done
        done += 1

    async with app.create() as ctx:
        t0 = time.perf_counter()
        now = dt.datetime.now(UTC)
        for i in range(n):
            await ctx.schedule_task(once, f"t{i}", execute_at=now)
        t1 = time.perf_counter()
        runner = asyncio.ensure_future(ctx.run())
        await _until(lambda: done >= n, timeout)
        t2 = time.perf_counter()
        ctx.shutdown()
        await runner
    return {
        "n": n,
        "ran": done,
        "per_s": round(done / (t2 - t0)),
        "run_per_s": round(done / (t2 - t1)),
        "timed_out": done < n,
    }


async def _median_of(
    bench: Callable[[int], Any], n: int, rounds: int = 3
) -> dict[str, Any] | None:
    """The run with the median ``per_s`` of *rounds* (a shared machine is noisy),
    after an untimed warm-up run of at most 1,000 tasks."""
    await bench(min(n, 1_000))
    runs = []
    for _ in range(rounds):
        gc.collect()
        runs.append(await bench(n))
    if any(run is None for run in runs):
        return None
    runs.sort(key=lambda run: run["per_s"])
    return runs[len(runs) // 2]  # type: ignore[no-any-return]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


async def main(seconds: float, *, quick: bool = False) -> dict[str, Any]:
    logging.disable(logging.CRITICAL)  # the anchors log every misfire
    ours_sizes = (500, 1_000, 2_000) if quick else (10_000, 50_000, 100_000)
    aps_sizes = ours_sizes[:2]
    out: dict[str, Any] = {"benchmark": "tasks", "seconds": seconds, "quick": quick}
    out["ours_lateness"] = await ours_lateness(seconds)
    out["ours_once"] = [await _median_of(ours_once, n) for n in ours_sizes]
    out["apscheduler_lateness"] = await aps_lateness(seconds)
    out["apscheduler_once_all_run"] = [
        await _median_of(functools.partial(aps_once, grace=False), n) for n in aps_sizes
    ]
    out["apscheduler_once"] = [await _median_of(aps_once, n) for n in aps_sizes]
    out["pyncette_lateness"] = await pyncette_lateness(seconds)
    out["pyncette_once"] = await pyncette_once(ours_sizes[0], timeout=15)

    ours = out["ours_lateness"]["cron_1s"]
    ratios: dict[str, float | None] = {}
    for anchor in ("apscheduler", "pyncette"):
        theirs = out[f"{anchor}_lateness"]
        if theirs is None:
            continue
        for kind in ("cron_1s", "interval_100ms"):
            for stat in ("median_ms", "p99_ms"):
                ratios[f"{anchor}_{kind}_{stat}_x"] = _ratio(
                    theirs[kind].get(stat), out["ours_lateness"][kind].get(stat)
                )
    ours10k = out["ours_once"][0]["per_s"]
    if out["apscheduler_once_all_run"][0]:
        for i, n in enumerate(("10k", "50k")):
            ratios[f"once_{n}_vs_apscheduler_all_run_x"] = _ratio(
                out["ours_once"][i]["per_s"],
                out["apscheduler_once_all_run"][i]["per_s"],
            )
    if out["apscheduler_once"][0]:
        ratios["once_10k_vs_apscheduler_x"] = _ratio(
            ours10k, out["apscheduler_once"][0]["per_s"]
        )
        ratios["once_10k_run_phase_vs_apscheduler_x"] = _ratio(
            out["ours_once"][0]["run_per_s"], out["apscheduler_once"][0]["run_per_s"]
        )
    if out["pyncette_once"]:
        ratios["once_10k_vs_pyncette_x"] = _ratio(
            ours10k, out["pyncette_once"]["per_s"]
        )
    ratios["once_100k_vs_10k"] = _ratio(out["ours_once"][2]["per_s"], ours10k)
    out["ratios"] = ratios
    out["ours_all_ran"] = all(r["ran"] == r["n"] for r in out["ours_once"])
    out["ours_cron_median_ms"] = ours.get("median_ms")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (for a smoke test)"
    )
    args = parser.parse_args()
    result = asyncio.run(main(args.seconds, quick=args.quick))
    sys.stdout.write(json.dumps(result) + "\n")

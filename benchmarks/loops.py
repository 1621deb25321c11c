"""Cost of the hop to an isolated event loop: ``spawn(coro, loop="bench")`` vs a
plain ``spawn(coro)``, per job, measured in the same run on the same scheduler.

Two ways of spending it:

- ``one_by_one``: spawn a job and await its result before the next one: the round
  trip a request handler pays when it waits for a job on an isolated loop;
- ``batch``: spawn N jobs, then wait for all of them: the cost per job when many
  are in flight (the two threads then work in parallel, in turns of the GIL).

The isolated loop is started before the timings (its thread's start is not
counted). Rounds alternate the contenders; the script prints ONE JSON line with
the median microseconds per job and the ratio of each hop to its plain spawn.

    python benchmarks/loops.py [--jobs 20000] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jobs

LOOP = "bench"


async def _noop() -> None:
    return None


def _one_by_one(loop: str | None) -> Callable[[aiohttp_jobs.Scheduler, int], Any]:
    async def run(scheduler: aiohttp_jobs.Scheduler, n: int) -> None:
        spawn = scheduler.spawn
        for _ in range(n):
            await (await spawn(_noop(), loop=loop)).wait()

    return run


def _batch(loop: str | None) -> Callable[[aiohttp_jobs.Scheduler, int], Any]:
    async def run(scheduler: aiohttp_jobs.Scheduler, n: int) -> None:
        spawn = scheduler.spawn
        for _ in range(n):
            await spawn(_noop(), loop=loop)
        await scheduler.wait_idle()

    return run


async def _measure(
    contenders: dict[str, Callable[[aiohttp_jobs.Scheduler, int], Awaitable[None]]],
    jobs: int,
    rounds: int,
) -> dict[str, list[float]]:
    """Microseconds per job, one entry per round, for each contender."""
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    async with aiohttp_jobs.Scheduler(
        limit=None, pending_limit=0, history_limit=0, loops=[LOOP]
    ) as scheduler:
        for run in contenders.values():  # warm-up: starts the loop, fills caches
            await run(scheduler, min(jobs, 200))
        for _ in range(rounds):  # interleaved rounds: drift hits everyone alike
            for name, run in contenders.items():
                gc.collect()
                start = time.perf_counter()
                await run(scheduler, jobs)
                elapsed = time.perf_counter() - start
                timings[name].append(elapsed / jobs * 1e6)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="a few hundred jobs, two rounds (tests)"
    )
    args = parser.parse_args()
    jobs, rounds = (300, 2) if args.quick else (args.jobs, args.rounds)

    contenders = {
        "plain_one_by_one": _one_by_one(None),
        "loop_one_by_one": _one_by_one(LOOP),
        "plain_batch": _batch(None),
        "loop_batch": _batch(LOOP),
    }
    timings = asyncio.run(_measure(contenders, jobs, rounds))
    medians = {name: statistics.median(t) for name, t in timings.items()}
    result: dict[str, Any] = {
        "benchmark": "loops",
        "python": sys.version.split()[0],
        "jobs": jobs,
        "rounds": rounds,
        "us_per_job": {name: round(m, 2) for name, m in medians.items()},
        "ratio_loop_vs_plain": {
            mode: round(medians[f"loop_{mode}"] / medians[f"plain_{mode}"], 2)
            for mode in ("one_by_one", "batch")
        },
        "hop_extra_us_per_job": {
            mode: round(medians[f"loop_{mode}"] - medians[f"plain_{mode}"], 2)
            for mode in ("one_by_one", "batch")
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

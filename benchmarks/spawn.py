"""Spawn and complete N trivial jobs: aiohttp_jobs vs raw asyncio vs aiojobs.

Prints one JSON line: median jobs/s over several rounds for each contender
(limit=None and limit=100, spawn then wait_and_close), ratios to raw
``create_task`` + ``gather`` measured in the same run, memory per live job
(tracemalloc peak / N) and the size of a 10,000-job history.
``metrics_on_ratio``: the rate with Prometheus metrics collected
(``aiohttp_jobs.metrics.instrument``) over the rate without, the median of the
rounds' ratios, each measured back to back (when prometheus-client is
installed). ``tracing_off``: what the tracing switch costs ``aiohttp_jobs.spawn()``,
``shield()`` and ``@atomic`` while OpenTelemetry is not in use (one check, in ns,
and as a share of a spawn's time).

    python benchmarks/spawn.py [--jobs 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import timeit
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jobs
from aiohttp_jobs._core import tracing

try:
    import aiojobs
except ImportError:  # pragma: no cover - optional baseline
    aiojobs = None

try:
    import prometheus_client
except ImportError:  # pragma: no cover - optional extra
    prometheus_client = None


async def _noop() -> None:
    return None


async def _raw(n: int) -> None:
    await asyncio.gather(*[asyncio.create_task(_noop()) for _ in range(n)])


def _scheduler_run(
    factory: Callable[..., Any], limit: int | None
) -> Callable[[int], Awaitable[None]]:
    async def run(n: int) -> None:
        scheduler = factory(limit=limit, pending_limit=0)
        spawn = scheduler.spawn
        for _ in range(n):
            await spawn(_noop())
        await scheduler.wait_and_close()

    return run


def _with_metrics(**kwargs: Any) -> aiohttp_jobs.Scheduler:
    from aiohttp_jobs import metrics

    scheduler = aiohttp_jobs.Scheduler(**kwargs)
    metrics.instrument(scheduler)
    return scheduler


def _rate(run: Callable[[int], Awaitable[None]], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    asyncio.run(run(n))
    return n / (time.perf_counter() - start)


def _peak_bytes_per_job(run: Callable[[int], Awaitable[None]], n: int) -> float:
    gc.collect()
    tracemalloc.start()
    asyncio.run(run(n))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / n


async def _history_bytes(n: int) -> int:
    gc.collect()
    tracemalloc.start()
    async with aiohttp_jobs.Scheduler(limit=None, history_limit=n) as scheduler:
        for _ in range(n):
            await scheduler.spawn(_noop())
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(scheduler.history) == n
    return size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.jobs

    contenders: dict[str, Callable[[int], Awaitable[None]]] = {"raw_asyncio": _raw}
    for limit in (None, 100):
        contenders[f"aiohttp_jobs_limit_{limit}"] = _scheduler_run(
            aiohttp_jobs.Scheduler, limit
        )
        if prometheus_client is not None:
            contenders[f"aiohttp_jobs_metrics_limit_{limit}"] = _scheduler_run(
                _with_metrics, limit
            )
        if aiojobs is not None:
            contenders[f"aiojobs_limit_{limit}"] = _scheduler_run(
                aiojobs.Scheduler, limit
            )

    rates: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders.items())
    for _ in range(args.rounds):  # interleaved rounds: drift hits everyone alike
        for name, run in order:
            rates[name].append(_rate(run, n))
        order.reverse()  # and no one always runs right after the same one
    medians = {name: round(statistics.median(r)) for name, r in rates.items()}
    raw = medians["raw_asyncio"]
    result: dict[str, Any] = {
        "benchmark": "spawn",
        "jobs": n,
        "rounds": args.rounds,
        "jobs_per_s": medians,
        "ratio_to_raw": {k: round(v / raw, 2) for k, v in medians.items()},
        "bytes_per_live_job": {
            name: round(_peak_bytes_per_job(contenders[name], n))
            for name in ("raw_asyncio", "aiohttp_jobs_limit_None")
            + (("aiojobs_limit_None",) if aiojobs is not None else ())
        },
        "history_10000_mb": round(asyncio.run(_history_bytes(10_000)) / 2**20, 2),
    }
    if prometheus_client is not None:
        # Paired: each round measures both back to back, so the load of a
        # shared machine, which drifts between rounds, cancels out.
        result["metrics_on_ratio"] = {
            f"limit_{limit}": round(
                statistics.median(
                    on / off
                    for on, off in zip(
                        rates[f"aiohttp_jobs_metrics_limit_{limit}"],
                        rates[f"aiohttp_jobs_limit_{limit}"],
                        strict=True,
                    )
                ),
                2,
            )
            for limit in (None, 100)
        }
    if aiojobs is not None:
        result["ratio_to_aiojobs"] = {
            f"limit_{limit}": round(
                medians[f"aiohttp_jobs_limit_{limit}"]
                / medians[f"aiojobs_limit_{limit}"],
                2,
            )
            for limit in (None, 100)
        }
    check_s = min(timeit.repeat(tracing.active, number=100_000, repeat=5)) / 100_000
    result["tracing_off"] = {
        "opentelemetry_imported": tracing.active(),
        "check_ns": round(check_s * 1e9, 1),
        "share_of_spawn": round(check_s * medians["aiohttp_jobs_limit_100"], 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

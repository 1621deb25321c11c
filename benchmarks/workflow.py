"""Cost of running workflows: aiohttp-jobs vs raw asyncio vs asynciojobs.

Three shapes, each at two sizes to show that time grows with steps + edges:

* fan-out: N independent steps (raw baseline: ``asyncio.gather``);
* chain: N steps, each requiring the one before (raw: await one task after the
  other);
* layers: L layers of 100 steps, each requiring two steps of the layer before
  (raw: one ``gather`` per layer).

Every step body is ``await asyncio.sleep(0)`` (one trip through the loop), and
each timing includes building the graph. Rounds alternate the variants (the
garbage collector is emptied before each timing); the script prints ONE JSON
line with the medians, ``ratio_vs_raw`` (raw time / our time: 1.0 means as fast
as raw asyncio), ``speedup_vs_asynciojobs`` (its time / ours) and the time per
step-or-edge at both sizes (``growth`` near 1.0 means linear). Big graphs keep
many objects alive, so CPython's cyclic collector adds a cost that grows with
the heap; ``growth_without_gc`` repeats our timings with the collector paused,
to show the scheduling itself is linear. ``core_jobs_only`` (fan-out) spawns
the same bare jobs on the scheduler: the floor under any workflow.
``steady_ratio_vs_raw`` (fan-out) times back-to-back repetitions without
emptying the collector in between, so that each side pays for the collections
its own allocations cause; right after ``gc.collect()`` a 10,000-step run of
ours crosses the threshold of one full collection that raw ``gather`` (fewer
objects per task) stays just below.

``target`` states what the workflow engine promises and ``meets_target`` whether
this run kept it: scheduling linear in steps + edges (``growth_without_gc`` at
most 1.25 for every shape), the big fan-out at least half as fast as raw
``asyncio.gather`` (every step is a scheduler job, with its id, events and
history), and, when asynciojobs is installed, at least twice as fast as it at
the big size of every shape.

    python benchmarks/workflow.py [--rounds 5] [--quick]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp_jobs import Job, Scheduler, Sequence, Step, Workflow

try:
    import asynciojobs
except ImportError:  # pragma: no cover - optional baseline
    asynciojobs = None

WIDTH = 100


async def nop() -> None:
    await asyncio.sleep(0)


# -- aiohttp-jobs ---------------------------------------------------------------


async def ours_fanout(n: int) -> None:
    assert await Workflow(*[Step(nop()) for _ in range(n)]).run()


async def ours_chain(n: int) -> None:
    assert await Workflow(Sequence(*[Step(nop()) for _ in range(n)])).run()


async def ours_layers(layers: int) -> None:
    workflow = Workflow()
    previous: list[Step[None]] = []
    for _ in range(layers):
        layer = [
            Step(nop(), requires=(previous[i], previous[(i + 1) % WIDTH]))
            if previous
            else Step(nop())
            for i in range(WIDTH)
        ]
        workflow.add(*layer)
        previous = layer
    assert await workflow.run()


async def core_fanout(n: int) -> None:
    """The floor under any workflow: n bare jobs and their done callbacks."""
    scheduler = Scheduler(limit=None, history_limit=0)
    done = asyncio.get_running_loop().create_future()
    left = n

    def finished(job: Job[None]) -> None:
        nonlocal left
        left -= 1
        if not left:
            done.set_result(None)

    for _ in range(n):
        job = await scheduler.spawn(nop())
        job.add_done_callback(finished)
    await done
    await scheduler.close()


# -- raw asyncio ----------------------------------------------------------------


async def raw_fanout(n: int) -> None:
    await asyncio.gather(*[nop() for _ in range(n)])


async def raw_chain(n: int) -> None:
    for _ in range(n):
        await asyncio.create_task(nop())


async def raw_layers(layers: int) -> None:
    for _ in range(layers):
        await asyncio.gather(*[nop() for _ in range(WIDTH)])


# -- asynciojobs ------------------------------------------------------------------


async def aj_fanout(n: int) -> None:
    assert asynciojobs is not None
    jobs = [asynciojobs.Job(nop()) for _ in range(n)]
    assert await asynciojobs.Scheduler(*jobs).co_run()


async def aj_chain(n: int) -> None:
    assert asynciojobs is not None
    jobs = [asynciojobs.Job(nop()) for _ in range(n)]
    assert await asynciojobs.Scheduler(asynciojobs.Sequence(*jobs)).co_run()


async def aj_layers(layers: int) -> None:
    assert asynciojobs is not None
    jobs: list[object] = []
    previous: list[object] = []
    for _ in range(layers):
        layer = [
            asynciojobs.Job(
                nop(),
                required=(previous[i], previous[(i + 1) % WIDTH]) if previous else None,
            )
            for i in range(WIDTH)
        ]
        jobs.extend(layer)
        previous = layer
    assert await asynciojobs.Scheduler(*jobs).co_run()


Runner = Callable[[int], Awaitable[None]]

SHAPES: dict[str, tuple[Runner, Runner, Runner]] = {
    "fanout": (ours_fanout, raw_fanout, aj_fanout),
    "chain": (ours_chain, raw_chain, aj_chain),
    "layers": (ours_layers, raw_layers, aj_layers),
}


def units(shape: str, size: int) -> int:
    """Steps + requirement edges of a shape at *size*."""
    if shape == "fanout":
        return size
    if shape == "chain":
        return size + size - 1
    return size * WIDTH + (size - 1) * WIDTH * 2


async def timed(runner: Runner, size: int, *, collect: bool = True) -> float:
    gc.collect()
    if not collect:
        gc.disable()
    try:
        start = time.perf_counter()
        await runner(size)
        return time.perf_counter() - start
    finally:
        gc.enable()


async def measure(rounds: int, sizes: dict[str, tuple[int, int]]) -> dict[str, object]:
    results: dict[str, object] = {}
    for shape, (ours, raw, aj) in SHAPES.items():
        variants = {"ours": ours, "raw": raw}
        if shape == "fanout":
            variants["core_jobs_only"] = core_fanout
        if asynciojobs is not None:
            variants["asynciojobs"] = aj
        names = list(variants)
        await ours(100)  # warm up
        # Every round times both sizes and every variant (in rotated order), so
        # a machine that speeds up or slows down skews no size or variant.
        times = {(size, name): [] for size in sizes[shape] for name in names}
        no_gc: dict[int, list[float]] = {size: [] for size in sizes[shape]}
        for index in range(rounds):
            rotated = names[index % len(names) :] + names[: index % len(names)]
            for size in sizes[shape]:
                for name in rotated:
                    times[size, name].append(await timed(variants[name], size))
                no_gc[size].append(await timed(ours, size, collect=False))
        per_size = []
        for size in sizes[shape]:
            medians = {name: statistics.median(times[size, name]) for name in names}
            entry: dict[str, object] = {
                "size": size,
                "steps_plus_edges": units(shape, size),
                "median_s": {k: round(v, 5) for k, v in medians.items()},
                "ratio_vs_raw": round(medians["raw"] / medians["ours"], 3),
                "us_per_unit": round(1e6 * medians["ours"] / units(shape, size), 3),
                "us_per_unit_without_gc": round(
                    1e6 * statistics.median(no_gc[size]) / units(shape, size), 3
                ),
            }
            if shape == "fanout":
                entry["steady_ratio_vs_raw"] = await steady_ratio(ours, raw, size)
            if "core_jobs_only" in medians:
                entry["core_jobs_only_ratio_vs_raw"] = round(
                    medians["raw"] / medians["core_jobs_only"], 3
                )
            if "asynciojobs" in medians:
                entry["speedup_vs_asynciojobs"] = round(
                    medians["asynciojobs"] / medians["ours"], 2
                )
                entry["asynciojobs_ratio_vs_raw"] = round(
                    medians["raw"] / medians["asynciojobs"], 3
                )
            per_size.append(entry)
        small, big = per_size
        results[shape] = {
            "sizes": per_size,
            "growth": _growth(small, big, "us_per_unit"),
            "growth_without_gc": _growth(small, big, "us_per_unit_without_gc"),
        }
    return results


async def steady_ratio(ours: Runner, raw: Runner, size: int, reps: int = 6) -> float:
    """Raw time / our time with the collector left alone between back-to-back
    repetitions: each side pays the garbage collection its own allocations
    cause, as in a long-running service, instead of whether one run happens to
    cross a collection threshold right after ``gc.collect()``."""
    totals = {}
    for name, runner in (("raw", raw), ("ours", ours), ("raw2", raw), ("ours2", ours)):
        await runner(size)  # warm up this variant's allocation pattern
        start = time.perf_counter()
        for _ in range(reps):
            await runner(size)
        totals[name] = time.perf_counter() - start
    return round(
        (totals["raw"] + totals["raw2"]) / (totals["ours"] + totals["ours2"]), 3
    )


def _growth(small: dict[str, object], big: dict[str, object], key: str) -> float:
    """Cost per step-or-edge at the big size over the small one (1.0: linear)."""
    return round(float(big[key]) / float(small[key]), 3)  # type: ignore[arg-type]


TARGET = {
    "growth_without_gc": "<= 1.25",
    "fanout_big_ratio_vs_raw": ">= 0.5",
    "speedup_vs_asynciojobs_big": ">= 2.0",
}


def meets_target(results: dict[str, object]) -> bool:
    ok = True
    for shape, entry in results.items():
        assert isinstance(entry, dict)
        ok &= entry["growth_without_gc"] <= 1.25
        big = entry["sizes"][-1]
        if shape == "fanout":
            ok &= big["ratio_vs_raw"] >= 0.5
        if "speedup_vs_asynciojobs" in big:
            ok &= big["speedup_vs_asynciojobs"] >= 2.0
    return bool(ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (for a smoke test)"
    )
    args = parser.parse_args()
    if args.quick:
        sizes = {"fanout": (200, 400), "chain": (100, 200), "layers": (2, 4)}
    else:
        sizes = {"fanout": (5000, 10000), "chain": (1000, 2000), "layers": (50, 100)}
    started = time.perf_counter()
    results = asyncio.run(measure(args.rounds, sizes))
    report = {
        "benchmark": "workflow",
        "python": sys.version.split()[0],
        "asynciojobs": getattr(asynciojobs, "__version__", None)
        if asynciojobs is not None
        else None,
        "rounds": args.rounds,
        "step_body": "await asyncio.sleep(0)",
        "shapes": results,
        "target": TARGET,
        "meets_target": meets_target(results),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

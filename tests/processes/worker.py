"""A small application process for the multi-process tests: run as a script.

    python tests/processes/worker.py --store URL --log FILE --instance NAME

It imports everything, opens nothing yet, and prints ``loaded``. The test then
writes ONE JSON line to its stdin (the same for every process of a test, so all
share one fixed start)::

    {"start": T0, "end": T1, "exit_at": T2, "lease": 1.5, "interval": 0.1,
     "once": 200, "once_at": T, "slow_at": T, "slow_seconds": 3.0, "seed": true}

and the process declares the tasks, starts the runtime on the shared store,
prints ``ready`` and runs until ``exit_at`` (or SIGTERM), then stops gracefully
and prints ``stopped``. Every run appends two JSON lines to the log file (one at
its start, one when its body finished), written and flushed line by line so a
``kill -9`` loses nothing that was written:

    {"ev": "start" | "done", "task", "key", "run_id", "fire_at", "attempt",
     "instance", "pid", "fence", "t"}

Tasks, the same in every process:

* ``tick``: every ``interval`` seconds from ``start`` to ``end`` (``overlap=QUEUE``
  and ``misfire=RUN_ALL``: every occurrence of the window is owed);
* ``once``: a dynamic task; the process given ``"seed": true`` schedules
  ``once`` instances ``o0``, ``o1``, ... all due at ``once_at``;
* ``slow``: a dynamic once-off instance ``s0`` (seeded likewise, due at
  ``slow_at``) whose body sleeps ``slow_seconds`` with heartbeats, for the tests
  that kill or stop the process running it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from typing import IO, Any

from aiohttp_jobs import Context, Misfire, Overlap, Scheduler, Tasks
from aiohttp_jobs.stores import TaskStore, from_url


def open_store(url: str) -> TaskStore:
    """The store a URL names, in the namespace of these tests."""
    return from_url(url, namespace="processes")


class RunLog:
    """Appends one JSON line per event, flushed at once (line buffered)."""

    def __init__(self, path: str, instance: str) -> None:
        self._file: IO[str] = open(path, "a", buffering=1, encoding="utf-8")
        self.instance = instance

    def write(self, ev: str, ctx: Context | None = None, **extra: Any) -> None:
        line: dict[str, Any] = {
            "ev": ev,
            "instance": self.instance,
            "pid": os.getpid(),
            "t": time.time(),
        }
        if ctx is not None:
            line.update(
                task=ctx.task.name,
                key=ctx.name,
                run_id=ctx.run_id,
                fire_at=ctx.fire_at,
                attempt=ctx.attempt,
                fence=ctx.fence,
            )
        line.update(extra)
        self._file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self._file.close()


def declare(cfg: dict[str, Any], runlog: RunLog, owner: str, store: Any) -> Tasks:
    tasks = Tasks(store=store, owner=owner, batch_size=cfg.get("batch", 100))
    lease = float(cfg.get("lease", 1.5))

    @tasks.task(
        interval=float(cfg.get("interval", 0.1)),
        start_at=float(cfg["start"]),
        end_at=float(cfg["end"]),
        overlap=Overlap.QUEUE,
        queue_limit=10_000,
        misfire=Misfire.RUN_ALL,
        misfire_limit=10_000,
        lease_duration=lease,
        heartbeat=lease / 3,
    )
    async def tick(ctx: Context) -> None:
        runlog.write("start", ctx)
        runlog.write("done", ctx)

    @tasks.dynamic_task(lease_duration=lease, heartbeat=lease / 3)
    async def once(ctx: Context) -> None:
        runlog.write("start", ctx)
        runlog.write("done", ctx)

    @tasks.dynamic_task(lease_duration=lease, heartbeat=lease / 3)
    async def slow(ctx: Context) -> None:
        runlog.write("start", ctx)
        await asyncio.sleep(float(ctx.params["seconds"]))
        runlog.write("done", ctx)

    return tasks


async def seed(runtime: Any, cfg: dict[str, Any]) -> None:
    once_at = float(cfg.get("once_at", cfg["start"]))
    for i in range(int(cfg.get("once", 0))):
        await runtime.schedule_task("once", f"o{i}", execute_at=once_at)
    if cfg.get("slow_at") is not None:
        await runtime.schedule_task(
            "slow",
            "s0",
            execute_at=float(cfg["slow_at"]),
            seconds=float(cfg.get("slow_seconds", 3.0)),
        )


def say(word: str) -> None:
    """One line to the test that started this process (it waits for it)."""
    sys.stdout.write(word + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    # Connected before the plan comes, so that starting the runtime is quick
    # and every process fires from the plan's start (opens are counted: the
    # runtime's own open and close leave it open).
    store = open_store(args.store)
    await store.open()
    say("loaded")
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cfg: dict[str, Any] = json.loads(line)
    runlog = RunLog(args.log, args.instance)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_at(loop.time() + float(cfg["exit_at"]) - time.time(), stop.set)
    tasks = declare(cfg, runlog, args.instance, store)
    async with Scheduler(limit=None) as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler) as runtime:
            runlog.write("ready")
            say("ready")
            if cfg.get("seed"):
                await seed(runtime, cfg)
                runlog.write("seeded")
            await stop.wait()
            runlog.write("stopping")
    await store.close()
    runlog.write("stopped")
    runlog.close()
    say("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--instance", required=True)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(main(parser.parse_args()))

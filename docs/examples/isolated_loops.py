# ruff: noqa: T201 - a script: printing is what it does
"""Isolated event loops: a job that blocks its own loop, never the main one.

Run it: ``python docs/examples/isolated_loops.py``.
tests/docs/test_loops.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp_jobs
from aiohttp_jobs import current_job


def legacy_lookup(key: str) -> str:
    """A synchronous client library: each call blocks for 100 ms."""
    time.sleep(0.1)
    return key.upper()


async def lookup(keys: list[str]) -> list[str]:
    job = current_job()  # the job, as on the main loop
    found = []
    for done, key in enumerate(keys, 1):
        found.append(legacy_lookup(key))  # blocks the "legacy" loop only
        job.set_progress(done, len(keys), key)  # delivered to the main loop
        await asyncio.sleep(0)  # where job.close() would get in
    return found


async def main() -> None:
    async with aiohttp_jobs.Scheduler(loops=["legacy"]) as scheduler:
        job = await scheduler.spawn(lookup(["a", "b", "c"]), loop="legacy")
        # Meanwhile the main loop keeps its pace: it comes back to this
        # 10 ms sleep again and again while the job blocks for 300 ms.
        ticks = 0
        while not job.done:
            await asyncio.sleep(0.01)
            ticks += 1
        print("result:", await job.wait())
        print("progress:", job.progress)
        print("main loop kept ticking:", ticks >= 10)
        print("ran on:", scheduler.loops["legacy"].thread.name)
    # Leaving the block closed the scheduler: its loop is stopped and closed.
    print("loop closed:", scheduler.loops["legacy"].loop.is_closed())


if __name__ == "__main__":
    asyncio.run(main())

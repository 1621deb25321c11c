"""Task runtimes on the SQLite store: two runtimes on two connections to one
file stand for two processes (each learns of the other's changes only through
the file)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

from aiohttp_jobs import Context, Scheduler, Tasks
from aiohttp_jobs.stores.sqlite import SQLiteStore


async def test_runs_fired_by_one_instance_run_once_among_both(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    ran: list[tuple[str, str, int]] = []
    total = 30
    all_ran = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        runtimes = []
        for name in ("i0", "i1"):
            tasks = Tasks(store=SQLiteStore(db, poll_interval=0.05), owner=name)

            @tasks.task(keyword="go")
            async def go(ctx: Context) -> None:
                ran.append((ctx.runtime.instance_id, ctx.run_id, ctx.attempt))
                if len(ran) >= total:
                    all_ran.set()

            scheduler = await stack.enter_async_context(Scheduler(limit=None))
            runtimes.append(
                await stack.enter_async_context(
                    tasks.runtime(app=None, scheduler=scheduler)
                )
            )
        for _ in range(total):
            await runtimes[0].fire("go")
        async with asyncio.timeout(30):
            await all_ran.wait()
        instances = await runtimes[1].instances()
        assert {i.instance_id for i in instances} == {"i0", "i1"}
    counts = Counter(run_id for _, run_id, _ in ran)
    assert len(counts) == total and set(counts.values()) == {1}
    assert {attempt for *_, attempt in ran} == {0}


async def test_a_run_is_cancelled_from_the_other_instance(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    started: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    cancelled = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        runtimes = []
        for name in ("i0", "i1"):
            tasks = Tasks(store=SQLiteStore(db, poll_interval=0.05), owner=name)

            @tasks.task(keyword="block", lease_duration=1)
            async def block(ctx: Context) -> None:
                started.put_nowait((ctx.runtime.instance_id, ctx.run_id))
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            scheduler = await stack.enter_async_context(Scheduler(limit=None))
            runtimes.append(
                await stack.enter_async_context(
                    tasks.runtime(app=None, scheduler=scheduler)
                )
            )
        await runtimes[0].fire("block")
        async with asyncio.timeout(30):
            holder, run_id = await started.get()
            other = runtimes[1] if holder == "i0" else runtimes[0]
            assert await other.cancel_run(run_id) is True
            await cancelled.wait()

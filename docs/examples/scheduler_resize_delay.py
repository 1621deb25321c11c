# ruff: noqa: T201 - this script shows its results on stdout
"""Resizing a live scheduler and delayed spawns, on a FakeClock (no real waiting).

Run it: ``python docs/examples/scheduler_resize_delay.py``.
tests/core/test_docs_examples.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio

from aiohttp_jobs import JobEvent, Scheduler, SchedulerEvent
from aiohttp_jobs.testing import FakeClock


async def work(name: str, gate: asyncio.Event) -> str:
    await gate.wait()
    return name


async def main() -> None:
    clock = FakeClock()
    scheduler = Scheduler(limit=1, clock=clock)

    def on_event(event: JobEvent | SchedulerEvent) -> None:
        if isinstance(event, SchedulerEvent):  # kind is EventKind.RECONFIGURED
            print("reconfigured:", dict(event.changes))

    scheduler.events.add_listener(on_event)
    gate = asyncio.Event()

    # Resizing: one job runs, two wait; raising the limit starts one of them now.
    await scheduler.spawn(work("a", gate), "a")
    await scheduler.spawn(work("b", gate), "b", priority="low")
    await scheduler.spawn(work("c", gate), "c", priority="high")
    scheduler.limit = 2
    running = sorted(job.name for job in scheduler if job.active)
    print("running:", running, "pending:", scheduler.pending_count)

    # Delayed spawns: scheduled on the clock, holding no slot until due.
    report = await scheduler.spawn(work("report", gate), "report", delay=60)
    print("report:", report.state, "scheduled:", scheduler.scheduled_count)
    await clock.advance(60)
    print("report after 60 s:", report.state)

    gate.set()
    await scheduler.wait_and_close()
    print("report result:", report.result())


if __name__ == "__main__":
    asyncio.run(main())

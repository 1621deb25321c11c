# ruff: noqa: T201 - this script shows its results on stdout
"""An asynciojobs scenario as an aiohttp-jobs workflow
(docs/migration/asynciojobs.md).

Run it: ``python docs/examples/migration_asynciojobs.py``.
tests/docs/test_migration.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio

from aiohttp_jobs import Sequence, Step, StepFailedError, Workflow


async def boot(host: str) -> str:
    await asyncio.sleep(0.01)
    return f"{host} up"


async def monitor(ticks: list[int]) -> None:
    while True:  # cancelled when every other step is done
        ticks.append(1)
        await asyncio.sleep(0.002)


async def fail() -> None:
    raise RuntimeError("disk full")


async def main() -> None:
    ticks: list[int] = []
    # Was: a1 = Job(boot("a"), label="boot-a"), ...,
    #      c = Job(boot("c"), label="boot-c", required=(a1, a2))
    boot_a = Step(boot("a"), label="boot-a")
    boot_b = Step(boot("b"), label="boot-b")
    boot_c = Step(boot("c"), label="boot-c", requires=[boot_a, boot_b])
    # Was: Job(monitor(), forever=True, critical=False)
    watcher = Step(monitor(ticks), label="monitor", forever=True, critical=False)
    # Was: Sequence(Job(...), Job(...)) inside Scheduler(..., jobs_window=2,
    #      timeout=5); then scheduler.run() (or await scheduler.co_run())
    tail = Sequence(Step(boot("d"), label="boot-d"), Step(boot("e"), label="boot-e"))
    workflow = Workflow(boot_a, boot_b, boot_c, watcher, tail, window=2, timeout=5)
    print("ok:", await workflow.run())
    print("boot-c:", boot_c.result(), "| monitor ticked:", bool(ticks))
    print(workflow.listing())

    # Was: a critical job raising made run() return False; here it raises
    # StepFailedError (a workflow with critical=False returns False instead).
    broken = Workflow(Step(fail(), label="format-disk"), label="broken")
    try:
        await broken.run()
    except StepFailedError as exc:
        print("failed:", exc)
    lenient = Workflow(Step(fail(), label="format-disk"), critical=False)
    print("lenient ok:", await lenient.run())


if __name__ == "__main__":
    asyncio.run(main())

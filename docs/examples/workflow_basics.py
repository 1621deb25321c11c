# ruff: noqa: T201 - this script shows its results on stdout
"""Workflows without a web application: requirements, Sequence, critical and
forever steps, window, timeout and nesting.

Run it: ``python docs/examples/workflow_basics.py``.
tests/test_workflow_docs.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio
import functools

from aiohttp_jobs import Sequence, Step, StepFailedError, Workflow


async def fetch(source: str) -> list[str]:
    await asyncio.sleep(0.01)  # stands for an HTTP call
    return [f"{source}-1", f"{source}-2"]


async def merge(*steps: Step[list[str]]) -> int:
    rows = [row for step in steps for row in step.result()]
    return len(rows)


async def deploy(host: str) -> str:
    await asyncio.sleep(0.01)
    if host == "db3":
        raise ConnectionError(f"{host} refused the connection")
    return f"{host} ok"


async def heartbeat(beats: list[int]) -> None:
    while True:  # a forever step: cancelled once every other step is done
        beats.append(len(beats))
        await asyncio.sleep(0.005)


def fan_in() -> Workflow:
    """Three fetches in parallel, then a merge that reads their results."""
    sources = [Step(fetch(name), label=f"fetch-{name}") for name in ("a", "b", "c")]
    merged = Step(
        functools.partial(merge, *sources),  # called when the fetches are done
        label="merge",
        requires=sources,
    )
    return Workflow(*sources, merged, label="report")


def wave(name: str, hosts: list[str]) -> Workflow:
    """Deploy hosts two at a time; a wave is itself a step of the rollout."""
    steps = [Step(deploy(host), label=host) for host in hosts]
    return Workflow(*steps, label=name, window=2, timeout=5.0)


async def main() -> None:
    # 1. Fan-in: run() is True when every step finished and none critical failed.
    report = fan_in()
    assert await report.run()
    print(report.listing())

    # 2. Sequence and a forever step.
    beats: list[int] = []
    chained = Workflow(
        Sequence(Step(fetch("x"), label="first"), Step(fetch("y"), label="second")),
        Step(heartbeat(beats), label="heartbeat", forever=True, critical=False),
        label="chained",
    )
    assert await chained.run()
    print(f"chained: heartbeat beat {'several' if beats else 'no'} times, then stopped")

    # 3. Nesting: waves in sequence; a critical failure stops the rollout.
    rollout = Workflow(
        Sequence(wave("wave-1", ["web1", "web2", "web3"]), wave("wave-2", ["db3"])),
        Step(fetch("notes"), label="release-notes", critical=False),
        label="rollout",
    )
    try:
        await rollout.run()
    except StepFailedError as exc:
        print(f"rollout failed: {exc}")
    print(rollout.debrief().split("\n--- ")[0])  # the debrief, without tracebacks

    # 4. A non-critical workflow returns False instead of raising.
    patient = Workflow(
        Step(asyncio.sleep(10), label="slow"), timeout=0.05, critical=False
    )
    print("timed out:", await patient.run() is False and patient.timed_out)


if __name__ == "__main__":
    asyncio.run(main())

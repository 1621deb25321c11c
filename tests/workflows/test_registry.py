"""The registry of workflows: each scheduler lists the workflows it ran, weakly."""

from __future__ import annotations

import asyncio
import gc

import pytest

from aiohttp_jobs import ConfigTypeError, Scheduler, Step, Workflow


async def nop() -> None:
    await asyncio.sleep(0)


def small(label: str) -> Workflow:
    return Workflow(Step(nop, label=f"{label}-step"), label=label)


async def test_each_scheduler_lists_only_the_workflows_it_ran() -> None:
    async with Scheduler() as app_a, Scheduler() as app_b:
        first, second, other = small("first"), small("second"), small("other")
        assert await first.run(scheduler=app_a)
        assert await other.run(scheduler=app_b)
        assert await second.run(scheduler=app_a)
        assert Workflow.of_scheduler(app_a) == [first, second]
        assert Workflow.of_scheduler(app_b) == [other]
        assert Workflow.find(other.id, app_b) is other
        assert Workflow.find(other.id, app_a) is None  # another app's workflow
        assert Workflow.find(other.id) is other  # any scheduler's


async def test_a_new_scheduler_lists_nothing() -> None:
    async with Scheduler() as scheduler:
        assert Workflow.of_scheduler(scheduler) == []
        assert Workflow.find("nope", scheduler) is None


async def test_nested_workflows_are_found_but_not_listed() -> None:
    async with Scheduler() as scheduler:
        inner = small("inner")
        outer = Workflow(inner, label="outer")
        assert await outer.run(scheduler=scheduler)
        assert Workflow.of_scheduler(scheduler) == [outer]
        assert Workflow.find(inner.id, scheduler) is inner
        (step,) = inner.steps
        assert isinstance(step, Step) and step.job is not None
        assert Workflow.of_job(step.job) is outer


async def test_a_workflow_nobody_references_leaves_the_registry() -> None:
    async with Scheduler() as scheduler:
        kept, dropped = small("kept"), small("dropped")
        for workflow in (kept, dropped):
            assert await workflow.run(scheduler=scheduler)
        dropped_id = dropped.id
        del dropped, workflow
        gc.collect()
        assert Workflow.of_scheduler(scheduler) == [kept]
        assert Workflow.find(dropped_id) is None


async def test_a_run_without_a_scheduler_is_found_but_listed_by_no_app() -> None:
    async with Scheduler() as scheduler:
        alone = small("alone")
        assert await alone.run()
        assert Workflow.of_scheduler(scheduler) == []
        assert Workflow.find(alone.id) is alone


@pytest.mark.parametrize("scheduler", [None, "app", object()])
def test_of_scheduler_needs_a_scheduler(scheduler: object) -> None:
    with pytest.raises(ConfigTypeError, match=r"scheduler must be .*Scheduler"):
        Workflow.of_scheduler(scheduler)  # type: ignore[arg-type]

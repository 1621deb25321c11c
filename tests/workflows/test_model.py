"""Workflow building and validation: mistakes fail early, with clear errors."""

from __future__ import annotations

import asyncio
import functools

import pytest

from aiohttp_jobs import (
    ConfigError,
    JobNotFinishedError,
    NotAwaitableError,
    Priority,
    Sequence,
    Step,
    StepState,
    Workflow,
    WorkflowCycleError,
    WorkflowDefinitionError,
    WorkflowStateError,
)


async def work(value: int = 0) -> int:
    await asyncio.sleep(0)
    return value


def test_step_rejects_a_plain_function() -> None:
    def blocking() -> int:
        return 1

    with pytest.raises(NotAwaitableError, match="async def"):
        Step(blocking)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [42, "text", None, lambda: None])
def test_step_rejects_non_awaitable_bodies(body: object) -> None:
    with pytest.raises(NotAwaitableError, match="coroutine or an async function"):
        Step(body)  # type: ignore[arg-type]


def test_step_label_defaults_to_the_function_name() -> None:
    assert Step(work).label == "work"
    assert Step(functools.partial(work, 3)).label == "work"
    coro = work()
    assert Step(coro).label == "work"
    coro.close()
    assert Step(work, label="fetch").label == "fetch"


def test_step_priority_is_parsed() -> None:
    assert Step(work, priority="high").priority is Priority.HIGH
    assert Step(work).priority is None


def test_cycle_is_rejected_naming_its_steps() -> None:
    a, b, c = Step(work, label="a"), Step(work, label="b"), Step(work, label="c")
    b.require(a)
    c.require(b)
    a.require(c)
    workflow = Workflow(a, b, c, Step(work, label="free"))
    with pytest.raises(WorkflowCycleError, match="cycle") as info:
        workflow.check_cycles()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    assert " -> ".join(cycle) in str(info.value)


def test_cycle_inside_a_nested_workflow_is_found() -> None:
    a, b = Step(work, label="a"), Step(work, label="b")
    a.require(b)
    b.require(a)
    outer = Workflow(Workflow(a, b, label="inner"))
    with pytest.raises(WorkflowCycleError, match="inner"):
        outer.check_cycles()


def test_step_requiring_itself_is_rejected() -> None:
    step = Step(work, label="x")
    with pytest.raises(WorkflowCycleError, match="itself"):
        step.require(step)


def test_check_cycles_is_true_for_a_dag() -> None:
    a = Step(work)
    workflow = Workflow(a, Step(work, requires=a))
    assert workflow.check_cycles() is True


async def test_requirement_on_a_step_outside_the_workflow_is_rejected() -> None:
    outside = Step(work, label="outside")
    workflow = Workflow(Step(work, label="inside", requires=outside))
    with pytest.raises(WorkflowDefinitionError, match="'outside', which is in no"):
        await workflow.run()


def test_requirement_across_workflows_is_rejected() -> None:
    a = Step(work, label="a")
    Workflow(a, label="first")
    b = Step(work, label="b")
    Workflow(b, label="second")
    with pytest.raises(WorkflowDefinitionError, match="its own workflow"):
        b.require(a)


def test_requirement_added_before_joining_another_workflow_is_rejected() -> None:
    a = Step(work, label="a")
    b = Step(work, label="b", requires=a)
    Workflow(a, label="first")
    second = Workflow(b, label="second")
    with pytest.raises(WorkflowDefinitionError, match="belongs to <Workflow 'first'"):
        second.validate()


def test_one_step_in_two_workflows_is_rejected() -> None:
    step = Step(work, label="shared")
    Workflow(step, label="first")
    with pytest.raises(WorkflowDefinitionError, match="already belongs"):
        Workflow(step, label="second")


def test_adding_a_step_twice_to_one_workflow_is_harmless() -> None:
    step = Step(work)
    workflow = Workflow(step, step)
    workflow.add(step)
    assert len(workflow) == 1 and step in workflow
    assert step.workflow is workflow


def test_workflow_cannot_be_nested_in_itself() -> None:
    outer = Workflow(label="outer")
    inner = Workflow(label="inner")
    outer.add(inner)
    with pytest.raises(WorkflowDefinitionError, match="inside itself"):
        inner.add(outer)
    with pytest.raises(WorkflowDefinitionError, match="inside itself"):
        outer.add(outer)


def test_requiring_a_forever_step_is_rejected() -> None:
    monitor = Step(work, label="monitor", forever=True)
    workflow = Workflow(monitor, Step(work, label="user", requires=monitor))
    with pytest.raises(WorkflowDefinitionError, match="forever step 'monitor'"):
        workflow.validate()


def test_window_that_forever_steps_could_fill_is_rejected() -> None:
    workflow = Workflow(
        Step(work, forever=True), Step(work, forever=True), Step(work), window=2
    )
    with pytest.raises(WorkflowDefinitionError, match="raise the window"):
        workflow.validate()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"window": 0}, "window"),
        ({"window": True}, "window"),
    ],
)
def test_bad_timeout_or_window_is_rejected(
    kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        Workflow(**kwargs)  # type: ignore[arg-type]


def test_workflow_holds_only_steps() -> None:
    coro = work()
    with pytest.raises(TypeError, match="wrap a coroutine with Step"):
        Workflow(coro)  # type: ignore[arg-type]
    coro.close()


async def test_running_a_finished_workflow_again_is_rejected() -> None:
    workflow = Workflow(Step(work))
    assert await workflow.run()
    with pytest.raises(WorkflowStateError, match="has run"):
        await workflow.run()


async def test_finished_workflow_can_no_longer_change() -> None:
    step = Step(work)
    workflow = Workflow(step)
    await workflow.run()
    with pytest.raises(WorkflowStateError):
        workflow.add(Step(work))
    with pytest.raises(WorkflowStateError):
        step.require(Step(work))


async def test_nested_workflow_cannot_run_on_its_own() -> None:
    inner = Workflow(Step(work), label="inner")
    Workflow(inner)
    with pytest.raises(WorkflowStateError, match="run the outermost"):
        await inner.run()


def test_sequence_chains_its_steps() -> None:
    before = Step(work, label="before")
    a, b, c = Step(work, label="a"), Step(work, label="b"), Step(work, label="c")
    sequence = Sequence(a, Sequence(b, c), requires=before)
    assert a.requires == (before,)
    assert b.requires == (a,) and c.requires == (b,)
    assert sequence.first is a and sequence.last is c and len(sequence) == 3
    after = Step(work, label="after", requires=sequence)
    assert after.requires == (c,)
    workflow = Workflow(before, sequence, after)
    assert [s.label for s in workflow.topological()] == [
        "before",
        "a",
        "b",
        "c",
        "after",
    ]


def test_empty_sequence_is_rejected() -> None:
    with pytest.raises(ConfigError, match="at least one step"):
        Sequence()


def test_results_before_the_run_are_not_available() -> None:
    step = Step(work)
    workflow = Workflow(step)
    assert step.state is StepState.IDLE
    with pytest.raises(JobNotFinishedError, match="await the workflow"):
        step.result()
    with pytest.raises(JobNotFinishedError):
        workflow.result()
    assert "idle" in repr(step) and "steps=1" in repr(workflow)

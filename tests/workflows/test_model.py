"""Workflow building and validation: mistakes fail early, with clear errors."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from aiohttp_jobs import (
    ConfigError,
    ConfigTypeError,
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
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout must be > 0, got 0"),
        ({"timeout": -1.0}, "timeout must be > 0, got -1.0"),
        ({"timeout": math.nan}, "timeout must be a finite number, got nan"),
        ({"timeout": math.inf}, "timeout must be a finite number, got inf"),
        ({"timeout": "5"}, "timeout must be a number of seconds"),
        ({"window": 0}, "window must be an integer >= 1, got 0"),
        ({"window": 1.5}, "window must be an integer, got 1.5"),
        ({"window": True}, "window must be an integer, got True"),
        ({"window": "2"}, "window must be an integer, got '2'"),
        ({"label": ""}, "label must be a non-empty string, got ''"),
        ({"label": 7}, "label must be a string, got 7"),
        ({"critical": "no"}, "critical must be True or False, got 'no'"),
        ({"forever": 1}, "forever must be True or False, got 1"),
        ({"priority": "urgent"}, "urgent"),
        ({"scheduler": "app"}, "scheduler must be an aiohttp_jobs.Scheduler"),
    ],
)
def test_bad_workflow_arguments_are_refused_naming_them(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Workflow(**kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": ""}, "label must be a non-empty string, got ''"),
        ({"label": "   "}, "label must be a non-empty string, got '   '"),
        ({"label": b"x"}, "label must be a string, got b'x'"),
        ({"critical": None}, "critical must be True or False, got None"),
        ({"forever": "yes"}, "forever must be True or False, got 'yes'"),
        ({"priority": 99}, "99"),
    ],
)
def test_bad_step_arguments_are_refused_naming_them(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Step(work, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


async def test_run_refuses_something_that_is_not_a_scheduler() -> None:
    step = Step(work)
    workflow = Workflow(step)
    with pytest.raises(ConfigTypeError, match=r"scheduler must be .*, got 'app'"):
        await workflow.run(scheduler="app")  # type: ignore[arg-type]
    assert step.state is StepState.IDLE  # refused before anything started
    assert await workflow.run()


def test_workflow_holds_only_steps() -> None:
    coro = work()
    with pytest.raises(ConfigTypeError, match="wrap a coroutine with Step"):
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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forked_workers_number_steps_under_a_prefix_of_their_own() -> None:
    # Run in a fresh interpreter: forking the test process itself would copy
    # its event loop and threads.
    code = """
import os
from aiohttp_jobs import Step, Workflow

async def work():
    pass

inherited = Step(work)
before = inherited.id
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    ids = (Step(work).id, Workflow().id, inherited.id)
    os.write(write, " ".join(ids).encode())
    os._exit(0)
os.waitpid(pid, 0)
child_step, child_workflow, inherited_in_child = os.read(read, 300).decode().split()
parent_step, parent_workflow = Step(work).id, Workflow().id
print(before.split("-")[0] == parent_step.split("-")[0])
print(child_step.split("-")[0] != parent_step.split("-")[0])
print(len({child_step, child_workflow, parent_step, parent_workflow}))
print(inherited_in_child == before == inherited.id)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True", "4", "True"]


@pytest.mark.parametrize(
    "kwargs", [{"label": ""}, {"critical": "no"}, {"priority": "urgent"}]
)
def test_a_refused_step_closes_its_coroutine(kwargs: dict[str, object]) -> None:
    coro = work()
    with pytest.raises(ConfigError):
        Step(coro, **kwargs)  # type: ignore[arg-type]
    assert coro.cr_frame is None  # closed: no "never awaited" warning later


@pytest.mark.parametrize(
    ("requires", "message"),
    [
        (5, "requires must be a Step, a Workflow, a Sequence or a collection"),
        ("fetch", "requires must be a Step, a Workflow, a Sequence or a collection"),
        ("", "requires must be a Step, a Workflow, a Sequence or a collection"),
        ([None], "requires must hold Steps, Workflows or Sequences, got None"),
    ],
)
def test_bad_requirements_are_refused_naming_them(
    requires: object, message: str
) -> None:
    with pytest.raises(ConfigTypeError) as info:
        Step(work).require(requires)  # type: ignore[arg-type]
    assert message in str(info.value)
    with pytest.raises(ConfigTypeError):
        Step(work, requires=requires)  # type: ignore[arg-type]


def test_sequence_holds_only_steps() -> None:
    with pytest.raises(ConfigTypeError, match=r"a Sequence holds Steps.*got 42"):
        Sequence(Step(work), 42)  # type: ignore[arg-type]


def test_lookups_refuse_what_is_not_an_id_or_a_job() -> None:
    with pytest.raises(ConfigTypeError, match="workflow_id must be a string, got 7"):
        Workflow.find(7)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workflow_id must be a non-empty string"):
        Workflow.find("")
    with pytest.raises(ConfigTypeError, match=r"job must be an aiohttp_jobs\.Job"):
        Workflow.of_job("workflow:abc")  # type: ignore[arg-type]


def test_a_timeout_may_be_a_timedelta() -> None:
    assert Workflow(timeout=timedelta(minutes=2)).timeout == 120.0

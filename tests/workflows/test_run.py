"""Running workflows: requirements, critical and forever steps, window,
timeout, nesting, and the scheduler the steps run on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from typing import Any

import pytest

from aiohttp_jobs import (
    JobState,
    Priority,
    Scheduler,
    SchedulerClosedError,
    Sequence,
    Step,
    StepFailedError,
    StepState,
    Workflow,
    WorkflowTimeoutError,
)
from aiohttp_jobs._core.scheduler import START_BATCH


class Recorder:
    """Step bodies that log their start and end, and count concurrency."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.running = 0
        self.peak = 0

    async def work(self, name: str, ticks: int = 1, value: object = None) -> object:
        self.log.append(f"+{name}")
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            for _ in range(ticks):
                await asyncio.sleep(0)
        finally:
            self.running -= 1
        self.log.append(f"-{name}")
        return name if value is None else value

    async def boom(self, name: str, ticks: int = 1) -> None:
        self.log.append(f"+{name}")
        for _ in range(ticks):
            await asyncio.sleep(0)
        raise ValueError(f"{name} exploded")

    async def loop_forever(self, name: str) -> None:
        self.log.append(f"+{name}")
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            self.log.append(f"!{name}")
            raise

    def step(
        self, name: str, ticks: int = 1, value: object = None, **kwargs: Any
    ) -> Step[object]:
        body = functools.partial(self.work, name, ticks, value)
        return Step(body, label=name, **kwargs)


async def test_independent_steps_run_in_parallel_and_keep_results() -> None:
    rec = Recorder()
    steps = [rec.step(name, value=i) for i, name in enumerate("abc")]
    workflow = Workflow(*steps)
    assert await workflow.run() is True
    assert [s.result() for s in steps] == [0, 1, 2]
    assert [s.exception() for s in steps] == [None, None, None]
    assert rec.peak == 3
    assert workflow.state is StepState.SUCCEEDED and workflow.result() is True
    assert workflow.exception() is None


async def test_a_step_starts_only_after_its_requirements() -> None:
    rec = Recorder()
    a = rec.step("a", ticks=3)
    b = rec.step("b", ticks=1)
    c = rec.step("c", requires=(a, b))
    d = rec.step("d", requires=c)
    assert await Workflow(d, c, b, a).run()
    log = rec.log
    assert log.index("+c") > max(log.index("-a"), log.index("-b"))
    assert log.index("+d") > log.index("-c")
    assert all(s.started_at is not None and s.finished_at is not None for s in (a, d))


async def test_step_accepts_a_coroutine_object() -> None:
    rec = Recorder()
    step = Step(rec.work("x", value=7))
    assert await Workflow(step).run()
    assert step.result() == 7


async def test_sequence_runs_one_after_the_other() -> None:
    rec = Recorder()
    assert await Workflow(Sequence(*(rec.step(n, ticks=2) for n in "abc"))).run()
    assert rec.log == ["+a", "-a", "+b", "-b", "+c", "-c"]
    assert rec.peak == 1


async def test_critical_failure_mid_graph_aborts_the_run() -> None:
    rec = Recorder()
    start = rec.step("start")
    boom = Step(functools.partial(rec.boom, "boom"), label="boom", requires=start)
    after = Step(rec.work("after"), label="after", requires=boom)  # never starts
    slow = rec.step("slow", ticks=1000)
    workflow = Workflow(start, boom, after, slow, label="deploy")
    with pytest.raises(StepFailedError, match="critical step 'boom' failed") as info:
        await workflow.run()
    error = info.value
    assert error.step_label == "boom"
    assert isinstance(error.__cause__, ValueError)
    assert "deploy" in str(error) and "boom exploded" in str(error)
    assert start.state is StepState.SUCCEEDED
    assert boom.state is StepState.FAILED
    assert isinstance(boom.exception(), ValueError)
    assert after.state is StepState.IDLE and "+after" not in rec.log
    assert slow.state is StepState.CANCELLED
    with pytest.raises(asyncio.CancelledError):
        slow.result()
    assert workflow.failed_step is boom and workflow.exception() is error
    assert workflow.state is StepState.FAILED
    gc.collect()  # the unstarted coroutine of 'after' was closed: no warning


async def test_non_critical_workflow_returns_false_instead_of_raising() -> None:
    rec = Recorder()
    boom = Step(functools.partial(rec.boom, "boom"), label="boom")
    workflow = Workflow(boom, rec.step("other"), critical=False)
    assert await workflow.run() is False
    assert isinstance(workflow.exception(), StepFailedError)
    assert workflow.result() is False


async def test_non_critical_step_failure_does_not_stop_its_dependents() -> None:
    rec = Recorder()
    begin = rec.step("begin")
    boom = Step(
        functools.partial(rec.boom, "boom"),
        label="boom",
        critical=False,
        requires=begin,
    )
    end = rec.step("end", requires=boom)
    workflow = Workflow(Sequence(begin, boom, end))
    assert await workflow.run() is True
    assert end.result() == "end"
    assert isinstance(boom.exception(), ValueError)
    with pytest.raises(ValueError, match="exploded"):
        boom.result()
    assert "non-critical failures: 'boom'" in workflow.why()


async def test_forever_step_is_cancelled_once_the_others_finish() -> None:
    rec = Recorder()
    monitor = Step(
        functools.partial(rec.loop_forever, "monitor"), label="monitor", forever=True
    )
    steps = [rec.step(n, ticks=3) for n in "ab"]
    workflow = Workflow(monitor, *steps)
    assert await workflow.run() is True
    assert monitor.state is StepState.CANCELLED
    assert monitor.exception() is None
    assert rec.log[-1] == "!monitor"
    assert all(s.state is StepState.SUCCEEDED for s in steps)


async def test_critical_forever_step_that_fails_aborts_the_run() -> None:
    rec = Recorder()
    monitor = Step(functools.partial(rec.boom, "monitor"), forever=True)
    workflow = Workflow(monitor, rec.step("long", ticks=1000), critical=False)
    assert await workflow.run() is False
    assert workflow.failed_step is monitor


async def test_window_caps_the_steps_running_at_once() -> None:
    rec = Recorder()
    workflow = Workflow(*(rec.step(str(i), ticks=3) for i in range(10)), window=3)
    assert await workflow.run()
    assert rec.peak == 3
    assert len([e for e in rec.log if e.startswith("+")]) == 10


async def test_window_holds_even_when_the_scheduler_has_room() -> None:
    rec = Recorder()
    async with Scheduler(limit=None) as scheduler:
        workflow = Workflow(*(rec.step(str(i), ticks=2) for i in range(8)), window=2)
        assert await workflow.run(scheduler=scheduler)
    assert rec.peak == 2


async def test_scheduler_limit_below_the_window_queues_steps() -> None:
    rec = Recorder()
    async with Scheduler(limit=2) as scheduler:
        steps = [rec.step(str(i), ticks=2) for i in range(6)]
        workflow = Workflow(*steps)
        task = asyncio.create_task(workflow.run(scheduler=scheduler))
        for _ in range(3):
            await asyncio.sleep(0)
        states = [s.state for s in steps]
        assert states.count(StepState.RUNNING) == 2
        assert states.count(StepState.READY) == 4  # spawned, pending in the scheduler
        assert await task
    assert rec.peak == 2


async def test_timeout_raises_for_a_critical_workflow() -> None:
    rec = Recorder()
    slow = rec.step("slow", ticks=10**9)
    quick = rec.step("quick")
    workflow = Workflow(slow, quick, timeout=0.01, label="slowpoke")
    with pytest.raises(WorkflowTimeoutError, match=r"within 0\.01 s.*'slow'"):
        await workflow.run()
    assert isinstance(workflow.exception(), TimeoutError)
    assert workflow.timed_out and slow.state is StepState.CANCELLED
    assert quick.state is StepState.SUCCEEDED


async def test_timeout_returns_false_for_a_non_critical_workflow() -> None:
    rec = Recorder()
    monitor = Step(functools.partial(rec.loop_forever, "m"), forever=True)
    never = rec.step("never", ticks=10**9)
    workflow = Workflow(monitor, never, timeout=0.01, critical=False)
    assert await workflow.run() is False
    assert workflow.timed_out and "did not finish within" in workflow.why()
    assert monitor.state is StepState.CANCELLED


async def test_nested_workflow_runs_as_one_step() -> None:
    rec = Recorder()
    first = rec.step("first")
    inner = Workflow(
        Sequence(rec.step("i1"), rec.step("i2")),
        label="inner",
        requires=first,
        window=1,
    )
    last = rec.step("last", requires=inner)
    outer = Workflow(first, inner, last)
    assert await outer.run()
    assert rec.log.index("+i1") > rec.log.index("-first")
    assert rec.log.index("+last") > rec.log.index("-i2")
    assert inner.state is StepState.SUCCEEDED and inner.result() is True


async def test_nested_critical_failure_bubbles_up() -> None:
    rec = Recorder()
    inner = Workflow(
        Step(functools.partial(rec.boom, "host3"), label="host3"), label="wave"
    )
    sibling = rec.step("sibling", ticks=1000)
    after = rec.step("after", requires=inner)
    outer = Workflow(inner, sibling, after, label="deploy")
    with pytest.raises(StepFailedError, match="critical step 'wave' failed") as info:
        await outer.run()
    assert "host3" in str(info.value)
    cause = info.value.__cause__
    assert isinstance(cause, StepFailedError) and cause.step_label == "host3"
    assert isinstance(cause.__cause__, ValueError)
    assert sibling.state is StepState.CANCELLED and after.state is StepState.IDLE


async def test_nested_failure_leaves_no_unretrieved_task_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()
    inner = Workflow(Step(functools.partial(rec.boom, "x"), label="x"), label="inner")
    outer = Workflow(inner, label="outer")
    with pytest.raises(StepFailedError, match=r"'inner' failed \(workflow 'inner'"):
        await outer.run()
    del inner, outer
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_nested_timeout_applies_to_its_steps_only() -> None:
    rec = Recorder()
    inner = Workflow(rec.step("stuck", ticks=10**9), timeout=0.01, critical=False)
    after = rec.step("after", requires=inner)
    outer = Workflow(inner, after)
    assert await outer.run() is True
    assert inner.result() is False and inner.timed_out
    assert after.state is StepState.SUCCEEDED


async def test_nested_forever_step_ends_with_its_workflow() -> None:
    rec = Recorder()
    monitor = Step(functools.partial(rec.loop_forever, "m"), forever=True)
    inner = Workflow(monitor, rec.step("short"))
    last = rec.step("last", requires=inner, ticks=3)
    assert await Workflow(inner, last).run()
    assert rec.log.index("!m") < rec.log.index("+last")


async def test_steps_run_as_jobs_of_the_given_scheduler() -> None:
    rec = Recorder()
    async with Scheduler() as scheduler:
        a = rec.step("a", priority="high")
        inner = Workflow(rec.step("b"), label="inner", priority=Priority.LOW)
        workflow = Workflow(a, inner, label="wf")
        assert await workflow.run(scheduler=scheduler)
        job = a.job
        assert job is not None and job.state is JobState.SUCCEEDED
        assert job.name == "a" and job.priority is Priority.HIGH
        assert job.tags == (f"workflow:{workflow.id}",)
        (b,) = inner.steps
        assert isinstance(b, Step) and b.job is not None
        assert b.job.priority is Priority.LOW
        assert b.job.tags == (f"workflow:{workflow.id}", f"workflow:{inner.id}")
        assert a.started_at == job.started_at and a.finished_at == job.finished_at
        assert workflow.describe()["steps"][0]["job_id"] == job.id  # type: ignore[index]
        assert scheduler.get_job(job.id) is job  # in the scheduler's history
        assert Workflow.find(workflow.id) is workflow
        assert Workflow.of_job(job) is workflow and Workflow.of_job(b.job) is workflow
        plain = await scheduler.spawn(asyncio.sleep(0))
        assert Workflow.of_job(plain) is None


async def test_constructor_scheduler_is_used() -> None:
    rec = Recorder()
    async with Scheduler() as scheduler:
        step = rec.step("a")
        assert await Workflow(step, scheduler=scheduler).run()
        assert step.job is not None and step.job in scheduler.history.query()


async def test_handled_step_failures_skip_the_exception_handler() -> None:
    seen: list[dict[str, Any]] = []
    rec = Recorder()
    async with Scheduler(exception_handler=lambda s, ctx: seen.append(ctx)) as sched:
        boom = Step(functools.partial(rec.boom, "boom"), critical=False)
        assert await Workflow(boom).run(scheduler=sched)
    assert seen == []


async def test_cancelling_the_run_cancels_the_running_steps() -> None:
    rec = Recorder()
    long = Step(functools.partial(rec.loop_forever, "long"), label="long")
    later = rec.step("later", requires=long)
    workflow = Workflow(long, later)
    task = asyncio.create_task(workflow.run())
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "!long" in rec.log
    assert long.state is StepState.CANCELLED and later.state is StepState.IDLE
    assert workflow.state is StepState.CANCELLED


async def test_closed_scheduler_fails_the_step_clearly() -> None:
    scheduler = Scheduler()
    await scheduler.close()
    rec = Recorder()
    step = rec.step("a")
    workflow = Workflow(step, critical=False)
    assert await workflow.run(scheduler=scheduler) is False
    assert step.state is StepState.FAILED
    assert "closed" in str(step.exception())


async def test_coroutine_function_returning_nothing_awaitable_fails_the_step() -> None:
    class Tricky:
        async def __call__(self) -> int:
            return 1

    async def ok() -> int:
        return 2

    step = Step(Tricky(), label="tricky")
    assert await Workflow(step, Step(ok)).run()
    assert step.result() == 1


async def test_empty_workflow_succeeds() -> None:
    workflow = Workflow()
    assert await workflow.run() is True
    assert "every step finished" in workflow.why()


async def test_scheduler_with_one_slot_still_runs_nested_graphs() -> None:
    rec = Recorder()
    async with Scheduler(limit=1) as scheduler:
        inner = Workflow(*(rec.step(f"i{i}") for i in range(3)), label="inner")
        deeper = Workflow(Workflow(rec.step("deep"), label="deeper"), requires=inner)
        workflow = Workflow(inner, deeper, *(rec.step(f"o{i}") for i in range(3)))
        assert await asyncio.wait_for(workflow.run(scheduler=scheduler), 5)
    assert rec.peak == 1


async def test_body_that_raises_when_called_fails_only_its_step() -> None:
    async def needs_an_argument(x: int) -> int:
        return x

    step = Step(needs_an_argument, critical=False)  # type: ignore[arg-type]
    after = Step(functools.partial(needs_an_argument, 1), requires=step)
    assert await Workflow(step, after).run()
    assert isinstance(step.exception(), TypeError)
    assert after.result() == 1


async def test_step_ignoring_cancellation_does_not_hang_the_abort() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():  # refuses to stop until released
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    async def boom() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    async with Scheduler(close_timeout=0.01) as scheduler:
        slow = Step(stubborn, label="stubborn")
        workflow = Workflow(slow, Step(boom, label="boom"), critical=False)
        assert await workflow.run(scheduler=scheduler) is False
        assert workflow.failed_step is not None
        assert workflow.failed_step.label == "boom"
        assert slow.state is StepState.RUNNING  # still running: it ignored us
        release.set()
        assert slow.job is not None
        await slow.job.wait()
        assert slow.state is StepState.SUCCEEDED


async def test_nested_forever_workflow_is_cancelled_with_the_rest() -> None:
    rec = Recorder()
    monitor = Step(functools.partial(rec.loop_forever, "m"), label="m")
    watcher = Workflow(monitor, label="watcher", forever=True, critical=False)
    work = rec.step("work", ticks=3)
    outer = Workflow(watcher, work)
    assert await outer.run()
    assert watcher.state is StepState.CANCELLED
    assert monitor.state is StepState.CANCELLED and "!m" in rec.log


async def test_cancelling_the_run_while_spawn_waits_for_a_pending_place() -> None:
    rec = Recorder()
    async with Scheduler(limit=1, pending_limit=1) as scheduler:
        steps = [
            Step(functools.partial(rec.loop_forever, str(i)), label=str(i))
            for i in range(4)
        ]
        task = asyncio.create_task(Workflow(*steps).run(scheduler=scheduler))
        for _ in range(5):
            await asyncio.sleep(0)
        assert [s.state for s in steps[:2]] == [StepState.RUNNING, StepState.READY]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(s.state.final or s.state is StepState.READY for s in steps)
        assert steps[0].state is StepState.CANCELLED
        assert steps[2].state is StepState.CANCELLED  # its spawn() was waiting
        assert scheduler.active_count == scheduler.pending_count == 0


async def test_a_full_pending_list_makes_the_driver_wait_then_finish() -> None:
    rec = Recorder()
    async with Scheduler(limit=1, pending_limit=1) as scheduler:
        steps = [rec.step(str(i), ticks=2) for i in range(5)]
        assert await Workflow(*steps).run(scheduler=scheduler)
    assert [s.result() for s in steps] == ["0", "1", "2", "3", "4"]
    assert rec.peak == 1


async def test_a_huge_fan_out_starts_in_batches_per_loop_turn() -> None:
    active_when_first_ran: list[int] = []
    async with Scheduler(limit=None) as scheduler:

        async def body(index: int) -> int:
            if index == 0:
                active_when_first_ran.append(scheduler.active_count)
            await asyncio.sleep(0)
            return index

        steps = [Step(body(i)) for i in range(2500)]
        assert await Workflow(*steps).run(scheduler=scheduler)
    # The first body ran after the first batch was started, not all 2,500.
    assert active_when_first_ran == [START_BATCH] and START_BATCH < 2500
    assert [s.result() for s in steps] == list(range(2500))


class CountingScheduler(Scheduler):
    """Counts the calls of the public spawning methods."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []

    def spawn_nowait(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("spawn_nowait")
        return super().spawn_nowait(*args, **kwargs)

    async def spawn(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("spawn")
        return await super().spawn(*args, **kwargs)


async def test_steps_start_through_the_public_spawn_api() -> None:
    rec = Recorder()
    async with CountingScheduler() as scheduler:
        steps = [rec.step(str(i)) for i in range(5)]
        assert await Workflow(*steps).run(scheduler=scheduler)
    assert scheduler.calls == ["spawn_nowait"] * 5


async def test_a_full_pending_list_is_waited_for_with_spawn() -> None:
    rec = Recorder()
    async with CountingScheduler(limit=1, pending_limit=1) as scheduler:
        steps = [rec.step(str(i), ticks=2) for i in range(4)]
        assert await Workflow(*steps).run(scheduler=scheduler)
    # One runs, one waits in the pending list, the rest wait for a place there.
    assert scheduler.calls[:2] == ["spawn_nowait", "spawn_nowait"]
    assert scheduler.calls[2:] == ["spawn", "spawn"]
    assert [s.result() for s in steps] == ["0", "1", "2", "3"]


class WhereScheduler(Scheduler):
    """Records, for each spawn_nowait(), whether a task or a callback made it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.from_task: list[bool] = []

    def spawn_nowait(self, *args: Any, **kwargs: Any) -> Any:
        self.from_task.append(asyncio.current_task() is not None)
        return super().spawn_nowait(*args, **kwargs)


async def test_a_released_step_starts_from_the_done_callback_of_its_requirement() -> (
    None
):
    rec = Recorder()
    async with WhereScheduler() as scheduler:
        chain = Sequence(*(rec.step(name) for name in "abc"))
        assert await Workflow(chain).run(scheduler=scheduler)
    # The first step by the driver; the next ones without a round trip through it.
    assert scheduler.from_task == [True, False, False]
    assert rec.log == ["+a", "-a", "+b", "-b", "+c", "-c"]


async def test_released_steps_wait_behind_the_window_and_in_order() -> None:
    rec = Recorder()
    root = rec.step("root")
    later = [rec.step(str(i), ticks=2, requires=root) for i in range(5)]
    assert await Workflow(root, *later, window=2).run()
    assert rec.peak <= 2
    assert [e for e in rec.log if e.startswith("+")] == ["+root"] + [
        f"+{i}" for i in range(5)
    ]


async def test_a_step_refused_from_a_done_callback_fails_the_run_cleanly() -> None:
    rec = Recorder()
    async with Scheduler() as scheduler:
        first = Step(functools.partial(drain_then_work, scheduler), label="first")
        second = rec.step("second", requires=first)
        with pytest.raises(StepFailedError, match="'second' failed") as info:
            await Workflow(first, second).run(scheduler=scheduler)
        assert isinstance(info.value.__cause__, SchedulerClosedError)
        assert first.state is StepState.SUCCEEDED
        assert second.state is StepState.FAILED and rec.log == []


async def drain_then_work(scheduler: Scheduler) -> str:
    scheduler.drain()  # from now on, only the running job may spawn
    await asyncio.sleep(0)
    return "drained"


async def test_a_long_chain_of_refused_steps_does_not_recurse() -> None:
    async with Scheduler() as scheduler:
        first = Step(functools.partial(drain_then_work, scheduler), label="first")
        rest = [
            Step(functools.partial(asyncio.sleep, 0), critical=False)
            for _ in range(3000)
        ]
        workflow = Workflow(Sequence(first, *rest), critical=False)
        assert await workflow.run(scheduler=scheduler)  # non-critical failures
        assert all(step.state is StepState.FAILED for step in rest)
        assert isinstance(rest[-1].exception(), SchedulerClosedError)

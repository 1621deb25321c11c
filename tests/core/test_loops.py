"""Isolated event loops: ``Scheduler(loops=...)`` and ``spawn(..., loop=...)``.

Cross-thread hand-offs are awaited through ``threading.Event``s polled by
:func:`until`, never by sleeping a fixed time; the one timing claim (a blocked
isolated loop leaves the main loop's latency alone) keeps a wide margin.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import threading
import time
import warnings
from typing import Any

import pytest

from aiohttp_jobs import (
    ConfigError,
    ConfigTypeError,
    EventKind,
    JobEvent,
    JobState,
    NotAwaitableError,
    Priority,
    Progress,
    Scheduler,
    SchedulerClosedError,
    current_job,
)
from aiohttp_jobs._core.job import coroutine_in_use
from tests.helpers import blocked, failing, returning


async def until(event: threading.Event, within: float = 10.0) -> None:
    """Wait, on whichever loop runs this, until another thread sets *event*."""
    deadline = time.monotonic() + within
    while not event.is_set():
        assert time.monotonic() < deadline, "the other thread never got there"
        await asyncio.sleep(0.001)


async def where() -> tuple[int, asyncio.AbstractEventLoop]:
    return threading.get_ident(), asyncio.get_running_loop()


def block(seconds: float) -> None:
    """A blocking call (a synchronous client library, say)."""
    time.sleep(seconds)


class Boom(Exception):
    pass


# -- running there, results and exceptions back ---------------------------------------


async def test_job_on_a_named_loop_runs_in_its_thread_and_returns_its_result() -> None:
    main_loop = asyncio.get_running_loop()
    async with Scheduler() as scheduler:
        coro = where()  # created here, in the main thread: it has not started yet
        job = await scheduler.spawn(coro, loop="reports")
        isolated = scheduler.loops["reports"]
        ident, loop = await job.wait()
        assert loop is isolated.loop and loop is not main_loop
        assert ident == isolated.thread.ident != threading.get_ident()
        assert repr(isolated) == "<IsolatedLoop 'reports' running>"
    # The job itself is an ordinary job of the main scheduler.
    assert job.state is JobState.SUCCEEDED
    assert job.name.endswith("where")
    assert scheduler.history.get(job.id) is job
    assert repr(isolated) == "<IsolatedLoop 'reports' closed>"


async def test_spawn_nowait_runs_on_a_named_loop_too() -> None:
    async with Scheduler() as scheduler:
        job = scheduler.spawn_nowait(where(), "nowait", loop="side")
        ident, _ = await job.wait()
        assert ident == scheduler.loops["side"].thread.ident
        assert job.name == "nowait"


async def test_declared_loops_start_with_the_first_job_others_on_demand() -> None:
    threads = threading.active_count()
    scheduler = Scheduler(loops=["a", "b"])
    assert scheduler.loops.declared == ("a", "b")
    assert len(scheduler.loops) == 0 and threading.active_count() == threads
    await (await scheduler.spawn(returning(1))).wait()  # a job on the main loop
    assert list(scheduler.loops) == ["a", "b"]
    assert repr(scheduler.loops) == "<IsolatedLoops ['a', 'b']>"
    assert all(isolated.running for isolated in scheduler.loops.values())
    await (await scheduler.spawn(returning(2), loop="c")).wait()
    assert list(scheduler.loops) == ["a", "b", "c"]
    loops = list(scheduler.loops.values())
    await scheduler.close()
    assert scheduler.loops.closed
    for isolated in loops:
        assert not isolated.thread.is_alive() and isolated.loop.is_closed()
    assert threading.active_count() == threads


async def test_a_scheduler_that_never_uses_a_loop_starts_no_thread() -> None:
    threads = threading.active_count()
    async with Scheduler() as scheduler:
        await (await scheduler.spawn(returning(1))).wait()
    assert len(scheduler.loops) == 0 and threading.active_count() == threads


async def test_an_exception_raised_on_the_isolated_loop_fails_the_job() -> None:
    error = Boom("raised over there")
    async with Scheduler() as scheduler:
        job = await scheduler.spawn(failing(error), loop="l")
        with pytest.raises(Boom) as info:
            await job.wait()
    assert info.value is error
    assert job.state is JobState.FAILED and job.exception() is error


async def test_an_unawaited_failure_is_reported_in_the_main_thread() -> None:
    seen: list[tuple[dict[str, Any], int]] = []
    error = Boom("nobody waits for me")
    scheduler = Scheduler(
        exception_handler=lambda s, ctx: seen.append((ctx, threading.get_ident()))
    )
    job = await scheduler.spawn(failing(error), loop="l")
    assert await scheduler.wait_idle(10)
    await scheduler.close()
    ((context, ident),) = seen
    assert context["job"] is job and context["exception"] is error
    assert ident == threading.get_ident()


# -- cancellation, both ways ---------------------------------------------------------


async def test_closing_the_job_cancels_the_coroutine_on_its_loop_and_waits_for_it() -> (
    None
):
    started = threading.Event()
    log: list[object] = []

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("cancelled")
            await asyncio.sleep(0.05)  # cleanup that takes a while, on its loop
            log.append(("cleaned up", threading.get_ident()))
            raise

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(slow(), loop="l")
        await until(started)
        await job.close(timeout=10)
        # close() returned only once the coroutine had finished its cleanup.
        assert log == ["cancelled", ("cleaned up", scheduler.loops["l"].thread.ident)]
        assert job.state is JobState.CANCELLED


async def test_a_cancel_reaches_a_blocked_loop_once_its_blocking_call_returns() -> None:
    started = threading.Event()
    log: list[str] = []

    async def blocks_then_awaits() -> None:
        started.set()
        block(0.05)  # the cancellation is requested during this call
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log.append("cancelled at the next await")
            raise

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(blocks_then_awaits(), loop="l")
        await until(started)
        await job.close(timeout=10)
    assert log == ["cancelled at the next await"]
    assert job.state is JobState.CANCELLED


async def test_a_wait_that_times_out_closes_the_job_on_its_loop() -> None:
    started = threading.Event()
    log: list[str] = []

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("closed on its loop")

    async with Scheduler(close_timeout=10) as scheduler:
        job = await scheduler.spawn(slow(), loop="l")
        await until(started)
        with pytest.raises(TimeoutError):
            await job.wait(timeout=0.01)
        assert log == ["closed on its loop"]
        assert job.state is JobState.CANCELLED


async def test_a_coroutine_cancelled_on_its_own_loop_cancels_the_job() -> None:
    async def cancels_itself() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(cancels_itself(), loop="l")
        with pytest.raises(asyncio.CancelledError):
            await job.wait()
        assert job.state is JobState.CANCELLED


async def test_a_coroutine_that_swallows_the_cancellation_returns_its_value() -> None:
    started = threading.Event()

    async def stubborn() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "finished anyway"
        return "never"

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(stubborn(), loop="l")
        await until(started)
        await job.close(timeout=10)
    # As with a coroutine on the main loop: its outcome is what it did.
    assert job.state is JobState.SUCCEEDED and job.result() == "finished anyway"


async def test_a_job_dropped_before_it_ran_closes_its_coroutine() -> None:
    gate = asyncio.Event()
    async with Scheduler(limit=1) as scheduler:
        await scheduler.spawn(blocked(gate))
        pending_coro = returning(1)
        pending = await scheduler.spawn(pending_coro, loop="l")
        assert pending.pending
        await pending.close()
        assert pending.state is JobState.CANCELLED
        assert inspect.getcoroutinestate(pending_coro) == inspect.CORO_CLOSED
        # Cancelled between its start and its first step: closed there as well.
        unstarted = returning(2)
        job = scheduler.spawn_nowait(unstarted, loop="l", priority=Priority.CRITICAL)
        task = job._task
        assert task is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job.wait()
        assert inspect.getcoroutinestate(unstarted) == inspect.CORO_CLOSED
        gate.set()


async def test_a_refused_spawn_closes_the_coroutine_and_starts_no_loop() -> None:
    scheduler = Scheduler()
    await scheduler.close()
    coro = returning(1)
    with pytest.raises(SchedulerClosedError):
        await scheduler.spawn(coro, loop="late")
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    coro = returning(1)
    with pytest.raises(SchedulerClosedError):
        scheduler.spawn_nowait(coro, loop="late")
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    assert len(scheduler.loops) == 0


async def test_a_job_for_a_loop_that_has_ended_fails_and_closes_its_coroutine() -> None:
    async with Scheduler() as scheduler:
        await (await scheduler.spawn(returning(1), loop="l")).wait()
        isolated = scheduler.loops["l"]
        assert await isolated._stop(10)  # as if its thread had died
        coro = returning(2)
        job = await scheduler.spawn(coro, loop="l")
        with pytest.raises(SchedulerClosedError, match="'l' is closed"):
            await job.wait()
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


# -- the job lives on the main scheduler --------------------------------------------


async def test_current_job_and_progress_work_inside_progress_lands_in_main_thread() -> (
    None
):
    events: list[tuple[EventKind, int]] = []

    def listener(event: JobEvent) -> None:
        events.append((event.kind, threading.get_ident()))

    async def report() -> tuple[str, str]:
        job = current_job()
        for step in (1, 2, 3):
            job.set_progress(step, 3, f"step {step}")

        async def sub_task() -> str:  # a task of its own on the isolated loop
            return current_job().id

        return job.id, await asyncio.create_task(sub_task())

    async with Scheduler() as scheduler:
        scheduler.events.add_listener(listener)
        job = await scheduler.spawn(report(), loop="l")
        assert await job.wait() == (job.id, job.id)
    assert job.progress == Progress(3.0, 3.0, "step 3")
    kinds = [kind for kind, _ in events]
    progress = [EventKind.PROGRESS] * 3
    assert kinds == [
        EventKind.CREATED,
        EventKind.STARTED,
        *progress,
        EventKind.FINISHED,
    ]
    assert {ident for _, ident in events} == {threading.get_ident()}


async def test_limits_and_priorities_hold_for_jobs_on_isolated_loops() -> None:
    gate = threading.Event()

    async def waits_for_gate() -> str:
        await until(gate)
        return "first"

    async with Scheduler(limit=1) as scheduler:
        first = await scheduler.spawn(waits_for_gate(), loop="l")
        second = await scheduler.spawn(returning("second"), loop="l")
        critical = await scheduler.spawn(
            returning("critical"), loop="other", priority=Priority.CRITICAL
        )
        assert first.active and second.pending and critical.active
        assert await critical.wait() == "critical"
        assert second.pending
        gate.set()
        assert await first.wait() == "first"
        assert await second.wait() == "second"


# -- closing --------------------------------------------------------------------------


async def test_closing_the_scheduler_stops_each_loop_after_its_jobs() -> None:
    started = threading.Event()
    order: list[str] = []

    async def lingering() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.02)
            order.append("job cleaned up")

    scheduler = Scheduler(close_timeout=10)
    job = await scheduler.spawn(lingering(), loop="l")
    isolated = scheduler.loops["l"]
    await until(started)
    await scheduler.close()
    assert order == ["job cleaned up"] and job.state is JobState.CANCELLED
    assert not isolated.thread.is_alive() and isolated.loop.is_closed()
    assert not isolated.running
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del isolated
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_tasks_left_on_an_isolated_loop_are_cancelled_when_it_stops() -> None:
    log: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("background task cancelled")

    async def leaves_a_task_behind() -> None:
        background = asyncio.create_task(forever())
        await asyncio.sleep(0)
        assert not background.done()

    async with Scheduler() as scheduler:
        await (await scheduler.spawn(leaves_a_task_behind(), loop="l")).wait()
        assert log == []
    assert log == ["background task cancelled"]


async def test_a_loop_blocked_past_close_timeout_is_left_to_close_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = threading.Event()
    reports: list[dict[str, Any]] = []

    async def stuck() -> str:
        started.set()
        block(0.3)
        return "done late"

    scheduler = Scheduler(
        close_timeout=0.01, exception_handler=lambda s, ctx: reports.append(ctx)
    )
    job = await scheduler.spawn(stuck(), loop="stuck")
    isolated = scheduler.loops["stuck"]
    await until(started)
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs"):
        await scheduler.close()
    assert "isolated loop 'stuck' did not stop within 0.01 s" in caplog.text
    assert [ctx["message"] for ctx in reports] == ["Job closing timed out"]
    # The thread ends, and closes its loop, once the call returns.
    isolated.thread.join(10)
    assert isolated.loop.is_closed()
    assert await job.wait() == "done late"


# -- the proof: a blocked isolated loop leaves the main loop's latency alone ---------


async def _max_tick_gap(until_done: Any) -> float:
    """The longest the main loop took to come back to a 1 ms sleep while
    ``until_done()`` was false."""
    longest = 0.0
    while not until_done():
        before = time.perf_counter()
        await asyncio.sleep(0.001)
        longest = max(longest, time.perf_counter() - before)
    return longest


async def test_a_blocking_call_on_an_isolated_loop_leaves_the_main_loop_alone() -> None:
    async def blocking() -> str:
        block(0.2)
        return "done"

    async with Scheduler(loops=["blocking"]) as scheduler:
        # The measure sees a block: the same call on the main loop stalls it.
        on_main = await scheduler.spawn(blocking())
        assert await _max_tick_gap(lambda: on_main.done) >= 0.19
        isolated = await scheduler.spawn(blocking(), loop="blocking")
        gap = await _max_tick_gap(lambda: isolated.done)
        assert isolated.result() == "done"
        assert isolated.duration is not None and isolated.duration >= 0.19
        # Far below the 200 ms the call blocked its own loop (typically < 5 ms).
        assert gap < 0.1, gap


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loop", "error"),
    [("", ConfigError), ("  ", ConfigError), (5, ConfigTypeError), (b"l", TypeError)],
)
async def test_a_bad_loop_name_is_refused_and_the_coroutine_closed(
    loop: Any, error: type[Exception]
) -> None:
    async with Scheduler() as scheduler:
        coro = returning(1)
        with pytest.raises(error, match="loop"):
            await scheduler.spawn(coro, loop=loop)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        coro = returning(1)
        with pytest.raises(error, match="loop"):
            scheduler.spawn_nowait(coro, loop=loop)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
        assert len(scheduler.loops) == 0


@pytest.mark.parametrize(
    ("loops", "error", "message"),
    [
        ("reports", ConfigTypeError, "single string"),
        (5, ConfigTypeError, "collection of loop names"),
        (["a", ""], ConfigError, "non-empty"),
        (["a", 1], ConfigTypeError, "must be a string"),
        (["a", "a"], ConfigError, "twice"),
    ],
)
def test_bad_declared_loops_are_refused(
    loops: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        Scheduler(loops=loops)
    assert "loops" in str(info.value)


async def test_a_coroutine_spawned_twice_with_a_loop_is_refused_the_second_time() -> (
    None
):
    async with Scheduler(loops=("side",)) as scheduler:
        gate = threading.Event()

        async def work() -> str:
            await asyncio.to_thread(gate.wait, 5)
            return "once"

        coro = work()
        first = await scheduler.spawn(coro, loop="side")
        for second_loop in ("side", None):
            with pytest.raises(NotAwaitableError, match="already spawned"):
                await scheduler.spawn(coro, loop=second_loop)
        gate.set()
        assert await first.wait() == "once"
        # Once its work has ended, the coroutine is no longer held.
        assert not coroutine_in_use(coro)

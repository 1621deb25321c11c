"""What the core offers beyond aiojobs: states, results, progress, history, events,
priorities with reserves, start timeouts, pools, draining and clear errors."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

import aiohttp_jobs
from aiohttp_jobs import (
    EventKind,
    JobState,
    Priority,
    Scheduler,
    current_job,
)


async def _yield(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _return(value: Any) -> Any:
    return value


async def _fail(exc: BaseException) -> None:
    raise exc


def _double(x: int) -> int:  # module level: picklable for the process pool
    return x * 2


# -- states, results, timings, ids ---------------------------------------------


async def test_job_states_results_and_timings() -> None:
    async with Scheduler() as scheduler:
        ok = await scheduler.spawn(_return(5), "five", tags=["a", "b"])
        assert ok.state is JobState.RUNNING and ok.started_at is not None
        with pytest.raises(aiohttp_jobs.JobNotFinishedError):
            ok.result()
        assert await ok.wait() == 5
        assert ok.state is JobState.SUCCEEDED and ok.done
        assert ok.result() == 5 and ok.exception() is None
        assert ok.created_at <= ok.started_at <= ok.finished_at  # type: ignore[operator]
        assert ok.tags == ("a", "b") and ok.name == "five"

        err = ValueError("bad")
        bad = await scheduler.spawn(_fail(err))
        bad.add_done_callback(lambda job: None)  # observed: no handler call
        await _yield()
        assert bad.state is JobState.FAILED and bad.exception() is err
        with pytest.raises(ValueError):
            bad.result()
        assert bad.name == "_fail"


async def test_ids_are_unique_url_safe_and_found_again() -> None:
    async with Scheduler(limit=1) as scheduler:
        release = asyncio.Event()
        jobs = [await scheduler.spawn(release.wait()) for _ in range(3)]
        ids = {job.id for job in jobs}
        assert len(ids) == 3
        assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
        assert scheduler.get_job(jobs[2].id) is jobs[2]  # pending
        release.set()
    assert scheduler.get_job(jobs[0].id) is jobs[0]  # from the history
    with pytest.raises(aiohttp_jobs.JobNotFoundError):
        scheduler.get_job("nope-1")


async def test_add_done_callback_runs_once_final() -> None:
    seen: list[JobState] = []
    async with Scheduler() as scheduler:
        job = await scheduler.spawn(_return(1))
        job.add_done_callback(lambda j: seen.append(j.state))
        await job.wait()
        await _yield()
        job.add_done_callback(lambda j: seen.append(j.state))  # already final
        await _yield()
    assert seen == [JobState.SUCCEEDED, JobState.SUCCEEDED]


# -- progress and current_job --------------------------------------------------


async def test_progress_reported_from_inside_is_readable_outside() -> None:
    gate = asyncio.Event()

    async def work() -> None:
        current_job().set_progress(1, 4, "one of four")
        await gate.wait()

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(work())
        await _yield()
        assert job.progress == (1.0, 4.0, "one of four")
        assert job.progress is not None and job.progress.fraction == 0.25
        gate.set()


def test_current_job_outside_a_job_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="outside of a job"):
        current_job()


# -- history -------------------------------------------------------------------


async def test_history_is_bounded_and_queryable() -> None:
    async with Scheduler(history_limit=3) as scheduler:
        for n in range(4):
            await (await scheduler.spawn(_return(n), f"n{n}")).wait()
        failed = await scheduler.spawn(_fail(KeyError()), "boom")
        with pytest.raises(KeyError):
            await failed.wait()
    history = scheduler.history
    assert len(history) == 3 and history.maxlen == 3
    assert [j.name for j in history.query()] == ["boom", "n3", "n2"]
    assert history.query(state="failed") == [failed]
    assert [j.name for j in history.query(state=JobState.SUCCEEDED, limit=1)] == ["n3"]
    assert history.query(name="n2")[0].result() == 2


async def test_history_limit_zero_keeps_nothing() -> None:
    async with Scheduler(history_limit=0) as scheduler:
        await (await scheduler.spawn(_return(1))).wait()
    assert len(scheduler.history) == 0


# -- events --------------------------------------------------------------------


async def test_listeners_see_every_state_change_in_order() -> None:
    events: list[tuple[EventKind, str]] = []
    scheduler = Scheduler(limit=1)
    scheduler.events.add_listener(lambda e: events.append((e.kind, e.job.name)))

    async def work() -> None:
        current_job().set_progress(1)

    first = await scheduler.spawn(work(), "a")
    await scheduler.spawn(_return(0), "b")  # pending behind a
    await first.wait()
    await scheduler.wait_and_close()
    assert events == [
        (EventKind.CREATED, "a"),
        (EventKind.STARTED, "a"),
        (EventKind.CREATED, "b"),
        (EventKind.PROGRESS, "a"),
        (EventKind.FINISHED, "a"),
        (EventKind.STARTED, "b"),  # in the slot a left
        (EventKind.FINISHED, "b"),
    ]


async def test_streams_buffer_and_drop_the_oldest_when_behind() -> None:
    scheduler = Scheduler()
    async with scheduler.events.stream(maxsize=2) as stream:
        await (await scheduler.spawn(_return(1))).wait()  # 3 events
        assert stream.dropped == 1
        kinds = [(await stream.__anext__()).kind for _ in range(2)]
        assert kinds == [EventKind.STARTED, EventKind.FINISHED]
    await scheduler.close()


async def test_a_failing_listener_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[EventKind] = []
    scheduler = Scheduler()

    def broken(event: aiohttp_jobs.JobEvent) -> None:
        raise RuntimeError("listener bug")

    scheduler.events.add_listener(broken)
    scheduler.events.add_listener(lambda e: seen.append(e.kind))
    await (await scheduler.spawn(_return(1))).wait()
    await scheduler.close()
    assert EventKind.FINISHED in seen
    assert "listener bug" in caplog.text


# -- priorities ----------------------------------------------------------------


async def test_reserves_extend_the_limit_by_priority() -> None:
    scheduler = Scheduler(limit=1, reserve_normal=1, reserve_high=1)
    release = asyncio.Event()
    low = [await scheduler.spawn(release.wait(), priority="low") for _ in range(2)]
    normal = [await scheduler.spawn(release.wait()) for _ in range(2)]
    high = [
        await scheduler.spawn(release.wait(), priority=Priority.HIGH) for _ in range(2)
    ]
    critical = await scheduler.spawn(release.wait(), priority=3)
    assert [j.active for j in low] == [True, False]
    assert [j.active for j in normal] == [True, False]
    assert [j.active for j in high] == [True, False]
    assert critical.active
    assert scheduler.capacity("low") == 1 and scheduler.capacity() == 2
    assert scheduler.capacity("high") == 3 and scheduler.capacity("critical") is None
    release.set()
    await scheduler.wait_and_close()


async def test_pending_jobs_start_by_priority_then_fifo() -> None:
    scheduler = Scheduler(limit=1)
    gate = asyncio.Event()
    order: list[str] = []

    async def work(tag: str) -> None:
        order.append(tag)
        await gate.wait()

    await scheduler.spawn(work("first"))
    for tag, prio in [
        ("l1", "low"),
        ("n1", "normal"),
        ("h1", "high"),
        ("n2", "normal"),
    ]:
        await scheduler.spawn(work(tag), priority=prio)
    gate.set()
    await scheduler.wait_and_close()
    assert order == ["first", "h1", "n1", "n2", "l1"]


async def test_start_timeouts_warn_then_turn_critical(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports: list[tuple[str, str]] = []
    both = asyncio.get_running_loop().create_future()

    def on_start_timeout(job: aiohttp_jobs.Job[Any], level: str) -> None:
        reports.append((job.name, level))
        if level == "critical":
            both.set_result(None)

    scheduler = Scheduler(
        limit=1,
        start_timeout_warning=0.005,
        start_timeout_critical=0.01,
        on_start_timeout=on_start_timeout,
    )
    release = asyncio.Event()
    await scheduler.spawn(release.wait(), "busy")
    await scheduler.spawn(release.wait(), "stuck")
    await asyncio.wait_for(both, 5)
    assert reports == [("stuck", "warning"), ("stuck", "critical")]
    assert "has waited" in caplog.text
    release.set()
    await scheduler.wait_and_close()


# -- blocking work -------------------------------------------------------------


async def test_thread_jobs_have_results_progress_and_a_current_job() -> None:
    def blocking(x: int) -> tuple[int, str]:
        current_job().set_progress(1, 1, "done")
        return x * 2, threading.current_thread().name

    async with Scheduler(thread_pool_size=2) as scheduler:
        job = await scheduler.spawn_in_thread(blocking, 21, priority="high")
        value, thread = await job.wait()
        await _yield()
    assert value == 42 and thread.startswith("aiohttp-jobs")
    assert job.name.endswith("blocking") and job.priority is Priority.HIGH
    assert job.progress == (1.0, 1.0, "done")
    assert scheduler.pools.thread_size == 2


async def test_process_jobs_run_picklable_functions() -> None:
    async with Scheduler(process_pool_size=1) as scheduler:
        job = await scheduler.spawn_in_process(_double, 21)
        assert await job.wait() == 42
        with pytest.raises(aiohttp_jobs.NotPicklableError, match="cannot be pickled"):
            await scheduler.spawn_in_process(lambda: 1)


async def test_blocking_spawns_reject_coroutine_functions() -> None:
    async with Scheduler() as scheduler:
        with pytest.raises(TypeError, match="coroutine function"):
            await scheduler.spawn_in_thread(_return, 1)


# -- closing and draining ------------------------------------------------------


async def test_drain_refuses_new_jobs_and_lets_current_ones_finish() -> None:
    scheduler = Scheduler()
    gate = asyncio.Event()
    job = await scheduler.spawn(gate.wait())
    scheduler.drain()
    assert scheduler.draining and not scheduler.closed
    coro = _return(1)
    with pytest.raises(aiohttp_jobs.SchedulerClosedError, match="draining"):
        await scheduler.spawn(coro)
    gate.set()
    await scheduler.wait_and_close()
    assert job.state is JobState.SUCCEEDED


async def test_cancelling_a_caller_of_close_propagates() -> None:
    scheduler = Scheduler(close_timeout=None)
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()
            raise

    job = await scheduler.spawn(slow_to_stop())
    await _yield()
    closer = asyncio.ensure_future(job.close())
    await _yield()
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer
    release.set()
    await _yield()
    assert job.state is JobState.CANCELLED
    await scheduler.close()


async def test_spawn_cancelled_while_waiting_for_space_drops_its_job() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1)
    release = asyncio.Event()
    await scheduler.spawn(release.wait())
    await scheduler.spawn(release.wait())
    assert scheduler.full
    blocked = asyncio.ensure_future(scheduler.spawn(release.wait()))
    await _yield()
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert len(scheduler) == 2
    release.set()
    await scheduler.wait_and_close()


async def test_close_fails_spawns_waiting_for_space() -> None:
    scheduler = Scheduler(limit=1, pending_limit=1)
    await scheduler.spawn(asyncio.Event().wait())
    pending = await scheduler.spawn(asyncio.Event().wait())
    blocked = asyncio.ensure_future(scheduler.spawn(asyncio.Event().wait()))
    await _yield()
    await scheduler.close()
    with pytest.raises(aiohttp_jobs.SchedulerClosedError):
        await blocked
    assert pending.state is JobState.CANCELLED


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit must be an integer >= 1"),
        ({"pending_limit": -1}, "pending_limit must be an integer >= 0"),
        ({"reserve_high": -1}, "reserve_high"),
        ({"close_timeout": -1}, "close_timeout"),
        (
            {"start_timeout_warning": 2, "start_timeout_critical": 1},
            "must not be shorter",
        ),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(aiohttp_jobs.ConfigError, match=match):
        Scheduler(**kwargs)


async def test_spawn_rejects_what_cannot_be_awaited() -> None:
    async with Scheduler() as scheduler:
        with pytest.raises(aiohttp_jobs.NotAwaitableError, match="got int"):
            await scheduler.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"call it, spawn\(_return"):
            await scheduler.spawn(_return)  # type: ignore[arg-type]
        coro = _return(1)
        with pytest.raises(aiohttp_jobs.UnknownPriorityError, match="'urgent'"):
            await scheduler.spawn(coro, priority="urgent")
        coro.close()


async def test_spawn_accepts_other_awaitables() -> None:
    async with Scheduler() as scheduler:
        fut = asyncio.get_running_loop().create_future()
        fut.set_result("done")
        assert await (await scheduler.spawn(fut)).wait() == "done"

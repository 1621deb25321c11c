"""The aiojobs 1.x contract, written from its documentation.

Each test runs against ``aiohttp_jobs.Scheduler`` and, as a reference, against
``aiojobs.Scheduler``: a user switching the import must see no difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiojobs
import pytest

import aiohttp_jobs
from tests.helpers import settle

SCHEDULERS = {"aiohttp_jobs": aiohttp_jobs.Scheduler, "aiojobs": aiojobs.Scheduler}


@pytest.fixture(params=sorted(SCHEDULERS))
def make_scheduler(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return SCHEDULERS[request.param]


async def test_spawned_job_runs_and_returns_its_result(make_scheduler: Any) -> None:
    scheduler = make_scheduler()

    async def coro() -> int:
        return 42

    job = await scheduler.spawn(coro())
    assert job.active and not job.pending and not job.closed
    assert await job.wait() == 42
    assert job.closed and not job.active
    await scheduler.close()


async def test_properties_have_the_documented_defaults(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    assert scheduler.limit == 100
    assert scheduler.pending_limit == 10000
    assert scheduler.close_timeout == 0.1
    assert scheduler.active_count == 0
    assert scheduler.pending_count == 0
    assert not scheduler.closed
    assert scheduler.exception_handler is None
    assert len(scheduler) == 0
    await scheduler.close()
    assert scheduler.closed


async def test_limit_makes_extra_jobs_pending_until_a_slot_frees(
    make_scheduler: Any,
) -> None:
    scheduler = make_scheduler(limit=1)
    release = asyncio.Event()

    async def blocker() -> None:
        await release.wait()

    first = await scheduler.spawn(blocker())
    second = await scheduler.spawn(blocker())
    assert first.active and second.pending
    assert (scheduler.active_count, scheduler.pending_count, len(scheduler)) == (
        1,
        1,
        2,
    )
    assert first in scheduler and second in scheduler
    assert set(scheduler) == {first, second}
    release.set()
    await first.wait()
    await settle()
    assert second.active or second.closed
    await second.wait()
    assert (scheduler.active_count, scheduler.pending_count, len(scheduler)) == (
        0,
        0,
        0,
    )
    await scheduler.close()


async def test_limit_none_is_unlimited(make_scheduler: Any) -> None:
    scheduler = make_scheduler(limit=None)
    release = asyncio.Event()
    jobs = [await scheduler.spawn(release.wait()) for _ in range(300)]
    assert all(job.active for job in jobs)
    assert scheduler.pending_count == 0
    release.set()
    await scheduler.wait_and_close()


async def test_spawn_waits_while_the_pending_list_is_full(make_scheduler: Any) -> None:
    scheduler = make_scheduler(limit=1, pending_limit=1)
    release = asyncio.Event()
    await scheduler.spawn(release.wait())
    await scheduler.spawn(release.wait())  # pending
    third = asyncio.ensure_future(scheduler.spawn(release.wait()))
    await settle()
    assert not third.done()
    assert scheduler.pending_count == 1
    release.set()
    job = await third
    await job.wait()
    await scheduler.wait_and_close()


async def test_job_closed_while_pending_never_starts(make_scheduler: Any) -> None:
    scheduler = make_scheduler(limit=1)
    started = []
    release = asyncio.Event()

    async def coro(n: int) -> None:
        started.append(n)
        await release.wait()

    await scheduler.spawn(coro(1))
    second = await scheduler.spawn(coro(2))
    await settle()
    await second.close()
    assert second.closed
    release.set()
    await scheduler.wait_and_close()
    assert started == [1]


async def test_exception_of_unawaited_job_reaches_the_handler(
    make_scheduler: Any,
) -> None:
    contexts: list[dict[str, Any]] = []
    scheduler = make_scheduler(exception_handler=lambda s, ctx: contexts.append(ctx))
    exc = ZeroDivisionError("boom")

    async def fail() -> None:
        raise exc

    job = await scheduler.spawn(fail())
    await settle()
    assert job.closed
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Job processing failed"
    assert contexts[0]["job"] is job
    assert contexts[0]["exception"] is exc
    assert "source_traceback" not in contexts[0]
    await scheduler.close()


async def test_source_traceback_in_debug_mode(make_scheduler: Any) -> None:
    asyncio.get_running_loop().set_debug(True)
    contexts: list[dict[str, Any]] = []
    scheduler = make_scheduler(exception_handler=lambda s, ctx: contexts.append(ctx))

    async def fail() -> None:
        raise ValueError

    await scheduler.spawn(fail())
    await settle()
    assert contexts and contexts[0]["source_traceback"]
    await scheduler.close()


async def test_awaited_job_raises_and_skips_the_handler(make_scheduler: Any) -> None:
    contexts: list[dict[str, Any]] = []
    scheduler = make_scheduler(exception_handler=lambda s, ctx: contexts.append(ctx))

    async def fail() -> None:
        await asyncio.sleep(0)
        raise KeyError("x")

    job = await scheduler.spawn(fail())
    with pytest.raises(KeyError):
        await job.wait()
    assert contexts == []
    await scheduler.close()


async def test_default_handler_is_the_loops(make_scheduler: Any) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    scheduler = make_scheduler()

    async def fail() -> None:
        raise RuntimeError("x")

    await scheduler.spawn(fail())
    await settle()
    assert seen and seen[0]["message"] == "Job processing failed"
    await scheduler.close()
    loop.set_exception_handler(None)


async def test_wait_timeout_closes_the_job(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    job = await scheduler.spawn(asyncio.Event().wait())
    with pytest.raises(asyncio.TimeoutError):
        await job.wait(timeout=0.01)
    assert job.closed
    await scheduler.close()


async def _stubborn(release: asyncio.Event) -> None:
    """Ignores cancellation until *release* is set."""
    while True:
        try:
            await release.wait()
            return
        except asyncio.CancelledError:
            continue


async def test_explicit_close_timeout_raises() -> None:
    scheduler = aiohttp_jobs.Scheduler(close_timeout=0.01)
    release = asyncio.Event()

    job = await scheduler.spawn(_stubborn(release))
    await settle()
    with pytest.raises(asyncio.TimeoutError):
        await job.close()
    release.set()
    await settle()
    await scheduler.close()


async def test_implicit_close_timeout_goes_to_the_handler() -> None:
    contexts: list[dict[str, Any]] = []
    scheduler = aiohttp_jobs.Scheduler(
        close_timeout=0.01, exception_handler=lambda s, ctx: contexts.append(ctx)
    )
    release = asyncio.Event()

    job = await scheduler.spawn(_stubborn(release))
    await settle()
    await scheduler.close()
    assert [c["message"] for c in contexts] == ["Job closing timed out"]
    assert contexts[0]["job"] is job
    assert isinstance(contexts[0]["exception"], asyncio.TimeoutError)
    release.set()
    await settle()


async def test_close_cancels_active_jobs(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    cancelled = asyncio.Event()

    async def coro() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await scheduler.spawn(coro())
    await settle()
    await scheduler.close()
    assert cancelled.is_set()
    assert job.closed
    assert len(scheduler) == 0


async def test_spawn_after_close_is_a_runtime_error(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    await scheduler.close()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await scheduler.spawn(coro)
    coro.close()


async def test_async_with_waits_for_jobs(make_scheduler: Any) -> None:
    done = []

    async def coro() -> None:
        await settle()
        done.append(1)

    async with make_scheduler() as scheduler:
        await scheduler.spawn(coro())
    assert done == [1]
    assert scheduler.closed


async def test_wait_and_close_gives_up_after_timeout(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    job = await scheduler.spawn(asyncio.Event().wait())
    await scheduler.wait_and_close(timeout=0.01)
    assert job.closed and scheduler.closed


async def test_names(make_scheduler: Any) -> None:
    scheduler = make_scheduler(limit=1)
    release = asyncio.Event()
    named = await scheduler.spawn(release.wait(), name="named")
    unnamed = await scheduler.spawn(release.wait())
    assert named.get_name() == "named"
    assert unnamed.get_name() is None
    unnamed.set_name("later")
    assert unnamed.get_name() == "later"
    release.set()
    await scheduler.wait_and_close()


async def test_shield_protects_from_the_callers_cancellation(
    make_scheduler: Any,
) -> None:
    scheduler = make_scheduler()
    finished = []
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        finished.append(1)
        return 7

    async def handler() -> int:
        return int(await scheduler.shield(work()))

    caller = asyncio.ensure_future(handler())
    await settle()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    gate.set()
    await scheduler.wait_and_close()
    assert finished == [1]


async def test_close_cancels_shielded_work(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    fut = scheduler.shield(asyncio.Event().wait())
    await scheduler.close()
    with pytest.raises(asyncio.CancelledError):
        await fut


async def test_shield_of_a_result(make_scheduler: Any) -> None:
    scheduler = make_scheduler()

    async def seven() -> int:
        return 7

    assert await scheduler.shield(seven()) == 7
    await scheduler.close()


async def test_waiter_cancellation_leaves_the_job_running(
    make_scheduler: Any,
) -> None:
    scheduler = make_scheduler()
    release = asyncio.Event()

    async def coro() -> str:
        await release.wait()
        return "ok"

    job = await scheduler.spawn(coro())
    waiter = asyncio.ensure_future(job.wait())
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert job.active
    release.set()
    assert await job.wait() == "ok"
    await scheduler.close()


async def test_exception_handler_must_be_callable(make_scheduler: Any) -> None:
    with pytest.raises(TypeError):
        make_scheduler(exception_handler=1)


async def test_call_exception_handler_uses_the_custom_handler(
    make_scheduler: Any,
) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []
    scheduler = make_scheduler(exception_handler=lambda s, c: seen.append((s, c)))
    scheduler.call_exception_handler({"message": "hi"})
    assert seen == [(scheduler, {"message": "hi"})]
    await scheduler.close()


async def test_close_right_after_spawn_lets_the_body_reach_its_first_await(
    make_scheduler: Any,
) -> None:
    reports: list[dict[str, Any]] = []
    scheduler = make_scheduler(exception_handler=lambda s, c: reports.append(c))
    exc = RuntimeError("at once")

    async def fails_at_once() -> None:
        raise exc

    await scheduler.spawn(fails_at_once())
    await scheduler.close()
    assert [(c["message"], c["exception"]) for c in reports] == [
        ("Job processing failed", exc)
    ]


async def test_close_in_the_turn_of_the_failure_claims_it(make_scheduler: Any) -> None:
    reports: list[dict[str, Any]] = []
    scheduler = make_scheduler(exception_handler=lambda s, c: reports.append(c))
    failed = asyncio.get_running_loop().create_future()

    async def fails() -> None:
        failed.set_result(None)
        raise RuntimeError("claimed")

    job = await scheduler.spawn(fails())
    await failed  # resumes in the turn in which the job fails
    with pytest.raises(RuntimeError, match="claimed"):
        await job.close()
    await scheduler.close()
    assert reports == []


async def test_wait_in_the_turn_of_the_failure_claims_it(make_scheduler: Any) -> None:
    reports: list[dict[str, Any]] = []
    scheduler = make_scheduler(exception_handler=lambda s, c: reports.append(c))
    failed = asyncio.get_running_loop().create_future()

    async def fails() -> None:
        failed.set_result(None)
        raise RuntimeError("claimed")

    job = await scheduler.spawn(fails())
    await failed
    with pytest.raises(RuntimeError, match="claimed"):
        await job.wait()
    await scheduler.close()
    assert reports == []


async def test_a_refused_coroutine_is_left_to_its_owner(make_scheduler: Any) -> None:
    scheduler = make_scheduler()
    await scheduler.close()
    coro = settle(1)
    with pytest.raises(RuntimeError):
        await scheduler.spawn(coro)
    await coro  # untouched: its owner may still await it


def test_another_event_loop_is_refused_and_its_coroutine_left_untouched(
    make_scheduler: Any,
) -> None:
    scheduler = make_scheduler()
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        job = first.run_until_complete(scheduler.spawn(asyncio.sleep(10)))

        async def from_the_other_loop() -> None:
            coro = settle(1)
            with pytest.raises(RuntimeError, match="bound to a different event loop"):
                await scheduler.spawn(coro)
            await coro

        second.run_until_complete(from_the_other_loop())
        assert list(scheduler) == [job]
        first.run_until_complete(scheduler.close())
    finally:
        second.close()
        first.close()


async def test_close_timing_out_is_reported_with_the_source_traceback() -> None:
    asyncio.get_running_loop().set_debug(True)
    reports: list[dict[str, Any]] = []
    scheduler = aiohttp_jobs.Scheduler(
        close_timeout=0.01, exception_handler=lambda s, c: reports.append(c)
    )
    release = asyncio.Event()
    job = await scheduler.spawn(_stubborn(release))
    await settle()
    await scheduler.close()
    release.set()
    await settle()
    (context,) = reports
    assert context["message"] == "Job closing timed out"
    assert isinstance(context["exception"], asyncio.TimeoutError)
    assert context["job"] is job
    assert context["source_traceback"]


async def test_private_fields_aiojobs_code_reads_still_answer() -> None:
    """Code and tests written for aiojobs read ``Job._task`` and
    ``Scheduler._failed_task``; both keep answering as they do there."""
    scheduler = aiohttp_jobs.Scheduler()
    assert scheduler._failed_task is None  # not bound to a loop yet
    job = await scheduler.spawn(asyncio.sleep(0), name="named")
    failed_task = scheduler._failed_task
    assert failed_task is not None
    assert failed_task.get_loop() is asyncio.get_running_loop()
    task = job._task
    assert task is not None and task.get_name() == "named" and not task.done()
    await job.wait()
    finished = job._task
    assert finished is not None and finished.done() and not finished.cancelled()
    assert finished.get_name() == "named"
    await scheduler.close()


# Where aiojobs 1.4 misbehaves, aiohttp-jobs does not follow it (docs/scheduler.md):
# these run against aiohttp_jobs only.


def _waiting_jobs() -> tuple[asyncio.Event, list[int], Callable[[int], Any]]:
    """A coroutine function whose jobs note their number when they start,
    then wait for the event."""
    release = asyncio.Event()
    started: list[int] = []

    async def coro(n: int) -> None:
        started.append(n)
        await release.wait()

    return release, started, coro


async def test_closing_a_pending_job_starts_no_other_past_the_limit() -> None:
    scheduler = aiohttp_jobs.Scheduler(limit=1)
    release, started, coro = _waiting_jobs()
    first = await scheduler.spawn(coro(1))
    second = await scheduler.spawn(coro(2))
    third = await scheduler.spawn(coro(3))
    await second.close()
    await settle()
    assert (scheduler.active_count, scheduler.pending_count) == (1, 1)
    assert first.active and third.pending and started == [1]
    release.set()
    await third.wait()
    assert started == [1, 3]
    await scheduler.close()


async def test_wait_timing_out_on_a_pending_job_closes_it() -> None:
    scheduler = aiohttp_jobs.Scheduler(limit=1)
    release, started, coro = _waiting_jobs()
    await scheduler.spawn(coro(1))
    queued = await scheduler.spawn(coro(2))
    with pytest.raises(asyncio.TimeoutError):
        await queued.wait(timeout=0.01)
    assert queued.closed and not queued.pending
    assert (scheduler.pending_count, len(scheduler)) == (0, 1)
    release.set()
    await scheduler.wait_and_close()
    assert started == [1]


async def test_iterating_the_scheduler_survives_jobs_ending_meanwhile() -> None:
    scheduler = aiohttp_jobs.Scheduler()
    jobs = [await scheduler.spawn(settle(1)) for _ in range(3)]
    seen = []
    for job in scheduler:
        seen.append(job)
        await settle()
    assert set(seen) == set(jobs)
    assert len(scheduler) == 0
    await scheduler.close()


@pytest.mark.parametrize("module", [aiohttp_jobs, aiojobs], ids=lambda m: m.__name__)
async def test_create_scheduler_still_builds_one_with_a_deprecation_warning(
    module: Any,
) -> None:
    with pytest.warns(DeprecationWarning, match="instantiated directly"):
        scheduler = await module.create_scheduler(limit=2, close_timeout=1.0)
    assert isinstance(scheduler, module.Scheduler)
    assert (scheduler.limit, scheduler.close_timeout, scheduler.pending_limit) == (
        2,
        1.0,
        10000,
    )
    job = await scheduler.spawn(asyncio.sleep(0, "done"))
    assert await job.wait() == "done"
    await scheduler.close()
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        await module.create_scheduler(exception_handler="not callable")

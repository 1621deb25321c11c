"""The runtime's public handle: replacing and removing instances while they run,
refusing work once stopping, payload keys, late declarations, listings that
never break, and the store's lifecycle. All on a FakeClock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from datetime import timedelta, timezone
from typing import Any

import pytest

from aiohttp_jobs import (
    ConfigError,
    Context,
    Scheduler,
    SchedulerClosedError,
    TaskDefinitionError,
    TaskNotFoundError,
    Tasks,
)
from aiohttp_jobs.stores import MemoryStore, TaskRecord
from aiohttp_jobs.stores.base import Unsubscribe
from aiohttp_jobs.testing import FakeClock, settle
from tests.tasks.support import T0, elapsed, task_sleep

# -- replacing and removing instances ------------------------------------------------


async def test_rescheduling_a_once_off_instance_during_its_run_keeps_the_new_one(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    runs: list[tuple[float, str]] = []

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        runs.append((elapsed(clock), str(ctx.params["text"])))
        if ctx.params["text"] == "old":
            await task_sleep(ctx, 10)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(
            remind, "ann", execute_at=T0 + timedelta(0, 60), text="old"
        )
        await clock.advance(65)  # the old run goes on until 70
        await runtime.schedule_task(
            remind, "ann", execute_at=T0 + timedelta(hours=1), text="new"
        )
        await clock.advance(10)  # the old run ends: the new instance stays
        [info] = await runtime.list_tasks()
        assert (info.key, info.next_fire_at) == ("remind:ann", T0 + timedelta(hours=1))
        await clock.advance(3600)
        left = await runtime.list_tasks()
    assert runs == [(60, "old"), (3600, "new")]  # at its own time, once
    assert left == []  # and then it left
    assert "losing its lease" not in caplog.text


async def test_rescheduling_during_a_retry_backoff_drops_the_pending_retry(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[tuple[float, str, int]] = []

    @tasks.dynamic_task(retries=3, retry_backoff=100)
    async def remind(ctx: Context) -> None:
        runs.append((elapsed(clock), str(ctx.params["text"]), ctx.attempt))
        if ctx.params["text"] == "old":
            raise RuntimeError("mail server down")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(
            remind, "ann", execute_at=T0 + timedelta(0, 60), text="old"
        )
        await clock.advance(100)  # failed at 60, the retry waits until 160
        await runtime.schedule_task(
            remind, "ann", execute_at=T0 + timedelta(hours=1), text="new"
        )
        await clock.advance(3600)
        left = await runtime.list_tasks()
    assert runs == [(60, "old", 0), (3600, "new", 0)]
    assert left == []


async def test_rescheduling_a_recurring_instance_mid_run_follows_the_new_schedule(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[tuple[float, str]] = []

    @tasks.dynamic_task()
    async def poll(ctx: Context) -> None:
        runs.append((elapsed(clock), str(ctx.params["v"])))
        await task_sleep(ctx, 10)

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(poll, "feed", interval=100, v="a")
        await clock.advance(105)  # the run of 100 goes on until 110
        await runtime.schedule_task(poll, "feed", interval=1000, v="b")  # from 105
        await clock.advance(1500)
    # the old run's end does not move the new cursor to 200
    assert runs == [(100, "a"), (1105, "b")]


async def test_unscheduling_during_a_run_says_so_instead_of_a_lost_lease(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    runs: list[float] = []

    @tasks.dynamic_task()
    async def poll(ctx: Context) -> None:
        runs.append(elapsed(clock))
        await task_sleep(ctx, 10)

    with caplog.at_level(logging.INFO, "aiohttp_jobs.tasks"):
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
            await rt.schedule_task(poll, "feed", interval=100)
            await rt.schedule_task(poll, "once", execute_at=T0 + timedelta(0, 100))
            await clock.advance(105)
            assert await rt.unschedule_task(poll, "feed") is True
            assert await rt.unschedule_task(poll, "once") is True
            await clock.advance(300)
            assert await rt.list_tasks() == []
    assert runs == [100, 100]
    assert "losing its lease" not in caplog.text
    unscheduled = [r for r in caplog.records if "was unscheduled" in r.getMessage()]
    assert len(unscheduled) == 2
    assert all(r.levelno == logging.INFO for r in unscheduled)


async def test_unscheduling_then_scheduling_again_during_a_run_keeps_the_new_one(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    runs: list[tuple[float, str]] = []

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        runs.append((elapsed(clock), str(ctx.params["text"])))
        await task_sleep(ctx, 10)

    with caplog.at_level(logging.INFO, "aiohttp_jobs.tasks"):
        async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
            await rt.schedule_task(
                remind, "a", execute_at=T0 + timedelta(0, 60), text="1"
            )
            await clock.advance(65)
            await rt.unschedule_task(remind, "a")
            await rt.schedule_task(
                remind, "a", execute_at=T0 + timedelta(0, 600), text="2"
            )
            await clock.advance(600)
    assert runs == [(60, "1"), (600, "2")]
    assert "losing its lease" not in caplog.text
    assert "scheduled again" in caplog.text


# -- refusing work once stopping -----------------------------------------------------


async def test_once_stopping_fire_run_now_and_schedule_task_raise(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    gate = asyncio.Event()
    runs: list[str] = []

    @tasks.task(keyword="slow")
    async def slow(ctx: Context) -> None:
        runs.append(ctx.run_id)
        await gate.wait()

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        runs.append(ctx.run_id)

    stack = contextlib.AsyncExitStack()
    runtime = await stack.enter_async_context(
        tasks.runtime(app=None, scheduler=scheduler, clock=clock)
    )
    await runtime.fire("slow")
    await clock.advance(0)
    closing = asyncio.ensure_future(stack.aclose())  # waits for the slow run
    await settle()
    assert runtime.stopping and not closing.done()
    calls: list[Callable[[], Any]] = [
        lambda: runtime.fire("slow"),
        lambda: runtime.run_now("slow"),
        lambda: runtime.schedule_task(remind, "ann", execute_at=T0),
    ]
    for call in calls:
        with pytest.raises(SchedulerClosedError, match="the task runtime is stopping"):
            await call()
    assert isinstance(SchedulerClosedError("x"), RuntimeError)
    gate.set()
    await closing
    assert len(runs) == 1  # only the run accepted before the stop


async def test_a_draining_scheduler_refuses_new_runs(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    tasks.task(keyword="k")(_noop)
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        scheduler.drain()
        with pytest.raises(SchedulerClosedError, match="stopping"):
            await runtime.fire("k")


async def test_a_run_asked_for_just_before_the_stop_still_runs(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.task(keyword="ping")
    async def ping(ctx: Context) -> None:
        runs.append(str(ctx.params.get("n")))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.fire("ping", n=1)
        await runtime.run_now("ping", n=2)
        # the runtime stops in the same loop turn: the runs were accepted, so run
    assert sorted(runs) == ["1", "2"]


# -- payload keys named like parameters ----------------------------------------------


async def test_payload_keys_may_share_a_parameter_name(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    seen: list[dict[str, Any]] = []

    @tasks.task(keyword="search")
    async def search(ctx: Context) -> None:
        seen.append(dict(ctx.params))

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        seen.append(dict(ctx.params))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.fire("search", keyword="shoes")
        await runtime.run_now("search", name="boots")
        await runtime.schedule_task(
            remind, "ann", execute_at=T0, task="call mum", instance="phone"
        )
        await clock.advance(0)
    assert sorted(seen, key=str) == sorted(
        [
            {"keyword": "shoes"},
            {"name": "boots"},
            {"task": "call mum", "instance": "phone"},
        ],
        key=str,
    )


# -- declarations the runtime cannot honour ------------------------------------------


async def test_declaring_after_the_runtime_started_is_refused(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    tasks.task(interval=60)(_noop)
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        with pytest.raises(TaskDefinitionError, match="after the task runtime started"):
            tasks.task(name="late", interval=5)(_noop)
        with pytest.raises(TaskDefinitionError, match="after the task runtime started"):
            tasks.dynamic_task(name="late_dynamic")
        with pytest.raises(TaskDefinitionError, match="after the task runtime started"):
            tasks.middleware(_middleware)
        with pytest.raises(TaskDefinitionError, match="after the task runtime started"):
            tasks.include(Tasks())
        with pytest.raises(TaskNotFoundError, match="no task named 'late'"):
            await runtime.schedule_task("late", "x", interval=5)
        await clock.advance(120)  # the runner keeps working
        [info] = await runtime.list_tasks()
        assert info.runs == 2
    tasks.task(name="later", interval=5)(_noop)  # stopped: declaring works again
    assert "later" in tasks.tasks


async def test_a_fixed_offset_timezone_works(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    plus2 = timezone(timedelta(hours=2))
    runs: list[str] = []

    @tasks.task(schedule="0 12 * * *", timezone=plus2)
    async def noon(ctx: Context) -> None:
        runs.append(clock.now().astimezone(plus2).isoformat())

    @tasks.dynamic_task()
    async def remind(ctx: Context) -> None:
        runs.append(clock.now().astimezone(plus2).isoformat())

    assert (
        repr(tasks["noon"]) == "<Task 'noon' <CronSchedule '0 12 * * *' tz=UTC+02:00>>"
    )
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(
            remind, "r", schedule="30 8 * * *", timezone="UTC-05:00"
        )
        await clock.advance(timedelta(days=1))
        infos = {i.key: i for i in await runtime.list_tasks()}
    assert runs == ["2024-01-01T12:00:00+02:00", "2024-01-01T15:30:00+02:00"]
    assert infos["noon"].schedule == "0 12 * * * (UTC+02:00)"
    assert infos["remind:r"].schedule == "30 8 * * * (UTC-05:00)"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"execute_at": math.nan}, "execute_at"),
        ({"execute_at": math.inf}, "execute_at"),
        ({"execute_at": T0.timestamp() + 1e12}, "execute_at"),
        ({"interval": 1e300}, "interval"),
        ({"interval": math.inf}, "interval"),
        ({"interval": 60, "start_at": math.inf}, "start_at"),
        ({"interval": 60, "start_at": math.nan}, "start_at"),
        ({"schedule": "* * * * *", "end_at": math.nan}, "end_at"),
        ({"schedule": "0 0 30 2 *"}, "never occurs in February"),
    ],
)
async def test_out_of_range_times_are_refused_early_and_listing_works(
    scheduler: Scheduler, clock: FakeClock, kwargs: dict[str, Any], named: str
) -> None:
    tasks = Tasks()
    tasks.dynamic_task()(_noop)
    if "execute_at" not in kwargs:  # declared tasks: refused at import time
        with pytest.raises(TaskDefinitionError, match=named):
            tasks.task(name="declared", **kwargs)(_noop)
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as rt:
        with pytest.raises(TaskDefinitionError, match=named):
            await rt.schedule_task("_noop", "x", **kwargs)
        assert await rt.list_tasks() == []


async def test_list_tasks_never_breaks_on_a_time_no_datetime_can_show(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    store = MemoryStore()
    tasks = Tasks(store=store)
    tasks.dynamic_task()(_noop)
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        # as a store written without these checks could hold
        await store.save(TaskRecord("_noop:far", "_noop", {"at": 1e20}, fire_at=1e20))
        [info] = await runtime.list_tasks()
    assert (info.key, info.kind, info.next_fire_at) == ("_noop:far", "once", None)


# -- the store's lifecycle and notifications -----------------------------------------


class _RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def open(self) -> None:
        self.calls.append("open")
        await super().open()

    async def close(self) -> None:
        self.calls.append("close")
        await super().close()

    def subscribe(self, callback: Callable[[], object]) -> Unsubscribe:
        self.calls.append("subscribe")
        unsubscribe = super().subscribe(callback)

        def recorded() -> None:
            self.calls.append("unsubscribe")
            unsubscribe()

        return recorded


async def test_the_runtime_opens_the_store_at_start_and_closes_it_at_stop(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    store = _RecordingStore()
    tasks = Tasks(store=store)

    @tasks.fixture
    async def resource(app: object) -> AsyncIterator[str]:
        store.calls.append("fixture up")
        yield "r"
        store.calls.append("fixture down")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        assert store.opened
    assert not store.opened
    assert store.calls == [
        "open",
        "fixture up",
        "subscribe",
        "unsubscribe",
        "fixture down",
        "close",
    ]


async def test_a_run_added_elsewhere_wakes_the_runner_without_a_timer(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    store = MemoryStore()
    tasks = Tasks(store=store)
    runs: list[float] = []

    @tasks.task(keyword="k")
    async def work(ctx: Context) -> None:
        runs.append(elapsed(clock))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(5)
        # as another process sharing the store would: not through this runtime
        await store.add_run("work", fire_at=clock.time())
        await settle()
        assert runs == [5]


async def _noop(ctx: Context) -> None:
    pass


async def _middleware(ctx: Context, call_next: Callable[[], Any]) -> Any:
    return await call_next()


async def test_arguments_of_the_wrong_type_are_refused_naming_them(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    with pytest.raises(ConfigError, match="owner"):
        Tasks(owner=0)  # type: ignore[arg-type]
    tasks = Tasks()
    with pytest.raises(ConfigError, match="name"):
        tasks.task(name=0, interval=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="enabled"):
        tasks.task(interval=5, enabled="")  # type: ignore[arg-type]
    tasks.dynamic_task()(_noop)
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        with pytest.raises(ConfigError, match="enabled"):
            await runtime.schedule_task("_noop", "x", interval=5, enabled="")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="task"):
            await runtime.schedule_task([], "x", interval=5)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="instance"):
            await runtime.unschedule_task("_noop", 0)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="instance"):
            await runtime.schedule_task("_noop", "", interval=5)


async def test_registry_arguments_of_the_wrong_type_are_refused_naming_them(
    scheduler: Scheduler,
) -> None:
    tasks = Tasks()
    with pytest.raises(ConfigError, match="name"):
        tasks.fixture(name=True)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="Tasks registry"):
        tasks.include("")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scheduler"):
        tasks.runtime(app=None, scheduler="")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="clock"):
        tasks.runtime(app=None, scheduler=scheduler, clock="")  # type: ignore[arg-type]

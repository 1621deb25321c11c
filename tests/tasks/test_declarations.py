"""Scheduled tasks: declarations, fixtures, middlewares, dynamic and keyword tasks.

Time is a FakeClock: nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aiohttp_jobs import (
    Context,
    JobState,
    Priority,
    Scheduler,
    TaskDefinitionError,
    TaskNotFoundError,
    TaskRuntime,
    Tasks,
)
from aiohttp_jobs.testing import FakeClock
from tests.tasks.support import T0


def _at(clock: FakeClock) -> str:
    return clock.now().strftime("%H:%M:%S")


# -- declarations ---------------------------------------------------------------------


async def _job(ctx: Context) -> None:
    pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "*/61 * * * *"}, "invalid cron schedule '*/61 * * * *': minute"),
        ({"schedule": "* * * * *", "timezone": "Nowhere/City"}, "unknown time zone"),
        ({"schedule": "* * * * *", "interval": 5}, "got schedule and interval"),
        ({}, "exactly one of schedule= (cron), interval= or execute_at=, got none"),
        ({"interval": 5, "when": datetime.now()}, "JSON-serialisable"),
        ({"interval": 5, "keyword": "x"}, "keyword-fired task takes no schedule"),
        ({"interval": 0}, "interval must be > 0, got 0"),
        ({"interval": 5, "retries": -1}, "retries must be an integer >= 0"),
        ({"interval": 5, "heartbeat": 60}, "heartbeat (60s) must be shorter"),
    ],
)
def test_declaration_errors_are_clear(kwargs: dict[str, Any], message: str) -> None:
    tasks = Tasks()
    with pytest.raises(TaskDefinitionError) as info:
        tasks.task(name="t", **kwargs)(_job)
    assert message in str(info.value)


def test_a_sync_function_is_rejected() -> None:
    def not_async(ctx: Context) -> None:
        pass

    with pytest.raises(TaskDefinitionError, match="not an async function"):
        Tasks().task(interval=5)(not_async)  # type: ignore[arg-type]


def test_duplicate_names_need_explicit_names() -> None:
    tasks = Tasks()
    tasks.task(interval=5)(_job)
    with pytest.raises(TaskDefinitionError, match="'_job' is already declared"):
        tasks.task(interval=10)(_job)
    tasks.task(name="a", interval=5, who="ann")(tasks.task(name="b", interval=9)(_job))
    assert sorted(tasks.tasks) == ["_job", "a", "b"]
    assert tasks["a"].params == {"who": "ann"}


def test_fixture_names_must_not_clash() -> None:
    tasks = Tasks()

    @tasks.fixture
    async def db(app: object) -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TaskDefinitionError, match="'db' is already declared"):
        tasks.fixture(name="db")(db)
    with pytest.raises(TaskDefinitionError, match="clashes with a context attribute"):
        tasks.fixture(name="params")(db)
    with pytest.raises(TaskDefinitionError, match="must be an async generator"):
        tasks.fixture(name="other")(_job)


def test_middleware_must_be_async() -> None:
    with pytest.raises(TaskDefinitionError, match="must be an async function"):
        Tasks().middleware(lambda ctx, nxt: None)


# -- running --------------------------------------------------------------------------


async def test_cron_task_fires_on_time_with_its_context(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    seen: list[tuple[str, str, object, dict[str, Any], int]] = []

    @tasks.task(schedule="*/10 * * * *", greeting="hi")
    async def tick(ctx: Context) -> str:
        seen.append(
            (_at(clock), ctx.scheduled_at.isoformat(), ctx.app, ctx.params, ctx.attempt)
        )
        return ctx.run_id

    app = {"name": "app"}
    async with tasks.runtime(app=app, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(timedelta(minutes=9, seconds=59))
        assert seen == []
        await clock.advance(1)
        await clock.advance(timedelta(minutes=10))
        assert runtime.in_flight == 0
    assert seen == [
        ("00:10:00", "2024-01-01T00:10:00+00:00", app, {"greeting": "hi"}, 0),
        ("00:20:00", "2024-01-01T00:20:00+00:00", app, {"greeting": "hi"}, 0),
    ]
    job = scheduler.history.query(name="tick")[0]
    assert job.state is JobState.SUCCEEDED
    assert job.result() == "tick@1704068400000"
    assert job.tags == ("task", "tick")


async def test_interval_tasks_and_disabled_tasks(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.task(interval=timedelta(seconds=30))
    async def every_30s(ctx: Context) -> None:
        runs.append(f"30s {_at(clock)}")

    @tasks.task(interval=10, enabled=False)
    async def off(ctx: Context) -> None:
        runs.append(f"off {_at(clock)}")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(60)
        await runtime.enable("off")
        await clock.advance(20)
        await runtime.disable("every_30s")
        await clock.advance(60)
    assert runs == [
        "30s 00:00:30",
        "30s 00:01:00",
        "off 00:01:10",
        "off 00:01:20",
        "off 00:01:30",
        "off 00:01:40",
        "off 00:01:50",
        "off 00:02:00",
        "off 00:02:10",
        "off 00:02:20",
    ]


async def test_fixtures_wrap_the_runtime_and_middlewares_wrap_each_run(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    log: list[str] = []

    @tasks.fixture
    async def db(app: dict[str, str]) -> AsyncIterator[str]:
        log.append(f"db up for {app['name']}")
        yield "conn"
        log.append("db down")

    @tasks.fixture(name="cache")
    async def make_cache(app: object) -> AsyncIterator[dict[str, int]]:
        log.append("cache up")
        yield {}
        log.append("cache down")

    @tasks.middleware
    async def outer(ctx: Context, call_next: Any) -> object:
        log.append("outer in")
        result = await call_next()
        log.append("outer out")
        return result

    @tasks.middleware
    async def inner(ctx: Context, call_next: Any) -> object:
        log.append("inner in")
        return await call_next()

    @tasks.task(interval=5)
    async def work(ctx: Context) -> None:
        log.append(f"run with {ctx.db} {ctx.cache} {sorted(ctx.fixtures)}")

    async with tasks.runtime(app={"name": "shop"}, scheduler=scheduler, clock=clock):
        assert log == ["db up for shop", "cache up"]
        await clock.advance(5)
    assert log == [
        "db up for shop",
        "cache up",
        "outer in",
        "inner in",
        "run with conn {} ['cache', 'db']",
        "outer out",
        "cache down",
        "db down",
    ]


async def test_shutdown_waits_for_runs_in_flight_before_fixture_teardown(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    log: list[str] = []

    @tasks.fixture
    async def res(app: object) -> AsyncIterator[None]:
        yield
        log.append("teardown")

    @tasks.task(interval=1)
    async def slow(ctx: Context) -> None:
        log.append("start")
        await clock_sleep(ctx, 3)
        log.append("end")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(1)
        assert runtime.in_flight == 1
        stopping = scheduler_task(runtime)
        await clock.advance(3)
        await stopping
    assert log == ["start", "end", "teardown"]


def scheduler_task(runtime: TaskRuntime) -> Any:
    import asyncio

    async def finish() -> None:
        await runtime.wait_idle()

    return asyncio.ensure_future(finish())


async def clock_sleep(ctx: Context, seconds: float) -> None:
    from aiohttp_jobs._core.clock import sleep_until

    await sleep_until(ctx.runtime.clock, ctx.runtime.clock.time() + seconds)


async def test_each_run_is_a_job_with_priority_state_and_error(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()

    @tasks.task(
        interval=1,
        priority="high",
        failure_mode=__import__("aiohttp_jobs").FailureMode.COMMIT,
    )
    async def boom(ctx: Context) -> None:
        raise ValueError("broken")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(2)
        [info] = await runtime.list_tasks()
    jobs = scheduler.history.query(name="boom")
    assert [j.state for j in jobs] == [JobState.FAILED, JobState.FAILED]
    assert jobs[0].priority is Priority.HIGH
    assert isinstance(jobs[0].exception(), ValueError)
    assert (info.runs, info.failures, info.kind) == (2, 2, "interval")
    assert info.last_run is not None and "broken" in (info.last_run.error or "")
    assert info.next_fire_at == T0 + timedelta(seconds=3)


async def test_dynamic_tasks_cron_interval_and_once(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.dynamic_task(kind="reminder")
    async def remind(ctx: Context) -> None:
        runs.append(
            f"{_at(clock)} {ctx.name} {ctx.params['user']} {ctx.params['kind']}"
        )

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(remind, "ann", schedule="0 * * * *", user="ann")
        await runtime.schedule_task("remind", "bob", interval=1500, user="bob")
        key = await runtime.schedule_task(
            remind, "cat", execute_at=T0 + timedelta(minutes=40), user="cat"
        )
        assert key == "remind:cat"
        await runtime.schedule_task(
            remind, "late", execute_at=T0 - timedelta(days=1), user="dan"
        )
        await clock.advance(0)
        await clock.advance(timedelta(hours=1))
        assert await runtime.unschedule_task(remind, "bob") is True
        assert await runtime.unschedule_task(remind, "bob") is False
        await clock.advance(timedelta(hours=1))
        keys = [i.key for i in await runtime.list_tasks()]
    assert runs == [
        "00:00:00 remind:late dan reminder",
        "00:25:00 remind:bob bob reminder",
        "00:40:00 remind:cat cat reminder",
        "00:50:00 remind:bob bob reminder",
        "01:00:00 remind:ann ann reminder",
        "02:00:00 remind:ann ann reminder",
    ]
    assert keys == ["remind:ann"]  # once-off instances leave when done


async def test_schedule_task_validates_its_arguments(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    tasks.dynamic_task()(_job)
    tasks.task(interval=5)(tasks.task(name="static", interval=5)(_job2))
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        with pytest.raises(TaskDefinitionError, match="exactly one of"):
            await runtime.schedule_task("_job", "x")
        with pytest.raises(TaskDefinitionError, match="JSON-serialisable"):
            await runtime.schedule_task("_job", "x", interval=5, obj=object())  # type: ignore[arg-type]
        with pytest.raises(TaskDefinitionError, match="timezone-aware"):
            await runtime.schedule_task("_job", "x", execute_at=datetime(2024, 1, 1))
        with pytest.raises(TaskNotFoundError, match="not a dynamic task"):
            await runtime.schedule_task("static", "x", interval=5)
        with pytest.raises(TaskNotFoundError, match="no task named 'nope'"):
            await runtime.schedule_task("nope", "x", interval=5)
        with pytest.raises(TaskNotFoundError, match="declared 2 times"):
            await runtime.schedule_task(_job2, "x", interval=5)
        with pytest.raises(TaskNotFoundError, match="no task or dynamic instance"):
            await runtime.run_now("nope")


async def _job2(ctx: Context) -> None:
    pass


async def test_keyword_fired_tasks_receive_the_payload(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    got: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []

    @tasks.task(keyword="signup", source="web")
    async def welcome(ctx: Context) -> None:
        got.append(("welcome", ctx.payload, ctx.params))

    @tasks.task(keyword="signup")
    async def audit(ctx: Context) -> None:
        got.append(("audit", ctx.payload, ctx.params))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        run_ids = await runtime.fire("signup", user="ann")
        assert await runtime.fire("nothing") == []
        await clock.advance(0)
        with pytest.raises(TaskDefinitionError):
            await runtime.fire("signup", user=object())  # type: ignore[arg-type]
    assert sorted(run_ids) == ["audit@1704067200000", "welcome@1704067200000"]
    assert sorted(got, key=lambda g: g[0]) == [
        ("audit", {"user": "ann"}, {"user": "ann"}),
        ("welcome", {"user": "ann"}, {"source": "web", "user": "ann"}),
    ]


async def test_run_now_does_not_move_the_schedule(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.task(schedule="0 * * * *")
    async def hourly(ctx: Context) -> None:
        runs.append(f"{_at(clock)} scheduled {ctx.scheduled_at:%H:%M}")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(600)
        await runtime.run_now("hourly")
        await clock.advance(3000)
    assert runs == ["00:10:00 scheduled 00:10", "01:00:00 scheduled 01:00"]


async def test_an_earlier_schedule_wakes_the_runner_early(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.dynamic_task()
    async def ping(ctx: Context) -> None:
        runs.append(f"{_at(clock)} {ctx.name}")

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(ping, "late", execute_at=T0 + timedelta(hours=1))
        await clock.advance(0)
        assert clock.next_timer == (T0 + timedelta(hours=1)).timestamp()
        await runtime.schedule_task(ping, "soon", execute_at=T0 + timedelta(seconds=5))
        await clock.advance(0)
        assert clock.next_timer == (T0 + timedelta(seconds=5)).timestamp()
        await clock.advance(timedelta(hours=1))
    assert runs == ["00:00:05 ping:soon", "01:00:00 ping:late"]


@pytest.mark.parametrize(
    ("zone", "start", "days", "expected"),
    [
        (
            "Europe/Berlin",
            "2024-03-30T00:00:00+01:00",
            3,
            ["03-30 02:30+0100", "03-31 03:00+0200", "04-01 02:30+0200"],
        ),
        (
            "Europe/Berlin",
            "2024-10-26T00:00:00+02:00",
            3,
            ["10-26 02:30+0200", "10-27 02:30+0200", "10-28 02:30+0100"],
        ),
        (
            "America/New_York",
            "2024-11-02T00:00:00-04:00",
            3,
            ["11-02 02:30-0400", "11-03 02:30-0500", "11-04 02:30-0500"],
        ),
        (
            "Australia/Sydney",
            "2024-10-05T00:00:00+10:00",
            3,
            ["10-05 02:30+1000", "10-06 03:00+1100", "10-07 02:30+1100"],
        ),
    ],
)
async def test_daily_task_through_dst_days_runs_once_a_day(
    scheduler: Scheduler, zone: str, start: str, days: int, expected: list[str]
) -> None:
    from zoneinfo import ZoneInfo

    clock = FakeClock(datetime.fromisoformat(start))
    tasks = Tasks()
    runs: list[str] = []

    @tasks.task(schedule="30 2 * * *", timezone=zone)
    async def nightly(ctx: Context) -> None:
        runs.append(clock.now().astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M%z"))

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock):
        await clock.advance(timedelta(days=days) - timedelta(seconds=1))
    assert runs == expected


async def test_list_tasks_describes_every_task(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    tasks.task(name="c", schedule="0 3 * * *", timezone="Europe/Berlin")(_job)
    tasks.task(name="k", keyword="go")(_job)
    tasks.task(name="off", interval=5, enabled=False)(_job)
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        infos = {i.key: i for i in await runtime.list_tasks()}
    assert infos["c"].kind == "cron"
    assert infos["c"].schedule == "0 3 * * * (Europe/Berlin)"
    assert infos["c"].next_fire_at == datetime(2024, 1, 1, 2, tzinfo=UTC)
    assert (infos["k"].kind, infos["k"].next_fire_at) == ("keyword", None)
    assert (infos["off"].enabled, infos["off"].next_fire_at) == (False, None)
    assert "TaskRuntime" in repr(runtime)


async def test_a_disabled_keyword_task_ignores_fire_until_enabled(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    got: list[object] = []

    @tasks.task(keyword="ping", enabled=False)
    async def pong(ctx: Context) -> None:
        got.append(ctx.params["n"])

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        assert await runtime.fire("ping", n=1) == []
        await runtime.enable("pong")
        await runtime.fire("ping", n=2)
        await runtime.disable("pong")
        await runtime.fire("ping", n=3)
        await clock.advance(0)
    assert got == [2]


async def test_once_off_timestamps_give_the_same_record_on_every_path(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    tasks = Tasks()
    runs: list[str] = []

    @tasks.dynamic_task(kind="ping")
    async def ping(ctx: Context) -> None:
        runs.append(f"{_at(clock)} {ctx.name} {dict(ctx.params)}")

    at = (T0 + timedelta(minutes=5)).timestamp()
    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await runtime.schedule_task(ping, "float", execute_at=at)  # the fast path
        await runtime.schedule_task(ping, "int", execute_at=int(at))
        await runtime.schedule_task(ping, "dt", execute_at=T0 + timedelta(minutes=5))
        await runtime.schedule_task(ping, "params", execute_at=at, extra=1)
        records = {  # each new instance has a revision of its own
            r.key: r._replace(revision=0) for r in await runtime.store.records()
        }
        assert records["ping:float"] == records["ping:int"]._replace(key="ping:float")
        assert records["ping:float"] == records["ping:dt"]._replace(key="ping:float")
        assert records["ping:float"].params == {"kind": "ping"}
        assert records["ping:float"].params is not tasks.tasks["ping"].params
        await clock.advance(timedelta(minutes=5))
    assert sorted(runs) == [
        "00:05:00 ping:dt {'kind': 'ping'}",
        "00:05:00 ping:float {'kind': 'ping'}",
        "00:05:00 ping:int {'kind': 'ping'}",
        "00:05:00 ping:params {'kind': 'ping', 'extra': 1}",
    ]

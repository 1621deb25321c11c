"""Several instances of an application on one store (two runtimes on one
MemoryStore stand for two processes): each occurrence runs once, a lease whose
holder stalls or dies is taken over, cancelling works from any instance, and
every instance sees the registry of instances and the log of recent runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aiohttp_jobs import (
    Context,
    FailureMode,
    Scheduler,
    TaskDefinitionError,
    TaskRuntime,
    Tasks,
)
from aiohttp_jobs.stores import (
    Claim,
    Cursor,
    InstanceInfo,
    Lease,
    LeaseInfo,
    MemoryStore,
    RunLogEntry,
    TaskRecord,
    TaskStore,
)
from aiohttp_jobs.testing import FakeClock
from tests.tasks.support import elapsed, task_sleep


class Cuttable(TaskStore):
    """A view of a shared store that can lose its connection (``cut``): every
    call then raises, as a store behind a broken network would."""

    def __init__(self, inner: TaskStore) -> None:
        self.inner = inner
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise ConnectionError("store unreachable")

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    def subscribe(self, callback: Callable[[], object]) -> Callable[[], None]:
        return self.inner.subscribe(lambda: None if self.cut else callback())

    async def save(self, record: TaskRecord) -> None:
        self._check()
        await self.inner.save(record)

    async def get(self, key: str) -> TaskRecord | None:
        self._check()
        return await self.inner.get(key)

    async def delete(self, key: str, *, claim: Claim | None = None) -> bool:
        self._check()
        return await self.inner.delete(key, claim=claim)

    async def records(self, task: str | None = None) -> list[TaskRecord]:
        self._check()
        return await self.inner.records(task)

    async def add_run(self, key: str, *, fire_at: float, payload: Any = None) -> str:
        self._check()
        return await self.inner.add_run(key, fire_at=fire_at, payload=payload)

    async def next_due(self) -> float | None:
        self._check()
        return await self.inner.next_due()

    async def acquire(
        self, *, now: float, owner: str, lease_duration: float, limit: int
    ) -> list[Claim]:
        self._check()
        return await self.inner.acquire(
            now=now, owner=owner, lease_duration=lease_duration, limit=limit
        )

    async def extend(self, claim: Claim, *, until: float) -> Lease:
        self._check()
        return await self.inner.extend(claim, until=until)

    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
        log: RunLogEntry | None = None,
    ) -> Lease:
        self._check()
        return await self.inner.commit(
            claim, cursor=cursor, retry_at=retry_at, keep_lease=keep_lease, log=log
        )

    async def cancel(self, run_id: str, *, now: float) -> bool:
        self._check()
        return await self.inner.cancel(run_id, now=now)

    async def register_instance(self, info: InstanceInfo, *, ttl: float) -> None:
        self._check()
        await self.inner.register_instance(info, ttl=ttl)

    async def deregister_instance(self, instance_id: str) -> None:
        self._check()
        await self.inner.deregister_instance(instance_id)

    async def instances(self, *, now: float) -> list[InstanceInfo]:
        self._check()
        return await self.inner.instances(now=now)

    async def leases(self, *, now: float) -> list[LeaseInfo]:
        self._check()
        return await self.inner.leases(now=now)

    async def log_run(self, entry: RunLogEntry) -> None:
        self._check()
        await self.inner.log_run(entry)

    async def recent_runs(self, key: str, *, limit: int = 100) -> list[RunLogEntry]:
        self._check()
        return await self.inner.recent_runs(key, limit=limit)


Ran = list[tuple[str, float, str, int]]  # (instance, when, run id, attempt)


@contextlib.asynccontextmanager
async def instances(
    clock: FakeClock, declare: Callable[[Tasks, Ran], None], count: int = 2
) -> AsyncIterator[tuple[list[TaskRuntime], list[Cuttable], Ran]]:
    """*count* runtimes (each with its own registry, scheduler and store
    connection) on one shared store, as *count* processes would be."""
    shared = MemoryStore()
    ran: Ran = []
    async with contextlib.AsyncExitStack() as stack:
        runtimes, stores = [], []
        for i in range(count):
            store = Cuttable(shared)
            tasks = Tasks(store=store, owner=f"i{i}")
            declare(tasks, ran)
            scheduler = await stack.enter_async_context(Scheduler(limit=None))
            runtime = await stack.enter_async_context(
                tasks.runtime(app=None, scheduler=scheduler, clock=clock)
            )
            runtimes.append(runtime)
            stores.append(store)
        yield runtimes, stores, ran


def _record(ran: Ran) -> Callable[[Context], None]:
    def note(ctx: Context) -> None:
        ran.append((ctx.runtime.instance_id, elapsed_of(ctx), ctx.run_id, ctx.attempt))

    return note


def _slow(duration: float) -> Callable[[Tasks, Ran], None]:
    """Declares ``slow``: due every 1000 s, leased for 30 s, runs *duration* s."""

    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=1000, lease_duration=30)
        async def slow(ctx: Context) -> None:
            note(ctx)
            await task_sleep(ctx, duration)

    return declare


def elapsed_of(ctx: Context) -> float:
    clock = ctx.runtime.clock
    assert isinstance(clock, FakeClock)
    return elapsed(clock)


async def test_each_occurrence_runs_once_among_the_instances(clock: FakeClock) -> None:
    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=10)
        async def tick(ctx: Context) -> None:
            note(ctx)

        @tasks.task(keyword="go")
        async def go(ctx: Context) -> None:
            note(ctx)

    async with instances(clock, declare, count=3) as (runtimes, _, ran):
        await clock.advance(100)
        await runtimes[2].fire("go")
        await runtimes[0].run_now("tick")
        await clock.advance(0)
    ticks = [r for r in ran if r[2].startswith("tick@")]
    assert [r[1] for r in ticks] == [float(t) for t in range(10, 101, 10)] + [100.0]
    assert len({r[2] for r in ticks[:-1]}) == 10  # no occurrence twice
    assert {r[0] for r in ran} <= {"i0", "i1", "i2"}
    assert len([r for r in ran if r[2].startswith("go@")]) == 1


async def test_a_dead_instances_run_is_taken_over_with_the_next_attempt(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fences: list[int] = []
    cancelled: list[str] = []

    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=1000, lease_duration=30)
        async def slow(ctx: Context) -> None:
            note(ctx)
            fences.append(ctx.fence)
            try:
                await task_sleep(ctx, 100)
            except asyncio.CancelledError:
                cancelled.append(ctx.runtime.instance_id)
                raise

    async with instances(clock, declare) as (runtimes, stores, ran):
        await clock.advance(1000)
        [(first, *_)] = ran
        holder = int(first[1:])
        stores[holder].cut = True  # its store is unreachable: heartbeats fail
        await clock.advance(35)
        other = f"i{1 - holder}"
        # the holder could not extend before the lease expired: it cancelled
        # its job (no zombie work); the other instance took the run over
        assert cancelled == [first]
        assert [(r[0], r[1], r[3]) for r in ran] == [(first, 1000, 0), (other, 1030, 1)]
        assert ran[0][2] == ran[1][2] and fences[1] > fences[0]
        stores[holder].cut = False
        await clock.advance(100)
        log = await runtimes[holder].recent_runs("slow")
    assert [(e.instance, e.attempt, e.outcome) for e in log] == [
        (other, 1, "succeeded")
    ]
    assert "could not extend its lease" in caplog.text
    assert "lost its lease" in caplog.text


async def test_a_run_is_cancelled_from_another_instance(clock: FakeClock) -> None:
    ended: list[str] = []

    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=1000, lease_duration=30)
        async def slow(ctx: Context) -> None:
            note(ctx)
            try:
                await task_sleep(ctx, 500 if elapsed_of(ctx) < 1500 else 1)
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise

    async with instances(clock, declare) as (runtimes, _, ran):
        await clock.advance(1000)
        [(holder, _, run_id, _)] = ran
        other = runtimes[1 - int(holder[1:])]
        assert await other.cancel_run(run_id) is True
        await clock.advance(10)  # the holder hears of it at its next heartbeat
        assert ended == ["cancelled"]
        assert await other.cancel_run(run_id) is False  # settled: gone
        [info] = await other.list_tasks()
        log = await other.recent_runs("slow")
        await clock.advance(1000)  # the schedule moved on
    assert info.next_fire_at is not None and info.running == 0
    assert [(e.instance, e.outcome) for e in log] == [(holder, "cancelled")]
    assert [r[1] for r in ran] == [1000, 2000]


async def test_cancelling_on_the_holding_instance_is_immediate(
    clock: FakeClock,
) -> None:
    async with instances(clock, _slow(500), count=1) as ([runtime], _, ran):
        await clock.advance(1000)
        [(_, _, run_id, _)] = ran
        assert await runtime.cancel_run(run_id) is True
        await clock.advance(0)
        assert runtime.in_flight == 0
        [entry] = await runtime.recent_runs("slow")
    assert entry.outcome == "cancelled"


async def test_a_waiting_retry_cancelled_is_never_run(clock: FakeClock) -> None:
    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=1000, retries=3, retry_backoff=100)
        async def flaky(ctx: Context) -> None:
            note(ctx)
            raise RuntimeError("down")

    async with instances(clock, declare) as (runtimes, _, ran):
        await clock.advance(1000)
        [(_, _, run_id, _)] = ran
        assert await runtimes[0].cancel_run(run_id) is True
        await clock.advance(500)
        log = await runtimes[1].recent_runs("flaky")
    assert [r[1] for r in ran] == [1000]  # the retry due at 1100 never ran
    assert [(e.attempt, e.outcome) for e in log] == [(1, "cancelled"), (0, "failed")]
    assert log[1].error == "RuntimeError('down')"


async def test_changes_on_one_instance_take_effect_on_all(clock: FakeClock) -> None:
    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=100)
        async def tick(ctx: Context) -> None:
            note(ctx)

        @tasks.dynamic_task()
        async def remind(ctx: Context) -> None:
            note(ctx)

    async with instances(clock, declare) as (runtimes, _, ran):
        await runtimes[0].disable("tick")
        await clock.advance(300)
        assert ran == []  # disabled everywhere
        await runtimes[1].enable("tick")
        await runtimes[1].schedule_task("remind", "a", interval=50)
        await clock.advance(100)
        assert sorted(r[2] for r in ran) == [
            "remind:a@1704067550000",
            "remind:a@1704067600000",
            "tick@1704067600000",
        ]
        await runtimes[0].unschedule_task("remind", "a")
        ran.clear()
        await clock.advance(100)
    assert [r[2] for r in ran] == ["tick@1704067700000"]


async def test_instances_register_heartbeat_and_age_out(clock: FakeClock) -> None:
    def declare(tasks: Tasks, ran: Ran) -> None:
        pass

    async with instances(clock, declare) as (runtimes, stores, _):
        listed = await runtimes[0].instances()
        assert [i.instance_id for i in listed] == ["i0", "i1"]
        assert listed[0].started == clock.time() and listed[0].pid > 0
        await clock.advance(100)  # heartbeats keep both listed
        assert [i.instance_id for i in await runtimes[1].instances()] == ["i0", "i1"]
        stores[0].cut = True  # i0 stops heartbeating (as if it died)
        await clock.advance(40)
        [alive] = await runtimes[1].instances()
        assert alive.instance_id == "i1" and alive.last_seen > alive.started
        stores[0].cut = False
        await clock.advance(10)
        assert len(await runtimes[1].instances()) == 2  # back
    # stopped instances deregister
    assert await MemoryStore().instances(now=clock.time()) == []
    assert await stores[0].inner.instances(now=clock.time()) == []


async def test_every_instance_sees_who_holds_each_run(clock: FakeClock) -> None:
    async with instances(clock, _slow(100)) as (runtimes, _, ran):
        assert await runtimes[0].leases() == []
        await clock.advance(1000)
        [(holder, _, run_id, _)] = ran
        other = runtimes[1 - int(holder[1:])]
        [lease] = await other.leases()  # the other instance sees it
        assert (lease.run_id, lease.key, lease.task) == (run_id, "slow", "slow")
        assert (lease.owner, lease.attempt, lease.cancelled) == (holder, 0, False)
        assert lease.fire_at == clock.time()
        assert lease.expires_at == clock.time() + 30
        await clock.advance(50)  # heartbeats move the expiry on
        [lease] = await other.leases()
        assert lease.expires_at > clock.time()
        assert await other.cancel_run(run_id) is True
        assert [x.cancelled for x in await other.leases()] == [True]
        await clock.advance(10)  # the holder settles it at its next heartbeat
        assert await other.leases() == []


async def test_the_run_log_says_where_and_how_each_run_ended(clock: FakeClock) -> None:
    def declare(tasks: Tasks, ran: Ran) -> None:
        note = _record(ran)

        @tasks.task(interval=10, failure_mode=FailureMode.COMMIT)
        async def job(ctx: Context) -> None:
            note(ctx)
            await task_sleep(ctx, 2)
            if len(ran) % 2 == 0:
                raise ValueError("even")

    async with instances(clock, declare) as (runtimes, _, ran):
        await clock.advance(45)
        log = await runtimes[0].recent_runs("job")
        assert await runtimes[1].recent_runs("job", limit=1) == log[:1]
    assert [e.run_id for e in log] == [r[2] for r in reversed(ran)]
    assert [e.outcome for e in log] == ["failed", "succeeded"] * 2
    assert log[0].error == "ValueError('even')"
    assert {e.instance for e in log} <= {"i0", "i1"}
    assert all(e.duration == 2 for e in log)


class SlowExtend(Cuttable):
    """A store whose heartbeats answer only when the test says so."""

    def __init__(self, inner: TaskStore) -> None:
        super().__init__(inner)
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def extend(self, claim: Claim, *, until: float) -> Lease:
        self.waiting.set()
        await self.gate.wait()
        return await super().extend(claim, until=until)


async def test_a_heartbeat_answered_after_the_run_ended_changes_nothing(
    scheduler: Scheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = SlowExtend(MemoryStore())
    tasks = Tasks(store=store)
    release = asyncio.Event()

    @tasks.task(interval=1000)  # lease 60 s: a heartbeat every 20 s
    async def work(ctx: Context) -> None:
        await release.wait()

    async with tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime:
        await clock.advance(1025)  # the keeper's heartbeat is now waiting
        await store.waiting.wait()
        release.set()  # the run ends and commits while the heartbeat is out
        await runtime.wait_idle()
        store.gate.set()  # the heartbeat comes back: LOST (the run is gone)
        await clock.advance(0)
        [entry] = await runtime.recent_runs("work")
    assert entry.outcome == "succeeded"
    assert "lost its lease" not in caplog.text


async def test_a_store_that_offers_its_servers_clock_sets_the_time(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    class ClockedStore(MemoryStore):
        """As RedisStore(server_clock=True) does: ``store.clock``."""

        def __init__(self) -> None:
            super().__init__()
            self.clock = clock

    tasks = Tasks(store=ClockedStore())
    ran: list[float] = []

    @tasks.task(interval=10)
    async def tick(ctx: Context) -> None:
        ran.append(elapsed(clock))

    async with tasks.runtime(app=None, scheduler=scheduler) as runtime:
        assert runtime.clock is clock
        await clock.advance(30)
    assert ran == [10, 20, 30]
    other = FakeClock()
    async with tasks.runtime(app=None, scheduler=scheduler, clock=other) as runtime:
        assert runtime.clock is other  # an explicit clock wins


async def test_claims_are_taken_with_the_shortest_lease_of_the_tasks(
    clock: FakeClock,
) -> None:
    # A runner killed between claiming a batch and starting its runs must not
    # hold them for longer than the tasks' own leases: others take them over.
    leases: list[float] = []

    class Recording(MemoryStore):
        async def acquire(
            self, *, now: float, owner: str, lease_duration: float, limit: int
        ) -> list[Claim]:
            leases.append(lease_duration)
            return await super().acquire(
                now=now, owner=owner, lease_duration=lease_duration, limit=limit
            )

    tasks = Tasks(store=Recording())

    @tasks.task(interval=10, lease_duration=5)
    async def quick(ctx: Context) -> None:
        pass

    @tasks.task(interval=10, lease_duration=30)
    async def slow(ctx: Context) -> None:
        pass

    async with (
        Scheduler(limit=None) as scheduler,
        tasks.runtime(app=None, scheduler=scheduler, clock=clock),
    ):
        await clock.advance(10)
    assert leases and set(leases) == {5.0}


async def test_an_at_most_once_run_is_in_the_log_before_its_job_ends(
    clock: FakeClock,
) -> None:
    # Whoever sees the run's job finish (a dashboard refreshing its page) must
    # find the run in the log: the entry is written before the job ends.
    from aiohttp_jobs import ExecutionMode

    class RoundTrips(MemoryStore):
        """Appends to the run log after a round trip, as a server-backed store
        does: an entry written once the job has ended arrives too late."""

        def __init__(self) -> None:
            super().__init__()
            self.logged: dict[str, list[str]] = {}

        async def log_run(self, entry: RunLogEntry) -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            await super().log_run(entry)
            self.logged.setdefault(entry.key, []).append(entry.outcome)

    store = RoundTrips()
    tasks = Tasks(store=store)
    seen: dict[str, list[str]] = {}

    @tasks.task(keyword="go", execution_mode=ExecutionMode.AT_MOST_ONCE)
    async def go(ctx: Context) -> None:
        pass

    @tasks.task(keyword="boom", execution_mode=ExecutionMode.AT_MOST_ONCE)
    async def boom(ctx: Context) -> None:
        raise ValueError("broken")

    def on_event(event: Any) -> None:
        # Read the log at the moment the job is seen ending (no await).
        job = getattr(event, "job", None)
        if job is not None and job.state.final:
            seen[job.name] = list(store.logged.get(job.name, ()))

    async with (
        Scheduler(limit=None) as scheduler,
        tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime,
    ):
        scheduler.events.add_listener(on_event)
        await runtime.fire("go")
        await runtime.fire("boom")
        await runtime.wait_idle()
    assert seen == {"go": ["succeeded"], "boom": ["failed"]}


async def test_a_run_carrying_its_callers_trace_gives_the_task_its_own_payload(
    clock: FakeClock,
) -> None:
    # fire() and run_now() on an instance that traces add the caller's span to
    # the run's payload, for whichever instance runs it (this one may not
    # trace at all): the task sees the payload it was given, nothing more.
    link = "aiohttp_jobs.trace"
    span = {"traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}
    seen: list[tuple[str, dict[str, Any], Any]] = []

    def declare(tasks: Tasks, ran: Ran) -> None:
        @tasks.task(keyword="go")
        async def go(ctx: Context) -> None:
            seen.append((ctx.name, ctx.params, ctx.payload))

        @tasks.dynamic_task()
        async def remind(ctx: Context) -> None:
            seen.append((ctx.name, ctx.params, ctx.payload))

    async with instances(clock, declare) as (runtimes, stores, _):
        store = stores[0]
        await runtimes[0].schedule_task("remind", "a", interval=3600, **{link: 1})
        fired = {**span, "cause": "fire"}
        for key, payload in (
            ("go", {"order": 7, link: fired}),  # fire("go", order=7)
            ("go", {link: fired}),  # fire("go")
            ("go", {link: {**span, "cause": "run_now"}}),  # run_now("go")
            ("remind:a", {link: {**span, "cause": "run_now"}}),
        ):
            await store.add_run(key, fire_at=clock.time(), payload=payload)
        await clock.advance(0)
        for runtime in runtimes:
            await runtime.wait_idle()
        # The payload key is reserved, on every instance, traced or not.
        with pytest.raises(TaskDefinitionError, match="is reserved"):
            await runtimes[1].fire("go", **{link: "mine"})
        with pytest.raises(TaskDefinitionError, match="is reserved"):
            await runtimes[1].run_now("go", **{link: "mine"})
    assert sorted(seen, key=repr) == sorted(
        [
            ("go", {"order": 7}, {"order": 7}),
            ("go", {}, {}),
            ("go", {}, None),
            ("remind:a", {link: 1}, None),  # a param of its own of that name
        ],
        key=repr,
    )


async def test_a_run_log_the_store_refuses_is_reported_and_the_runs_go_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # The run log is a report: a store error appending to it is logged, whether
    # the entry is written before the run's job ends (at most once) or in the
    # background (a failed run that keeps its lease), and fails nothing.
    from aiohttp_jobs import ExecutionMode

    class NoLog(MemoryStore):
        async def log_run(self, entry: RunLogEntry) -> None:
            raise ConnectionError("log unreachable")

    tasks = Tasks(store=NoLog())
    ran: list[str] = []

    @tasks.task(keyword="go", execution_mode=ExecutionMode.AT_MOST_ONCE)
    async def go(ctx: Context) -> None:
        ran.append("go")

    @tasks.task(keyword="boom", execution_mode=ExecutionMode.AT_MOST_ONCE)
    async def boom(ctx: Context) -> None:
        ran.append("boom")
        raise ValueError("broken")

    @tasks.task(keyword="stuck", failure_mode=FailureMode.NONE)
    async def stuck(ctx: Context) -> None:
        ran.append("stuck")
        raise ValueError("broken")

    async with (
        Scheduler(limit=None) as scheduler,
        tasks.runtime(app=None, scheduler=scheduler, clock=clock) as runtime,
    ):
        for keyword in ("go", "boom", "stuck", "go"):
            await runtime.fire(keyword)
            await runtime.wait_idle()
    assert ran == ["go", "boom", "stuck", "go"]
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("could not append to the run log")
    ]
    assert (
        warnings
        == ["could not append to the run log: ConnectionError('log unreachable')"] * 4
    )

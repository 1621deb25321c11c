"""Bad values at every public entry point (property-based, with Hypothesis).

Each entry point below is fed values that cannot work: NaN, infinities, numbers
out of range, the wrong type (strings such as "5", bools, None where it is not
allowed, bytes, lists, generators, naive datetimes). Two properties hold for all:

- **refused clearly**: the call raises a ``JobsError`` subclass whose message
  names the parameter, at once (every call is bounded: a hang fails the test);
- **accepted means usable**: a value that is accepted (edge values mixed with
  the bad ones) leaves everything working afterwards: ``repr()``, listings,
  running a job, letting time pass.

Runs are deterministic (``derandomize=True``, no example database) and fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import aiohttp_jobs
from aiohttp_jobs import (
    CronSchedule,
    EventBus,
    EventStream,
    History,
    IntervalSchedule,
    Job,
    JobsError,
    OnceSchedule,
    Schedule,
    Scheduler,
    Sequence,
    Step,
    SystemClock,
    TaskRuntime,
    Tasks,
    Workflow,
)
from aiohttp_jobs.stores import MemoryStore, TaskRecord
from aiohttp_jobs.testing import FakeClock

# -- how hard to try ----------------------------------------------------------------

#: A call that has not returned after this many seconds hangs.
BOUND = 10.0

PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=25,
    deadline=None,
    # A failing case is reported as found: no shrinking (keeps a failure, and an
    # expected failure, fast).
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- values -------------------------------------------------------------------------

NAN, INF = math.nan, math.inf


def _generator() -> Iterator[int]:
    yield 1


async def _coroutine_function() -> None:
    return None


def _plain_function() -> int:
    return 1


GENERATORS = st.builds(_generator)
NAIVE = st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(9999, 12, 30))
NOT_FINITE = st.sampled_from([NAN, INF, -INF])
NUMERIC_TEXT = st.sampled_from(["5", "1", "0.5", "nan", "inf", "-1", "", "1e3"])
TEXT = st.text(max_size=6) | NUMERIC_TEXT
#: Values of no type any entry point takes for a number or a name.
ODD = st.one_of(
    st.binary(max_size=3),
    st.lists(st.integers(0, 9), max_size=2),
    GENERATORS,
    st.builds(object),
    st.builds(dict),
)


def bad_seconds(*, none_ok: bool = True, huge: bool = True) -> st.SearchStrategy[Any]:
    """Durations and timeouts that cannot work."""
    parts = [
        NOT_FINITE,
        st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False),
        st.integers(max_value=-1),
        st.timedeltas(max_value=timedelta(microseconds=-1)),
        TEXT,
        st.booleans(),
        NAIVE,
        ODD,
    ]
    if huge:  # beyond a century: no time plus this can be shown as a date
        parts.append(st.floats(min_value=1e12, allow_nan=False, allow_infinity=False))
        parts.append(st.integers(min_value=10**12))
    if not none_ok:
        parts.append(st.none())
    return st.one_of(parts)


def either_seconds(*, none_ok: bool = True) -> st.SearchStrategy[Any]:
    """Bad durations mixed with edge values that must then keep working."""
    return st.one_of(
        bad_seconds(none_ok=none_ok, huge=False),
        st.sampled_from([0, 0.0, 1e-9, 0.5, 3, 1e9, 1e12, 1e300, sys.float_info.max]),
        st.timedeltas(min_value=timedelta(0)),
    )


def bad_count(minimum: int = 0, *, none_ok: bool = False) -> st.SearchStrategy[Any]:
    parts = [
        NOT_FINITE,
        st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda x: not x.is_integer()
        ),
        st.integers(max_value=minimum - 1),
        TEXT,
        st.booleans(),
        NAIVE,
        ODD,
    ]
    if not none_ok:
        parts.append(st.none())
    return st.one_of(parts)


def either_count(minimum: int = 0, *, none_ok: bool = False) -> st.SearchStrategy[Any]:
    return st.one_of(
        bad_count(minimum, none_ok=none_ok),
        st.integers(min_value=minimum, max_value=2**70),
        st.sampled_from([float(minimum + 1), sys.maxsize, sys.maxsize + 1]),
    )


def bad_name(*, none_ok: bool = False) -> st.SearchStrategy[Any]:
    parts = [
        st.integers(),
        st.floats(),
        st.binary(min_size=1, max_size=3),
        st.lists(st.text(max_size=2), max_size=2),
        st.booleans(),
        st.just(""),
        GENERATORS,
    ]
    if not none_ok:
        parts.append(st.none())
    return st.one_of(parts)


BAD_TAGS = st.one_of(
    st.text(min_size=1, max_size=4),  # one string: must not become its characters
    st.lists(st.integers() | st.none() | st.binary(max_size=2), min_size=1, max_size=3),
    st.lists(st.just(""), min_size=1, max_size=2),
    st.none(),
    st.integers(),
    st.binary(min_size=1, max_size=3),
    st.floats(),
)


def bad_timestamp(*, naive_ok: bool = False) -> st.SearchStrategy[Any]:
    """Moments that cannot work: beyond the year 9999, NaN, wrong types."""
    parts = [
        NOT_FINITE,
        st.floats(min_value=1e12, allow_nan=False, allow_infinity=False),
        st.integers(min_value=10**12),
        TEXT,
        st.booleans(),
        ODD,
    ]
    if not naive_ok:
        parts.append(NAIVE)
    return st.one_of(parts)


def either_timestamp() -> st.SearchStrategy[Any]:
    return st.one_of(
        bad_timestamp(),
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [
                    UTC,
                    timezone(timedelta(hours=2)),
                    timezone(-timedelta(hours=9)),
                ]
            ),
        ),
        st.sampled_from([0, 253402300799.0, 4102444800]),
    )


BAD_CALLABLE = st.one_of(
    st.integers(), TEXT, st.binary(min_size=1), st.lists(st.integers())
)
BAD_PRIORITY = st.one_of(
    st.text(max_size=8).filter(
        lambda s: s.lower() not in {"low", "normal", "high", "critical"}
    ),
    st.integers().filter(lambda i: not 0 <= i <= 3),
    st.floats(),
    st.binary(min_size=1),
)
#: Values that JSON cannot carry, for task parameters and payloads.
NOT_JSON = st.one_of(NOT_FINITE, st.binary(max_size=2), GENERATORS, st.builds(object))
NOT_AWAITABLE = st.one_of(
    st.integers(),
    TEXT,
    st.none(),
    GENERATORS,
    st.just(_coroutine_function),
    st.just(_plain_function),
    st.lists(st.integers(), max_size=2),
)
BAD_CRON = (
    st.sampled_from(
        [
            "0 0 30 2 *",  # February 30th: never
            "0 0 31 4 *",  # April 31st: never
            "0 0 31 2,4,6,9,11 *",
            "*/61 * * * *",
            "60 * * * *",
            "* * * *",
            "",
            "every day",
            "0 25 * * *",
        ]
    )
    | st.integers()
    | st.none().map(lambda _: b"* * * * *")
)
BAD_TIMEZONE = st.one_of(
    st.sampled_from(["Mars/Olympus_Mons", "", "UTC+2", "Europe/Nowhere"]),
    st.integers(),
    st.binary(min_size=1),
    st.booleans(),
)

# -- running a call -------------------------------------------------------------------

#: What a call gives back once its value was accepted: checks that it still works.
FollowUp = Callable[[], Awaitable[object]]
Call = Callable[[contextlib.AsyncExitStack, Any], Awaitable[FollowUp | None]]


@dataclass(frozen=True)
class Entry:
    """One parameter of one public entry point."""

    id: str
    call: Call
    bad: st.SearchStrategy[Any]
    #: Words of which the refusal message must contain one (the parameter name).
    names: tuple[str, ...]
    either: st.SearchStrategy[Any] | None = None
    #: Extra values always tried (Hypothesis explicit examples): bad ones for the
    #: refusal property, and ones that must be refused or work for the other.
    examples: tuple[Any, ...] = field(default=())
    either_examples: tuple[Any, ...] = field(default=())


@dataclass
class Outcome:
    accepted: bool = False
    error: BaseException | None = None
    followup_error: BaseException | None = None
    cleanup_error: BaseException | None = None
    hung: str | None = None


def run(entry: Entry, value: Any) -> Outcome:
    """Call *entry* with *value* in a fresh event loop, bounded by ``BOUND``."""
    outcome = Outcome()

    async def body() -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    follow = await entry.call(stack, value)
                except Exception as exc:
                    outcome.error = exc
                    return
                outcome.accepted = True
                if follow is not None:
                    try:
                        await follow()
                    except Exception as exc:
                        outcome.followup_error = exc
        except Exception as exc:  # closing what the call opened failed
            outcome.cleanup_error = exc

    async def bounded() -> None:
        task = asyncio.ensure_future(body())
        done, _ = await asyncio.wait({task}, timeout=BOUND)
        if not done:
            outcome.hung = "accepted, then hung" if outcome.accepted else "hung"
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, BOUND)
            return
        task.result()

    asyncio.run(bounded())
    return outcome


def show(value: Any) -> str:
    return f"{value!r:.80} ({type(value).__name__})"


def assert_refused(entry: Entry, value: Any, outcome: Outcome) -> None:
    where = f"{entry.id} with {show(value)}"
    assert outcome.hung is None, f"{where}: {outcome.hung}"
    if outcome.accepted and outcome.cleanup_error is not None:
        raise AssertionError(
            f"{where}: accepted, then failed at shutdown: {outcome.cleanup_error!r}"
        )
    assert not outcome.accepted, f"{where}: accepted"
    assert outcome.cleanup_error is None, (
        f"{where}: refused, then shutdown failed: {outcome.cleanup_error!r}"
    )
    exc = outcome.error
    assert isinstance(exc, JobsError), f"{where}: raised {exc!r}, not a JobsError"
    message = str(exc)
    assert any(name.lower() in message.lower() for name in entry.names), (
        f"{where}: the message does not name {' or '.join(entry.names)}: {message!r}"
    )


def assert_clear_or_working(entry: Entry, value: Any, outcome: Outcome) -> None:
    where = f"{entry.id} with {show(value)}"
    assert outcome.hung is None, f"{where}: {outcome.hung}"
    if outcome.accepted:
        assert outcome.followup_error is None, (
            f"{where}: accepted, then failed: {outcome.followup_error!r}"
        )
        assert outcome.cleanup_error is None, (
            f"{where}: accepted, then failed at shutdown: {outcome.cleanup_error!r}"
        )
    else:
        assert_refused(entry, value, outcome)


# -- what the entry points run in ---------------------------------------------------


async def job_body(seconds: float = 0) -> str:
    await asyncio.sleep(seconds)
    return "done"


async def scheduler(stack: contextlib.AsyncExitStack, **options: Any) -> Scheduler:
    sched = Scheduler(**options)
    # close(), not wait_and_close(): a job delayed by years is not waited for.
    stack.push_async_callback(sched.close)
    return sched


async def scheduler_works(sched: Scheduler) -> None:
    repr(sched)
    job = await sched.spawn(job_body(), "probe")
    assert await job.wait() == "done"
    repr(job)
    assert await (await sched.spawn_in_thread(_plain_function)).wait() == 1


async def running_job(stack: contextlib.AsyncExitStack) -> Job[str]:
    sched = await scheduler(stack)
    job = await sched.spawn(job_body(0.01), "target")
    stack.push_async_callback(job.close)
    return job


def registry() -> Tasks:
    tasks = Tasks()

    @tasks.dynamic_task(name="reminder")
    async def reminder(context: object) -> None:
        return None

    @tasks.task(name="search", keyword="search")
    async def search(context: object) -> None:
        return None

    @tasks.task(name="tick", interval=3600)
    async def tick(context: object) -> None:
        return None

    return tasks


async def runtime(
    stack: contextlib.AsyncExitStack, tasks: Tasks | None = None
) -> tuple[TaskRuntime, FakeClock]:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    sched = await scheduler(stack)
    rt = await stack.enter_async_context(
        (tasks or registry()).runtime(app=None, scheduler=sched, clock=clock)
    )
    return rt, clock


def runtime_works(rt: TaskRuntime, clock: FakeClock) -> FollowUp:
    async def check() -> None:
        for info in await rt.list_tasks():
            repr(info)
        repr(rt)
        await clock.advance(3601)
        for info in await rt.list_tasks():
            repr(info)

    return check


# -- the entry points -----------------------------------------------------------------

ENTRIES: list[Entry] = []


def entry(
    id: str,
    bad: st.SearchStrategy[Any],
    *,
    names: tuple[str, ...] = (),
    either: st.SearchStrategy[Any] | None = None,
    examples: tuple[Any, ...] = (),
    either_examples: tuple[Any, ...] = (),
) -> Callable[[Call], Call]:
    def register(call: Call) -> Call:
        param = id.rsplit("(", 1)[-1].rstrip(")").split("=")[0]
        ENTRIES.append(
            Entry(id, call, bad, names or (param,), either, examples, either_examples)
        )
        return call

    return register


# core: Scheduler(...)

_SCHEDULER_SECONDS = (
    "close_timeout",
    "wait_timeout",
    "start_timeout_warning",
    "start_timeout_critical",
)
_SCHEDULER_COUNTS = {
    "limit": (1, True),
    "pending_limit": (0, False),
    "reserve_normal": (0, False),
    "reserve_high": (0, False),
    "history_limit": (0, False),
    "thread_pool_size": (1, True),
    "process_pool_size": (1, True),
}


def _scheduler_option(option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        sched = await scheduler(stack, **{option: value})
        return lambda: scheduler_works(sched)

    return call


for _option in _SCHEDULER_SECONDS:
    entry(
        f"Scheduler({_option}=)",
        bad_seconds(),
        either=either_seconds(),
        examples=(NAN, INF, "5"),
    )(_scheduler_option(_option))
for _option, (_minimum, _none_ok) in _SCHEDULER_COUNTS.items():
    entry(
        f"Scheduler({_option}=)",
        bad_count(_minimum, none_ok=_none_ok),
        either=either_count(_minimum, none_ok=_none_ok),
    )(_scheduler_option(_option))
for _option in ("exception_handler", "on_start_timeout"):
    entry(f"Scheduler({_option}=)", BAD_CALLABLE)(_scheduler_option(_option))


# core: spawning


def _spawn_call(method: str, option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        sched = await scheduler(stack)
        coro = job_body()
        try:
            if method == "spawn":
                job = await sched.spawn(coro, **{option: value})
            else:
                job = sched.spawn_nowait(coro, **{option: value})
        except JobsError:
            # Refused after the coroutine was handed over: it must be closed, so
            # no "coroutine was never awaited" warning.
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            raise
        return job.wait

    return call


for _method in ("spawn", "spawn_nowait"):
    entry(f"Scheduler.{_method}(name=)", bad_name(none_ok=True))(
        _spawn_call(_method, "name")
    )
    entry(f"Scheduler.{_method}(tags=)", BAD_TAGS, examples=("abc", None, [1]))(
        _spawn_call(_method, "tags")
    )
    entry(f"Scheduler.{_method}(priority=)", BAD_PRIORITY)(
        _spawn_call(_method, "priority")
    )


@entry("Scheduler.spawn(coro)", NOT_AWAITABLE, names=("coro",))
async def _spawn_what(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    job = await (await scheduler(stack)).spawn(value)
    return job.wait


@entry("Scheduler.spawn_nowait(coro)", NOT_AWAITABLE, names=("coro",))
async def _spawn_nowait_what(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    job = (await scheduler(stack)).spawn_nowait(value)
    return job.wait


@entry(
    "Scheduler.spawn_in_thread(fn)",
    NOT_AWAITABLE.filter(lambda v: v is not _plain_function),
    names=("fn", "coroutine function"),
)
async def _spawn_in_thread(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    job = await (await scheduler(stack)).spawn_in_thread(value)
    return job.wait


@entry("Scheduler.spawn_in_thread(tags=)", BAD_TAGS)
async def _spawn_in_thread_tags(
    stack: contextlib.AsyncExitStack, value: Any
) -> FollowUp:
    job = await (await scheduler(stack)).spawn_in_thread(_plain_function, tags=value)
    return job.wait


for _method in ("wait_idle", "wait_and_close"):

    def _waiting(method: str) -> Call:
        async def call(stack: contextlib.AsyncExitStack, value: Any) -> None:
            sched = await scheduler(stack)
            await sched.spawn(job_body(0.01))
            await getattr(sched, method)(value)

        return call

    entry(
        f"Scheduler.{_method}(timeout=)",
        bad_seconds(),
        either=either_seconds(),
        examples=(NAN, "1"),
    )(_waiting(_method))


@entry("Scheduler.capacity(priority=)", BAD_PRIORITY)
async def _capacity(stack: contextlib.AsyncExitStack, value: Any) -> None:
    (await scheduler(stack)).capacity(value)


@entry("Scheduler.get_job(job_id=)", bad_name())
async def _get_job(stack: contextlib.AsyncExitStack, value: Any) -> None:
    (await scheduler(stack)).get_job(value)


@entry("Scheduler.shield(arg)", NOT_AWAITABLE, names=("arg",))
async def _shield(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await (await scheduler(stack)).shield(value)


# core: Job


def _job_timeout(method: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> None:
        job = await running_job(stack)
        try:
            await getattr(job, method)(timeout=value)
        except TimeoutError:
            pass  # an accepted timeout that passed: it works
        finally:
            # Refused or not, no waiter is left behind.
            assert not job._waiters
            if not job.done:
                await job.close()

    return call


for _method in ("wait", "close"):
    entry(
        f"Job.{_method}(timeout=)",
        bad_seconds(),
        either=either_seconds(),
        examples=(NAN, "1", INF),
    )(_job_timeout(_method))


@entry(
    "Job.set_progress(done=)",
    bad_seconds(none_ok=False, huge=False),
    either=either_seconds(none_ok=False),
)
async def _progress_done(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    job = await running_job(stack)
    job.set_progress(value, 10)

    async def check() -> None:
        progress = job.progress
        assert progress is not None
        fraction = progress.fraction
        assert fraction is not None and 0 <= fraction <= 1

    return check


@entry(
    "Job.set_progress(total=)",
    bad_seconds(huge=False) | st.sampled_from([0, 0.0, -0.0]),
    examples=(0, NAN, INF),
)
async def _progress_total(stack: contextlib.AsyncExitStack, value: Any) -> None:
    (await running_job(stack)).set_progress(1, value)


@entry("Job.set_progress(message=)", bad_name().filter(lambda v: v not in ("", None)))
async def _progress_message(stack: contextlib.AsyncExitStack, value: Any) -> None:
    (await running_job(stack)).set_progress(1, 2, value)


@entry("Job.set_name(name=)", bad_name())
async def _set_name(stack: contextlib.AsyncExitStack, value: Any) -> None:
    (await running_job(stack)).set_name(value)


@entry("Job.add_done_callback(callback=)", BAD_CALLABLE)
async def _done_callback(stack: contextlib.AsyncExitStack, value: Any) -> None:
    (await running_job(stack)).add_done_callback(value)


# core: events and history


@entry(
    "EventBus.stream(maxsize=)",
    bad_count(1),
    either=either_count(1),
    examples=(0, -1),
)
async def _stream(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    sched = await scheduler(stack)
    stream = await stack.enter_async_context(sched.events.stream(maxsize=value))

    async def check() -> None:
        await scheduler_works(sched)
        # The newest events are kept; the oldest dropped past maxsize.
        assert (await anext(stream)).job.name in ("probe", "_plain_function")

    return check


@entry("EventStream(maxsize=)", bad_count(1))
async def _event_stream(stack: contextlib.AsyncExitStack, value: Any) -> None:
    EventStream(maxsize=value)


@entry("EventBus.add_listener(listener=)", BAD_CALLABLE)
async def _listener(stack: contextlib.AsyncExitStack, value: Any) -> None:
    EventBus().add_listener(value)


@entry("History(maxlen=)", bad_count(0), either=either_count(0))
async def _history(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    history = History(maxlen=value)

    async def check() -> None:
        repr(history)
        history.query(limit=5)

    return check


for _option, _bad in (
    ("state", st.text(max_size=6) | st.integers() | st.binary(min_size=1)),
    ("name", bad_name(none_ok=True).filter(lambda v: v != "")),
    ("tag", bad_name(none_ok=True).filter(lambda v: v != "")),
    ("limit", bad_count(0, none_ok=True)),
):

    def _query(option: str) -> Call:
        async def call(stack: contextlib.AsyncExitStack, value: Any) -> None:
            sched = await scheduler(stack)
            await scheduler_works(sched)
            sched.history.query(**{option: value})

        return call

    entry(f"History.query({_option}=)", _bad)(_query(_option))


@entry("SystemClock.call_at(when=)", bad_timestamp(naive_ok=True), examples=(NAN,))
async def _system_clock(stack: contextlib.AsyncExitStack, value: Any) -> None:
    SystemClock().call_at(value, lambda: None).cancel()


# tasks: declarations


def _declare(option: str, *, dynamic: bool = False, **others: Any) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        tasks = registry()
        declare = tasks.dynamic_task if dynamic else tasks.task
        kwargs: dict[str, Any] = {"name": "probe", **others, option: value}

        @declare(**kwargs)
        async def probe(context: object) -> None:
            return None

        rt, clock = await runtime(stack, tasks)
        repr(tasks["probe"])
        return runtime_works(rt, clock)

    return call


entry(
    "Tasks.task(interval=)",
    bad_seconds(none_ok=True, huge=True).filter(lambda v: v is not None)
    | st.sampled_from([0, 0.0, timedelta(0)]),
    either=either_seconds(none_ok=False).filter(
        lambda v: (
            not isinstance(v, int | float | timedelta)
            or (v.total_seconds() if isinstance(v, timedelta) else v) >= 0.5
        )
    ),
    examples=(1e300, INF, NAN, "60"),
)(_declare("interval"))
entry(
    "Tasks.task(schedule=)",
    BAD_CRON,
    names=("schedule", "cron"),
    examples=("0 0 30 2 *", "0 0 31 4 *"),
)(_declare("schedule"))
entry(
    "Tasks.task(timezone=)",
    BAD_TIMEZONE,
    names=("timezone", "time zone"),
    either=BAD_TIMEZONE
    | st.sampled_from([timezone(timedelta(hours=2)), UTC, "Europe/Berlin", "UTC"]),
    either_examples=(timezone(timedelta(hours=2)),),
)(_declare("timezone", schedule="0 3 * * *"))
for _option in ("start_at", "end_at"):
    entry(
        f"Tasks.task({_option}=)",
        bad_timestamp(),
        either=either_timestamp(),
        examples=(INF, NAN, 1e12),
    )(_declare(_option, interval=60))
for _option in ("lease_duration", "retry_backoff", "retry_backoff_max"):
    entry(
        f"Tasks.task({_option}=)",
        bad_seconds(none_ok=False, huge=False),
        either=either_seconds(none_ok=False),
    )(_declare(_option, interval=60))
entry(
    "Tasks.task(heartbeat=)",
    bad_seconds(huge=False),
)(_declare("heartbeat", interval=60))
for _option, _minimum in (
    ("retries", 0),
    ("max_overlap", 1),
    ("queue_limit", 1),
    ("misfire_limit", 1),
):
    entry(
        f"Tasks.task({_option}=)",
        bad_count(_minimum),
        either=either_count(_minimum),
    )(_declare(_option, interval=60))
entry("Tasks.task(priority=)", BAD_PRIORITY)(_declare("priority", interval=60))
entry("Tasks.task(keyword=)", bad_name(none_ok=True))(_declare("keyword"))
entry("Tasks.task(name=)", bad_name(none_ok=True).filter(lambda v: v is not None))(
    _declare("name", interval=60)
)
entry("Tasks.task(enabled=)", TEXT | ODD)(_declare("enabled", interval=60))
for _option in ("execution_mode", "failure_mode", "overlap", "misfire"):
    entry(f"Tasks.task({_option}=)", TEXT | st.integers() | st.none())(
        _declare(_option, interval=60)
    )
entry(
    "Tasks.dynamic_task(timezone=)",
    BAD_TIMEZONE,
    names=("timezone", "time zone"),
    either=BAD_TIMEZONE | st.just(timezone(timedelta(hours=2))),
    either_examples=(timezone(timedelta(hours=2)),),
)(_declare("timezone", dynamic=True))
entry("Tasks.dynamic_task(lease_duration=)", bad_seconds(none_ok=False, huge=False))(
    _declare("lease_duration", dynamic=True)
)


@entry("Tasks.task(**params)", NOT_JSON, names=("param",))
async def _task_params(stack: contextlib.AsyncExitStack, value: Any) -> None:
    @registry().task(name="probe", interval=60, limit=value)
    async def probe(context: object) -> None:
        return None


for _option, _minimum, _none_ok in (
    ("concurrency_limit", 1, True),
    ("batch_size", 1, False),
):

    def _tasks_option(option: str) -> Call:
        async def call(stack: contextlib.AsyncExitStack, value: Any) -> None:
            Tasks(**{option: value})

        return call

    entry(f"Tasks({_option}=)", bad_count(_minimum, none_ok=_none_ok))(
        _tasks_option(_option)
    )


@entry("Tasks(owner=)", bad_name(none_ok=True))
async def _tasks_owner(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Tasks(owner=value)


# tasks: the runtime


def _schedule_task(option: str, **others: Any) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        rt, clock = await runtime(stack)
        kwargs: dict[str, Any] = {**others, option: value}
        await rt.schedule_task("reminder", "probe", **kwargs)
        return runtime_works(rt, clock)

    return call


entry(
    "TaskRuntime.schedule_task(execute_at=)",
    bad_timestamp(),
    either=either_timestamp(),
    examples=(NAN, INF, 1e12, datetime(2030, 1, 1)),
)(_schedule_task("execute_at"))
entry(
    "TaskRuntime.schedule_task(interval=)",
    bad_seconds(none_ok=True).filter(lambda v: v is not None)
    | st.sampled_from([0, 0.0]),
    either=either_seconds(none_ok=False).filter(
        lambda v: (
            not isinstance(v, int | float | timedelta)
            or (v.total_seconds() if isinstance(v, timedelta) else v) >= 0.5
        )
    ),
    examples=(1e300, INF),
)(_schedule_task("interval"))
entry(
    "TaskRuntime.schedule_task(schedule=)",
    BAD_CRON,
    names=("schedule", "cron"),
)(_schedule_task("schedule"))
for _option in ("start_at", "end_at"):
    entry(
        f"TaskRuntime.schedule_task({_option}=)",
        bad_timestamp(),
        either=either_timestamp(),
        examples=(INF, NAN),
    )(_schedule_task(_option, interval=60))
entry(
    "TaskRuntime.schedule_task(timezone=)",
    BAD_TIMEZONE,
    names=("timezone", "time zone"),
    either=BAD_TIMEZONE | st.just(timezone(timedelta(hours=2))),
    either_examples=(timezone(timedelta(hours=2)),),
)(_schedule_task("timezone", schedule="0 3 * * *"))
entry("TaskRuntime.schedule_task(enabled=)", TEXT | ODD)(
    _schedule_task("enabled", interval=60)
)


@entry("TaskRuntime.schedule_task(instance=)", bad_name())
async def _instance(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    rt, clock = await runtime(stack)
    await rt.schedule_task("reminder", value, interval=60)
    return runtime_works(rt, clock)


@entry("TaskRuntime.schedule_task(task=)", bad_name(), names=("task",))
async def _schedule_which(stack: contextlib.AsyncExitStack, value: Any) -> None:
    rt, _ = await runtime(stack)
    await rt.schedule_task(value, "probe", interval=60)


@entry("TaskRuntime.unschedule_task(instance=)", bad_name())
async def _unschedule(stack: contextlib.AsyncExitStack, value: Any) -> None:
    rt, _ = await runtime(stack)
    await rt.unschedule_task("reminder", value)


def _by_name(method: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> None:
        rt, _ = await runtime(stack)
        await getattr(rt, method)(value)

    return call


entry("TaskRuntime.run_now(name=)", bad_name())(_by_name("run_now"))
entry("TaskRuntime.enable(name=)", bad_name())(_by_name("enable"))
entry("TaskRuntime.disable(name=)", bad_name())(_by_name("disable"))
entry("TaskRuntime.fire(keyword=)", bad_name())(_by_name("fire"))


@entry("TaskRuntime.fire(**payload)", NOT_JSON, names=("payload", "param"))
async def _fire_payload(stack: contextlib.AsyncExitStack, value: Any) -> None:
    rt, _ = await runtime(stack)
    await rt.fire("search", query=value)


@entry("TaskRuntime.run_now(**payload)", NOT_JSON, names=("payload", "param"))
async def _run_now_payload(stack: contextlib.AsyncExitStack, value: Any) -> None:
    rt, _ = await runtime(stack)
    await rt.run_now("tick", query=value)


# workflows


def _workflow_option(option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        sched = await scheduler(stack)
        workflow = Workflow(Step(job_body), Step(job_body), **{option: value})

        async def check() -> None:
            repr(workflow)
            workflow.listing()
            try:
                assert await workflow.run(scheduler=sched)
            except TimeoutError:
                assert workflow.timed_out  # a timeout that passed: it works
            workflow.debrief()

        return check

    return call


entry(
    "Workflow(timeout=)",
    bad_seconds(),
    either=either_seconds().filter(lambda v: v != 0 and v != timedelta(0)),
    examples=(NAN, "5"),
)(_workflow_option("timeout"))
entry(
    "Workflow(window=)",
    bad_count(1, none_ok=True),
    either=either_count(1, none_ok=True),
    examples=(1.5,),
)(_workflow_option("window"))
entry("Workflow(priority=)", BAD_PRIORITY)(_workflow_option("priority"))
for _option in ("critical", "forever"):
    entry(f"Workflow({_option}=)", TEXT | ODD | st.none())(_workflow_option(_option))

    def _step_flag(option: str) -> Call:
        async def call(stack: contextlib.AsyncExitStack, value: Any) -> None:
            Step(job_body, **{option: value})

        return call

    entry(f"Step({_option}=)", TEXT | ODD | st.none())(_step_flag(_option))
entry("Workflow(label=)", bad_name(none_ok=True).filter(lambda v: v != ""))(
    _workflow_option("label")
)


@entry(
    "Step(body)",
    NOT_AWAITABLE.filter(lambda v: v is not _coroutine_function),
    names=("body", "coroutine", "async function"),
)
async def _step_body(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Step(value)


@entry("Step(label=)", bad_name(none_ok=True).filter(lambda v: v != ""))
async def _step_label(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Step(job_body, label=value)


@entry("Step(priority=)", BAD_PRIORITY)
async def _step_priority(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Step(job_body, priority=value)


@entry(
    "Step(requires=)",
    st.integers() | TEXT | st.lists(st.integers(), min_size=1),
    names=("requires", "require"),
)
async def _step_requires(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Step(job_body, requires=value)


@entry("Sequence(*steps)", st.integers() | TEXT | st.none(), names=("Sequence", "step"))
async def _sequence(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Sequence(Step(job_body), value)


@entry("Workflow.run(scheduler=)", st.integers() | TEXT | ODD, names=("scheduler",))
async def _workflow_run(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await Workflow(Step(job_body)).run(scheduler=value)


# web


async def started_app(
    stack: contextlib.AsyncExitStack, **options: Any
) -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(app, **options)
    runner = web.AppRunner(app)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    return app


def _setup_option(option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        app = await started_app(stack, **{option: value})

        async def check() -> None:
            request = make_mocked_request("GET", "/", app=app)
            job = await aiohttp_jobs.spawn(request, job_body(), "probe")
            assert await job.wait() == "done"

        return check

    return call


for _option in (*_SCHEDULER_SECONDS, "retry_after"):
    entry(
        f"setup({_option}=)",
        bad_seconds(none_ok=_option != "retry_after"),
        either=either_seconds(none_ok=_option != "retry_after"),
        examples=(NAN,),
    )(_setup_option(_option))
for _option, (_minimum, _none_ok) in _SCHEDULER_COUNTS.items():
    entry(f"setup({_option}=)", bad_count(_minimum, none_ok=_none_ok))(
        _setup_option(_option)
    )
entry("setup(exception_handler=)", BAD_CALLABLE)(_setup_option("exception_handler"))
entry("setup(reject_when_full=)", TEXT | ODD)(_setup_option("reject_when_full"))
entry("setup(tasks=)", TEXT | st.integers() | ODD)(_setup_option("tasks"))
entry("setup(clock=)", TEXT | st.integers() | ODD)(_setup_option("clock"))


def _web_spawn(option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        app = await started_app(stack)
        request = make_mocked_request("GET", "/", app=app)
        coro = job_body()
        try:
            job = await aiohttp_jobs.spawn(request, coro, **{option: value})
        except JobsError:
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            raise
        return job.wait

    return call


entry("aiohttp_jobs.spawn(name=)", bad_name(none_ok=True))(_web_spawn("name"))
entry("aiohttp_jobs.spawn(loop=)", bad_name(none_ok=True))(_web_spawn("loop"))
entry("aiohttp_jobs.spawn(delay=)", bad_seconds(), examples=(NAN, INF))(
    _web_spawn("delay")
)
entry("aiohttp_jobs.spawn(start_at=)", bad_timestamp(), examples=(NAN, 1e12))(
    _web_spawn("start_at")
)
entry("aiohttp_jobs.spawn(tags=)", BAD_TAGS)(_web_spawn("tags"))
entry("aiohttp_jobs.spawn(priority=)", BAD_PRIORITY)(_web_spawn("priority"))
entry("aiohttp_jobs.spawn(retry_after=)", bad_seconds())(_web_spawn("retry_after"))
entry("aiohttp_jobs.spawn(reject_when_full=)", TEXT | ODD)(
    _web_spawn("reject_when_full")
)


@entry("aiohttp_jobs.spawn(coro)", NOT_AWAITABLE, names=("coro",))
async def _web_spawn_what(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    app = await started_app(stack)
    request = make_mocked_request("GET", "/", app=app)
    job = await aiohttp_jobs.spawn(request, value)
    return job.wait


@entry("aiohttp_jobs.shield(aw)", NOT_AWAITABLE, names=("aw", "awaitable"))
async def _web_shield(stack: contextlib.AsyncExitStack, value: Any) -> None:
    app = await started_app(stack)
    await aiohttp_jobs.shield(make_mocked_request("GET", "/", app=app), value)


@entry(
    "aiohttp_jobs.get_tasks(app_or_request)",
    TEXT | st.integers() | ODD | st.none(),
    names=("app_or_request", "application", "request"),
)
async def _get_tasks(stack: contextlib.AsyncExitStack, value: Any) -> None:
    aiohttp_jobs.get_tasks(value)


# core: clock, delayed spawns, resizing


@entry("Scheduler(clock=)", TEXT | st.integers() | ODD)
async def _scheduler_clock(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await scheduler(stack, clock=value)


def _delayed(method: str, option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
        sched = await scheduler(stack, clock=clock)
        coro = job_body()
        try:
            if method == "spawn":
                job = await sched.spawn(coro, **{option: value})
            else:
                job = sched.spawn_nowait(coro, **{option: value})
        except JobsError:
            assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
            raise

        async def check() -> None:
            repr(job)
            repr(sched)
            await clock.advance(1)
            if job.active:
                assert await job.wait() == "done"
            await scheduler_works(sched)

        return check

    return call


for _method in ("spawn", "spawn_nowait"):
    entry(
        f"Scheduler.{_method}(delay=)",
        bad_seconds(),
        either=either_seconds(),
        examples=(NAN, INF, "5"),
    )(_delayed(_method, "delay"))
    entry(
        f"Scheduler.{_method}(start_at=)",
        bad_timestamp(),
        either=either_timestamp(),
        examples=(NAN, INF, 1e12, datetime(2030, 1, 1)),
    )(_delayed(_method, "start_at"))


def _reconfigure(option: str) -> Call:
    async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
        sched = await scheduler(stack)
        sched.reconfigure(**{option: value})
        return lambda: scheduler_works(sched)

    return call


for _option, (_minimum, _none_ok) in _SCHEDULER_COUNTS.items():
    if _option == "history_limit":
        continue
    entry(
        f"Scheduler.reconfigure({_option}=)",
        bad_count(_minimum, none_ok=_none_ok and _option == "limit"),
        either=either_count(_minimum, none_ok=_none_ok and _option == "limit"),
    )(_reconfigure(_option))


for _option in ("limit", "pending_limit", "reserve_normal", "reserve_high"):

    def _setter(option: str) -> Call:
        async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
            sched = await scheduler(stack)
            setattr(sched, option, value)
            return lambda: scheduler_works(sched)

        return call

    _minimum, _none_ok = _SCHEDULER_COUNTS[_option]
    entry(
        f"Scheduler.{_option} = (setter={_option})",
        bad_count(_minimum, none_ok=_none_ok),
        names=(_option,),
    )(_setter(_option))


# core: isolated loops

BAD_LOOP_NAMES = st.one_of(
    st.text(min_size=1, max_size=4),  # one string, not a collection of names
    st.lists(st.integers() | st.just("") | st.none(), min_size=1, max_size=2),
    st.just(["reports", "reports"]),
    st.integers(),
    st.none(),
)


@entry("Scheduler(loops=)", BAD_LOOP_NAMES)
async def _loops(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await scheduler(stack, loops=value)


entry("setup(loops=)", BAD_LOOP_NAMES)(_setup_option("loops"))


for _method in ("spawn", "spawn_nowait"):
    entry(f"Scheduler.{_method}(loop=)", bad_name(none_ok=True))(
        _spawn_call(_method, "loop")
    )


@entry("Scheduler.spawn_in_process(tags=)", BAD_TAGS)
async def _spawn_in_process_tags(
    stack: contextlib.AsyncExitStack, value: Any
) -> FollowUp:
    job = await (await scheduler(stack)).spawn_in_process(_plain_function, tags=value)
    return job.wait


# tasks: schedules (public classes)


def schedule_works(schedule: Schedule) -> FollowUp:
    async def check() -> None:
        repr(schedule)
        json.dumps(schedule.to_spec(), allow_nan=False)
        first = schedule.first(1.7e9)
        if first is not None:
            assert math.isfinite(first)
            datetime.fromtimestamp(first, UTC)

    return check


@entry("OnceSchedule(at)", bad_timestamp(), names=("at",), either=either_timestamp())
async def _once(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    return schedule_works(OnceSchedule(value))


@entry(
    "IntervalSchedule(interval)",
    bad_seconds(none_ok=False) | st.sampled_from([0, 0.0, timedelta(0)]),
    names=("interval",),
    either=either_seconds(none_ok=False),
)
async def _interval(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    return schedule_works(IntervalSchedule(value))


for _option in ("start_at", "end_at"):

    def _interval_window(option: str) -> Call:
        async def call(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
            return schedule_works(IntervalSchedule(60, **{option: value}))

        return call

    entry(
        f"IntervalSchedule({_option}=)",
        bad_timestamp(),
        either=either_timestamp(),
    )(_interval_window(_option))


@entry("CronSchedule(expression)", BAD_CRON, names=("cron", "schedule", "expression"))
async def _cron(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    return schedule_works(CronSchedule(value))


@entry(
    "CronSchedule(timezone=)",
    BAD_TIMEZONE,
    names=("timezone", "time zone"),
    either=BAD_TIMEZONE | st.just(timezone(timedelta(hours=-5))),
    either_examples=(timezone(timedelta(hours=2)),),
)
async def _cron_timezone(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    return schedule_works(CronSchedule("0 3 * * *", timezone=value))


# tasks: the rest of the registry


async def _fixture(app: object) -> AsyncIterator[int]:
    yield 1


@entry("Tasks.fixture(name=)", bad_name(none_ok=True))
async def _fixture_name(stack: contextlib.AsyncExitStack, value: Any) -> None:
    registry().fixture(name=value)(_fixture)


@entry(
    "Tasks.middleware(func)",
    BAD_CALLABLE | st.just(_plain_function),
    names=("middleware",),
)
async def _middleware(stack: contextlib.AsyncExitStack, value: Any) -> None:
    registry().middleware(value)


@entry("Tasks.include(other)", TEXT | st.integers() | ODD, names=("include", "Tasks"))
async def _include(stack: contextlib.AsyncExitStack, value: Any) -> None:
    registry().include(value)


@entry("Tasks.runtime(scheduler=)", TEXT | st.integers() | ODD)
async def _runtime_scheduler(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await stack.enter_async_context(registry().runtime(app=None, scheduler=value))


@entry("Tasks.runtime(clock=)", TEXT | st.integers() | ODD)
async def _runtime_clock(stack: contextlib.AsyncExitStack, value: Any) -> None:
    sched = await scheduler(stack)
    await stack.enter_async_context(
        registry().runtime(app=None, scheduler=sched, clock=value)
    )


# workflows: the rest


@entry("Workflow.add(*steps)", st.integers() | TEXT | st.none(), names=("step", "add"))
async def _workflow_add(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Workflow().add(value)


@entry("Workflow.find(workflow_id=)", bad_name())
async def _workflow_find(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Workflow.find(value)


@entry(
    "Step.require(*requires)",
    st.integers() | TEXT | st.lists(st.integers(), min_size=1),
    names=("require",),
)
async def _step_require(stack: contextlib.AsyncExitStack, value: Any) -> None:
    Step(job_body).require(value)


# web: the rest


@entry(
    "aiohttp_jobs.get_scheduler(request)",
    TEXT | st.integers() | ODD | st.none(),
    names=("request",),
)
async def _get_scheduler(stack: contextlib.AsyncExitStack, value: Any) -> None:
    aiohttp_jobs.get_scheduler(value)


@entry(
    "aiohttp_jobs.get_scheduler_from_app(app)",
    TEXT | st.integers() | ODD | st.none(),
    names=("app",),
)
async def _from_app(stack: contextlib.AsyncExitStack, value: Any) -> None:
    aiohttp_jobs.get_scheduler_from_app(value)


@entry(
    "aiohttp_jobs.get_scheduler_from_request(request)",
    TEXT | st.integers() | ODD | st.none(),
    names=("request",),
)
async def _from_request(stack: contextlib.AsyncExitStack, value: Any) -> None:
    aiohttp_jobs.get_scheduler_from_request(value)


@entry(
    "aiohttp_jobs.atomic(handler)",
    BAD_CALLABLE | st.just(_plain_function),
    names=("atomic", "handler"),
)
async def _atomic(stack: contextlib.AsyncExitStack, value: Any) -> None:
    aiohttp_jobs.atomic(value)


# stores (public: the contract a backend implements; the runtime calls it)


async def memory_store(stack: contextlib.AsyncExitStack) -> MemoryStore:
    store = MemoryStore()
    await stack.enter_async_context(store)
    await store.save(TaskRecord(key="probe", task="probe", fire_at=1.7e9))
    return store


@entry(
    "MemoryStore.save(record)",
    TEXT | st.integers() | ODD | st.none(),
    names=("record",),
)
async def _store_save(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await (await memory_store(stack)).save(value)


@entry("MemoryStore.add_run(fire_at=)", bad_timestamp(naive_ok=True))
async def _store_add_run(stack: contextlib.AsyncExitStack, value: Any) -> None:
    await (await memory_store(stack)).add_run("probe", fire_at=value)


@entry("MemoryStore.acquire(limit=)", bad_count(1))
async def _store_acquire(stack: contextlib.AsyncExitStack, value: Any) -> None:
    store = await memory_store(stack)
    await store.acquire(now=1.8e9, owner="probe", lease_duration=60, limit=value)


# testing: FakeClock


@entry(
    "FakeClock(start=)",
    bad_timestamp(),
    either=either_timestamp(),
    examples=(NAN, INF),
)
async def _fake_clock(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    clock = FakeClock(value)

    async def check() -> None:
        repr(clock)
        clock.now()
        await clock.advance(0)

    return check


@entry(
    "FakeClock.advance(seconds=)",
    bad_seconds(none_ok=False),
    # Fake time passes one timer at a time: a day of an hourly task is enough.
    either=bad_seconds(none_ok=False, huge=False)
    | st.floats(min_value=0, max_value=86400)
    | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)),
    examples=(NAN, INF, 1e12),
)
async def _advance(stack: contextlib.AsyncExitStack, value: Any) -> FollowUp:
    rt, clock = await runtime(stack)
    await clock.advance(value)
    return runtime_works(rt, clock)


@entry("FakeClock.set(when=)", bad_timestamp(), examples=(NAN, INF))
async def _clock_set(stack: contextlib.AsyncExitStack, value: Any) -> None:
    _, clock = await runtime(stack)
    await clock.set(value)


@entry("FakeClock.call_at(when=)", bad_timestamp(naive_ok=True), examples=(NAN,))
async def _clock_call_at(stack: contextlib.AsyncExitStack, value: Any) -> None:
    FakeClock().call_at(value, lambda: None)


# -- which cases still fail, and why (kept exact: xfail is strict) ------------------

#: Entry point -> what it does with a bad value today (refusal property).
REFUSAL_XFAIL: dict[str, str] = {}
#: Entry point -> what goes wrong after an accepted value (working property).
WORKING_XFAIL: dict[str, str] = {}


def _params(entries: list[Entry], xfail: dict[str, str]) -> list[Any]:
    return [
        pytest.param(
            e,
            id=e.id,
            marks=[pytest.mark.xfail(strict=True, reason=xfail[e.id])]
            if e.id in xfail
            else [],
        )
        for e in entries
    ]


def _with_examples(test: Callable[..., None], values: tuple[Any, ...]) -> Any:
    for value in values:
        test = example(value=value)(test)
    return test


@pytest.mark.parametrize("entry", _params(ENTRIES, REFUSAL_XFAIL))
def test_bad_value_is_refused_naming_the_parameter(entry: Entry) -> None:
    @PROPERTY
    @given(value=entry.bad)
    def check(value: Any) -> None:
        assert_refused(entry, value, run(entry, value))

    _with_examples(check, entry.examples)()


@pytest.mark.parametrize(
    "entry", _params([e for e in ENTRIES if e.either is not None], WORKING_XFAIL)
)
def test_accepted_value_keeps_everything_working(entry: Entry) -> None:
    assert entry.either is not None

    @PROPERTY
    @given(value=entry.either)
    def check(value: Any) -> None:
        assert_clear_or_working(entry, value, run(entry, value))

    _with_examples(check, entry.either_examples)()


# -- the defects found, one by one --------------------------------------------------


def fraction(job: Job[Any]) -> float | None:
    return None if job.progress is None else job.progress.fraction


def closed(coro: object) -> bool:
    return inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED  # type: ignore[arg-type]


@pytest.mark.parametrize("tags", ["abc", None, [1], ("ok", b"x"), [""]])
async def test_spawn_refuses_bad_tags_and_closes_the_coroutine(tags: Any) -> None:
    async with Scheduler() as sched:
        coro = job_body()
        with pytest.raises(aiohttp_jobs.ConfigTypeError, match="tags"):
            await sched.spawn(coro, tags=tags)
        assert closed(coro)
        coro = job_body()
        with pytest.raises(aiohttp_jobs.ConfigTypeError, match="tags"):
            sched.spawn_nowait(coro, tags=tags)
        assert closed(coro)
        assert len(sched) == 0


async def test_spawn_keeps_tags_given_as_a_list() -> None:
    async with Scheduler() as sched:
        job = await sched.spawn(job_body(), tags=["a", "b"])
        assert job.tags == ("a", "b")
        await job.wait()


async def test_spawn_refuses_a_generator_with_not_awaitable_error() -> None:
    async with Scheduler() as sched:
        with pytest.raises(aiohttp_jobs.NotAwaitableError, match="generator"):
            await sched.spawn(_generator())  # type: ignore[arg-type]


async def test_spawn_refuses_the_same_coroutine_twice() -> None:
    async with Scheduler(limit=1) as sched:
        blocker = await sched.spawn(job_body(0.01))
        coro = job_body()
        job = await sched.spawn(coro)  # pending: not started yet
        spawned = r"coro .* already spawned"
        with pytest.raises(aiohttp_jobs.NotAwaitableError, match=spawned):
            await sched.spawn(coro)
        assert not closed(coro)  # it belongs to the first job, which still runs
        assert await job.wait() == "done"
        await blocker.wait()
        assert len(sched) == 0


async def test_spawn_refuses_a_coroutine_that_another_task_runs() -> None:
    event = asyncio.Event()

    async def waiting() -> None:
        await event.wait()

    coro = waiting()
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)  # the task starts it: it waits in an await
    async with Scheduler() as sched:
        with pytest.raises(aiohttp_jobs.NotAwaitableError, match="coro"):
            sched.spawn_nowait(coro)
    event.set()
    await task


@pytest.mark.parametrize(
    "option",
    [
        "close_timeout",
        "wait_timeout",
        "start_timeout_warning",
        "start_timeout_critical",
    ],
)
@pytest.mark.parametrize("value", [NAN, INF, -INF, "5", True, b"1"])
def test_scheduler_refuses_timeouts_that_cannot_work(option: str, value: Any) -> None:
    with pytest.raises(aiohttp_jobs.ConfigError, match=option):
        Scheduler(**{option: value})


def test_scheduler_refuses_a_string_timeout_with_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"close_timeout must be .*'5' \(str\)"):
        Scheduler(close_timeout="5")  # type: ignore[arg-type]


def test_scheduler_takes_timedelta_timeouts_as_seconds() -> None:
    sched = Scheduler(close_timeout=timedelta(seconds=2), wait_timeout=timedelta(0))  # type: ignore[arg-type]
    assert sched.close_timeout == 2.0
    assert sched.wait_timeout == 0.0


@pytest.mark.parametrize("timeout", [NAN, "1", -1, INF])
async def test_job_wait_refuses_a_bad_timeout_before_waiting(timeout: Any) -> None:
    async with Scheduler() as sched:
        job = await sched.spawn(job_body(0.01))
        with pytest.raises(aiohttp_jobs.ConfigError, match="timeout"):
            await job.wait(timeout=timeout)
        assert not job._waiters  # no waiter left behind
        with pytest.raises(aiohttp_jobs.ConfigError, match="timeout"):
            await job.close(timeout=timeout)
        assert job.active  # the bad close did not cancel it
        assert await job.wait() == "done"


@pytest.mark.parametrize("method", ["wait_idle", "wait_and_close"])
async def test_waiting_for_the_scheduler_refuses_a_nan_timeout(method: str) -> None:
    async with Scheduler() as sched:
        with pytest.raises(aiohttp_jobs.ConfigError, match="timeout"):
            await getattr(sched, method)(NAN)
        assert not sched.closed


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((NAN, 10), "done"),
        ((INF, 10), "done"),
        ((-1, 10), "done"),
        ((1, 0), "total"),
        ((1, NAN), "total"),
        ((1, INF), "total"),
        (("1", 10), "done"),
        ((1, 10, 5), "message"),
    ],
)
async def test_set_progress_refuses_values_json_cannot_carry(
    args: tuple[Any, ...], match: str
) -> None:
    async with Scheduler() as sched:
        job = await sched.spawn(job_body(0.01))
        with pytest.raises(aiohttp_jobs.ConfigError, match=match):
            job.set_progress(*args)
        assert job.progress is None
        job.set_progress(20, 10)  # beyond the total: the fraction stays 1
        await asyncio.sleep(0)
        assert fraction(job) == 1.0
        await job.wait()


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, None, "10"])
def test_event_stream_refuses_a_maxsize_below_one_at_the_call(maxsize: Any) -> None:
    with pytest.raises(aiohttp_jobs.ConfigError, match="maxsize"):
        EventBus().stream(maxsize=maxsize)


def test_history_query_refuses_an_unknown_state() -> None:
    with pytest.raises(aiohttp_jobs.ConfigError, match="state"):
        History(maxlen=5).query(state="done")
    assert History(maxlen=5).query(state="failed", limit=0) == []


async def _waiting(event: asyncio.Event | None) -> None:
    assert event is not None
    await event.wait()


def test_a_job_dropped_with_its_loop_does_not_refuse_a_coroutine_at_its_address() -> (
    None
):
    # A job that never ends (its event loop is dropped, the scheduler never
    # closed) must not make a later coroutine that happens to get the same
    # address look "already spawned".
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # "Task was destroyed"

    async def abandon() -> int:
        coro = _waiting(asyncio.Event())
        await Scheduler().spawn(coro)
        await asyncio.sleep(0)  # started: suspended in its await
        return id(coro)

    address = loop.run_until_complete(abandon())
    loop.close()
    del loop
    gc.collect()
    made: list[Any] = []
    try:
        for _ in range(100_000):
            coro = _waiting(None)
            made.append(coro)
            if id(coro) == address:
                break
        else:
            pytest.skip("no coroutine was given the freed address")

        async def spawn_again() -> None:
            async with Scheduler() as sched:
                job = sched.spawn_nowait(coro)  # not refused
                await job.close()

        asyncio.run(spawn_again())
    finally:
        for other in made:
            other.close()

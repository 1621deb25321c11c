"""The event stream: listeners and buffered streams."""

from __future__ import annotations

import asyncio

import pytest

import aiohttp_jobs
from aiohttp_jobs import (
    EventKind,
    Scheduler,
    current_job,
)
from tests.helpers import returning


async def test_listeners_see_every_state_change_in_order() -> None:
    events: list[tuple[EventKind, str]] = []
    scheduler = Scheduler(limit=1)
    scheduler.events.add_listener(lambda e: events.append((e.kind, e.job.name)))

    async def work() -> None:
        current_job().set_progress(1)

    first = await scheduler.spawn(work(), "a")
    await scheduler.spawn(returning(0), "b")  # pending behind a
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
        await (await scheduler.spawn(returning(1))).wait()  # 3 events
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
    await (await scheduler.spawn(returning(1))).wait()
    await scheduler.close()
    assert EventKind.FINISHED in seen
    assert "listener bug" in caplog.text


async def test_a_stream_reader_returns_when_its_scheduler_closes() -> None:
    scheduler = Scheduler()
    seen: list[EventKind] = []

    async def read() -> None:
        async with scheduler.events.stream() as events:
            seen.extend([event.kind async for event in events])

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    await scheduler.spawn(asyncio.Event().wait())
    await scheduler.close()
    await asyncio.wait_for(reader, timeout=5)  # hung forever before
    # The events buffered before the end are still read.
    assert seen == [EventKind.CREATED, EventKind.STARTED, EventKind.FINISHED]
    assert scheduler.events.closed

    async with scheduler.events.stream() as late:  # opened after the close
        assert [event async for event in late] == []

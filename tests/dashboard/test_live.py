"""Live updates: one coalescing listener on the scheduler feeds Server-Sent
Events; resumable with Last-Event-ID; every stream ends at once on shutdown."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import EventKind, JobEvent, dashboard
from aiohttp_jobs.dashboard import _live
from aiohttp_jobs.dashboard._live import BROADCASTER_KEY, Broadcaster
from aiohttp_jobs.stores import MemoryStore
from aiohttp_jobs.testing import FakeClock
from tests.conftest import Serve
from tests.dashboard.support import (
    ClientFactory,
    finished,
    forever,
    make_app,
    returning,
    scheduler_of,
)


async def _event(content: aiohttp.StreamReader) -> dict[str, str]:
    """The next event of an SSE stream (pings skipped)."""
    fields: dict[str, str] = {}
    while True:
        line = (await content.readline()).decode()
        if line == "":
            raise EOFError("the stream ended")
        line = line.rstrip("\r\n")
        if not line:
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.lstrip(" ")


def _data(frame: bytes) -> dict[str, Any]:
    """The JSON of one SSE frame the broadcaster built."""
    lines = frame.decode().split("\n")
    assert lines[1] == "event: update" and lines[-2:] == ["", ""]
    return dict(json.loads(lines[2][len("data: ") :]))


async def _updates_until(
    content: aiohttp.StreamReader, done: Any
) -> list[dict[str, Any]]:
    messages = []
    while True:
        event = await asyncio.wait_for(_event(content), 10)
        if event.get("event") == "update":
            data = json.loads(event["data"])
            messages.append(data)
            if done(data):
                return messages


def _broadcaster(client: Any) -> Broadcaster:
    """The live feed of the dashboard mounted by :func:`make_app`."""
    return client.app._subapps[0][BROADCASTER_KEY]  # type: ignore[no-any-return]


async def _until(done: Any, nudge: Any = None) -> None:
    """Look at ``done()`` until it holds (10 s at most), awaiting ``nudge()``
    between two looks if given; the caller asserts what it waited for."""
    for _ in range(400):
        if done():
            return
        if nudge is not None:
            await nudge()
        await asyncio.sleep(0.025)


async def test_a_job_change_reaches_the_stream(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    response = await client.get("/jobs/stream")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-store"
    hello = await _event(response.content)
    assert hello["event"] == "hello" and hello["id"].isdigit()
    job = await finished(scheduler, returning(1), "watched")

    def saw_it(data: dict[str, Any]) -> bool:
        return any(
            j["id"] == job.id and j["state"] == "succeeded" for j in data["jobs"]
        )

    messages = await _updates_until(response.content, saw_it)
    assert messages[-1]["counts"] == {"running": 0, "pending": 0, "scheduled": 0}
    response.close()


async def test_many_changes_make_few_messages(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    response = await client.get("/jobs/stream")
    await _event(response.content)  # hello
    jobs = [await scheduler.spawn(returning(n), "many") for n in range(1000)]
    await asyncio.gather(*(job.wait() for job in jobs))
    messages = []
    while True:  # until the stream goes quiet
        try:
            event = await asyncio.wait_for(_event(response.content), 1.0)
        except TimeoutError:
            break
        if event.get("event") == "update":
            messages.append(json.loads(event["data"]))
    # 3,000 events (created, started, finished) in a handful of messages; a
    # message lists a job once, however often it changed, and at most 50
    # jobs: beyond that it says "more" (the page reloads its content).
    assert 1 <= len(messages) < 30
    seen = {j["id"] for data in messages for j in data["jobs"]}
    assert jobs[-1].id in seen or any(data["more"] for data in messages)
    for data in messages:
        ids = [j["id"] for j in data["jobs"]]
        assert len(ids) == len(set(ids)) <= 50
    response.close()


async def test_resume_with_last_event_id(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    # Another tab stays open, so the dashboard keeps listening meanwhile (with
    # no stream open it stops, and a resume gets a refresh: see below).
    other = await client.get("/jobs/stream")
    await _event(other.content)
    response = await client.get("/jobs/stream")
    hello = await _event(response.content)
    await finished(scheduler, returning(1), "one")
    first = (await _updates_until(response.content, lambda d: True))[-1]
    response.close()
    # Resuming from the hello: the missed message is sent again, no refresh.
    response = await client.get("/jobs/stream", headers={"Last-Event-ID": hello["id"]})
    event = await _event(response.content)
    assert event["event"] == "update" and json.loads(event["data"]) == first
    response.close()
    # An id this process never gave (another process, or too old): refresh.
    for stale in ("1", str(int(hello["id"]) + 10**6)):
        response = await client.get("/jobs/stream", headers={"Last-Event-ID": stale})
        event = await _event(response.content)
        assert event["event"] == "refresh"
        response.close()
    # The query parameter works too (a resumed EventSource cannot set headers).
    response = await client.get(f"/jobs/stream?last={first['seq']}")
    job = await finished(scheduler, returning(2), "two")
    updates = await _updates_until(
        response.content, lambda d: any(j["id"] == job.id for j in d["jobs"])
    )
    assert updates[0]["seq"] == first["seq"] + 1
    response.close()
    other.close()


def test_the_broadcaster_coalesces_and_knows_what_it_dropped() -> None:
    async def main() -> None:
        async with aiohttp_jobs.Scheduler() as scheduler:
            job = await scheduler.spawn(forever(), "busy")
            broadcaster = Broadcaster(keep=3)
            start = broadcaster.seq
            for kind in (EventKind.CREATED, EventKind.STARTED, EventKind.PROGRESS):
                broadcaster._listen(JobEvent(kind, job, 0.0))
            broadcaster.publish()
            [(seq, frame)] = broadcaster.after(start) or []
            assert seq == start + 1
            assert [j["id"] for j in _data(frame)["jobs"]] == [job.id]
            assert broadcaster.after(seq) == []
            for _ in range(4):
                broadcaster.publish()
            assert broadcaster.after(start) is None  # dropped: refresh
            assert broadcaster.after(seq + 1) is not None
            assert broadcaster.after(seq + 100) is None  # not ours
            await job.close()

    asyncio.run(main())


async def test_the_listener_is_attached_only_while_someone_watches(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    assert not scheduler.events  # nobody listens: emitting costs nothing
    response = await client.get("/jobs/stream")
    await _event(response.content)
    assert scheduler.events
    response.close()
    broadcaster = _broadcaster(client)
    # Each finished job wakes the stream, which then sees it is closed.
    await _until(
        lambda: broadcaster.clients == 0,
        lambda: finished(scheduler, returning(0), "nudge"),
    )
    assert broadcaster.clients == 0
    assert not scheduler.events


async def test_a_closed_stream_is_let_go_and_resuming_across_the_gap_refreshes(
    aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No ping during the test: the closed stream must be noticed without one.
    monkeypatch.setattr(_live, "PING_INTERVAL", 3600.0)
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    broadcaster = _broadcaster(client)
    response = await client.get("/jobs/stream")
    hello = await _event(response.content)
    response.close()  # a tab hidden: the browser closes its stream
    # Nothing is written to it meanwhile: no ping, no update.
    await _until(lambda: broadcaster.clients == 0)
    assert broadcaster.clients == 0
    assert not scheduler.events  # the last stream gone: nobody listens
    # A job finishes while nobody listens: nothing records it.
    missed = await finished(scheduler, returning(1), "missed")
    # Back in view, the tab resumes from its last id: the gap cannot be
    # replayed, so it is told to refresh, and the listener is back.
    response = await client.get("/jobs/stream", headers={"Last-Event-ID": hello["id"]})
    refresh = await asyncio.wait_for(_event(response.content), 10)
    assert refresh["event"] == "refresh"
    assert scheduler.events
    job = await finished(scheduler, returning(2), "after")
    updates = await _updates_until(
        response.content, lambda d: any(j["id"] == job.id for j in d["jobs"])
    )
    assert all(j["id"] != missed.id for d in updates for j in d["jobs"])
    response.close()


async def _rendered_seq(client: Any, path: str) -> str:
    """The feed id a page was rendered at (its body's ``data-seq``)."""
    page = await client.get(path)
    found = re.search(r'data-seq="(\d+)"', await page.text())
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("other_tab", [True, False], ids=["other tab", "no other tab"])
async def test_a_page_resumes_from_the_id_it_was_rendered_at(
    aiohttp_client: ClientFactory, other_tab: bool
) -> None:
    # A page is rendered, then a job finishes before the page's stream
    # connects: the stream resumes from the id the page was rendered at and
    # replays that change, whether another tab kept the feed listening or
    # nobody listened when the page was asked for (the page keeps the feed
    # recording until its own stream connects).
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    other = None
    if other_tab:
        other = await client.get("/jobs/stream")
        assert (await _event(other.content))["event"] == "hello"
    else:
        assert not scheduler.events
    seq = await _rendered_seq(client, "/jobs/jobs")
    job = await finished(scheduler, returning(1), "between-render-and-stream")
    response = await client.get("/jobs/stream", params={"last": seq})
    updates = await _updates_until(
        response.content, lambda d: any(j["id"] == job.id for j in d["jobs"])
    )
    assert updates
    response.close()
    if other is not None:
        other.close()


async def test_a_page_whose_stream_never_connects_stops_the_recording(
    aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_live, "HOLD", 0.2)
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    api = await client.get("/jobs/api/jobs")  # the API opens no stream
    assert api.status == 200 and not scheduler.events
    seq = await _rendered_seq(client, "/jobs/jobs")
    assert scheduler.events  # recording for the page's stream
    await _until(lambda: not scheduler.events)
    assert not scheduler.events  # it never came: nobody listens any more
    # A stream that comes after all cannot know what it missed: it refreshes.
    await finished(scheduler, returning(1), "missed")
    response = await client.get("/jobs/stream", params={"last": seq})
    refresh = await asyncio.wait_for(_event(response.content), 10)
    assert refresh["event"] == "refresh"
    response.close()


async def test_shutdown_ends_every_stream_at_once(serve: Serve) -> None:
    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=30.0)
    dashboard.setup(app)
    runner, port = await serve(app, shutdown_timeout=60.0)
    async with aiohttp.ClientSession() as session:
        streams = [
            await session.get(f"http://127.0.0.1:{port}/jobs/stream") for _ in range(3)
        ]
        for stream in streams:
            assert (await _event(stream.content))["event"] == "hello"
        # Runs the shutdown hooks (the dashboard's first), then waits for the
        # handlers: with the streams open it would wait shutdown_timeout.
        cleanup = asyncio.ensure_future(runner.cleanup())
        for stream in streams:
            try:
                while True:
                    await asyncio.wait_for(_event(stream.content), 10)
            except (EOFError, aiohttp.ClientPayloadError):
                pass
        await asyncio.wait_for(cleanup, 10)


async def test_open_streams_are_reported_to_the_metrics(
    aiohttp_client: ClientFactory,
) -> None:
    from aiohttp_jobs import metrics

    app = make_app()
    collected = metrics.setup(app)
    client = await aiohttp_client(app)
    response = await client.get("/jobs/stream")
    await _event(response.content)
    assert collected.streams == 1
    text = await (await client.get("/jobs/metrics")).text()
    assert "aiohttp_jobs_dashboard_streams 1.0" in text
    response.close()
    broadcaster = _broadcaster(client)
    scheduler = scheduler_of(client)
    # Each finished job wakes the stream, which then sees it is closed.
    await _until(
        lambda: broadcaster.clients == 0,
        lambda: finished(scheduler, returning(0), "nudge"),
    )
    assert collected.streams == 0


def test_a_busy_scheduler_is_sampled_instead_of_listened_to() -> None:
    async def main() -> None:
        async with aiohttp_jobs.Scheduler(limit=None) as scheduler:
            broadcaster = Broadcaster()
            broadcaster._attach(scheduler, None)
            assert scheduler.events and not broadcaster.busy
            jobs = [await scheduler.spawn(returning(n), "burst") for n in range(400)]
            await asyncio.gather(*(job.wait() for job in jobs))
            # 1,200 events in one interval: it stopped listening, so the
            # scheduler builds no more events for it.
            assert broadcaster.busy and not scheduler.events
            broadcaster._sample()  # the rest of the burst: still busy
            assert broadcaster.busy
            long = await scheduler.spawn(forever(), "long")
            try:
                start = broadcaster.seq
                broadcaster._sample()  # nothing finished since: quiet again
                [(_, frame)] = broadcaster.after(start) or []
                data = _data(frame)
                assert data["more"] and [j["id"] for j in data["jobs"]] == [long.id]
                assert data["counts"]["running"] == 1
                assert not broadcaster.busy and scheduler.events
            finally:
                await long.close()
                broadcaster._detach()
            assert not scheduler.events

    asyncio.run(main())


class _SharedStore(MemoryStore):
    """Stands for a store other processes share (SQLite, Redis): the feed
    watches its leases, which it does not for the in-process memory store."""


def _slow_tasks(store: MemoryStore, owner: str) -> aiohttp_jobs.Tasks:
    tasks = aiohttp_jobs.Tasks(store=store, owner=owner)

    @tasks.task(keyword="slow", lease_duration=30)
    async def slow(ctx: aiohttp_jobs.Context) -> None:
        await asyncio.Event().wait()

    return tasks


async def test_a_run_starting_on_another_instance_makes_the_tasks_page_reload(
    aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run raises no event on this instance's scheduler: the feed notices
    # it in the shared store's leases.
    monkeypatch.setattr(_live, "CLUSTER_INTERVAL", 0.02)
    shared = _SharedStore()
    clock = FakeClock(1_767_225_600.0)
    async with (
        aiohttp_jobs.Scheduler(limit=None) as elsewhere,
        _slow_tasks(shared, "b").runtime(
            app=None, scheduler=elsewhere, clock=clock
        ) as other,
    ):
        client = await aiohttp_client(
            make_app(tasks=_slow_tasks(shared, "a"), clock=clock)
        )
        response = await client.get("/jobs/stream")
        assert (await _event(response.content))["event"] == "hello"
        await asyncio.sleep(0.1)  # the feed's first look: nothing runs
        [run_id] = await other.fire("slow")
        updates = await _updates_until(response.content, lambda d: d["tasks"])
        assert updates[-1]["jobs"] == []  # nothing ran here
        assert await other.cancel_run(run_id)
        await clock.advance(10)  # b hears of it at its next heartbeat
        await other.wait_idle()
        await _updates_until(response.content, lambda d: d["tasks"])  # it ended
        response.close()


@pytest.mark.parametrize("store", [MemoryStore, _SharedStore], ids=["own", "shared"])
def test_only_a_shared_store_has_its_leases_read(store: type[MemoryStore]) -> None:
    # The in-process memory store holds this instance's runs only, which
    # raise events already: reading its leases would be a call for nothing.
    async def main() -> None:
        async with (
            aiohttp_jobs.Scheduler(limit=None) as scheduler,
            _slow_tasks(store(), "a").runtime(
                app=None, scheduler=scheduler, clock=FakeClock(0.0)
            ) as runtime,
        ):
            broadcaster = Broadcaster()
            broadcaster._attach(scheduler, runtime)
            try:
                assert (broadcaster._look is not None) == (store is _SharedStore)
            finally:
                broadcaster._detach()

    asyncio.run(main())


def test_every_page_keeps_the_feed_recording_for_its_stream() -> None:
    # The pages are the GET routes with a JSON twin under api/: one added
    # without being listed would render a page whose stream misses changes.
    routes = make_app()._subapps[0].router.routes()
    names = {route.name for route in routes if route.method == "GET"}
    assert _live.PAGES == {name for name in names if f"api_{name}" in names}

"""Live updates: one listener on the scheduler's events feeds every open
dashboard through Server-Sent Events.

Changes are coalesced: the listener only notes which jobs changed; every
``interval`` (0.25 s) one message with their latest state is built, numbered
and kept in a short ring, and every stream sends it. So a stream gets at most
four messages a second however many jobs change, and the scheduler's cost does
not grow with the number of streams. A client that reconnects with
``Last-Event-ID`` gets what it missed if the ring still holds it, else a
``refresh`` event (reload the page). The listener is attached only while a
stream is open, or for ``HOLD`` seconds after a page was rendered (so a change
made between the page's rendering and its stream connecting is recorded, and
the stream replays it); when neither holds any more the ring is emptied and
the next id skipped, since nothing is recorded until a stream connects again:
a client resuming across that gap gets ``refresh``. Each interval the broadcaster also
looks at every stream's connection, so a closed one (a hidden tab pauses its
stream) is let go within an interval rather than at its next ping. On
shutdown every stream ends at once.

Runs of other instances sharing the task store raise no event here: while
the feed is attached, and the store is shared (not the in-process memory
store), it looks at the store's leases every ``CLUSTER_INTERVAL`` seconds (one
store call, whatever the number of streams) and tells the Tasks page to reload
when a run started, ended or was taken over elsewhere.

A listener makes the scheduler build an event for every change; at thousands
of jobs a second that is a good part of its time. So when more than
``BUSY_EVENTS`` events come within one interval, the broadcaster stops
listening and samples the scheduler each interval instead (its counts, its
running jobs, how many finished), telling clients to reload what they show
(``"more": true``), until fewer than ``QUIET_JOBS`` jobs finish in an interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from aiohttp_sse import sse_response

from .. import metrics
from .._core.events import Event, JobEvent
from .._core.job import Job, JobState
from .._core.scheduler import Scheduler
from .._tasks.runtime import TaskRuntime
from ..stores.memory import MemoryStore
from ..web._state import SCHEDULER_KEY, TASKS_KEY
from ._config import ROOT_KEY
from ._data import job_row

__all__ = ["BROADCASTER_KEY", "Broadcaster", "stream"]

logger = logging.getLogger("aiohttp_jobs.dashboard")

#: Most jobs one message lists; beyond it the message says ``"more": true``.
MAX_JOBS = 50
#: Events within one interval that make the broadcaster stop listening and
#: sample the scheduler instead (a listener costs the scheduler an event
#: object per change: at thousands of jobs a second, a good part of its time).
BUSY_EVENTS = 600
#: Jobs finished within one sampled interval under which it listens again.
QUIET_JOBS = 100
PING_INTERVAL = 15.0
#: Seconds between two looks at the shared store's leases (other instances'
#: runs) while someone watches.
CLUSTER_INTERVAL = 2.0
#: Seconds the feed keeps recording after a page was rendered, waiting for
#: that page's stream to connect (a later stream is told to refresh).
HOLD = 5.0
#: The pages that open a stream (the API and static files do not).
PAGES: Final = frozenset(
    {"overview", "jobs", "bulk_cancel_preview", "job", "tasks", "workflows"}
    | {"workflow", "audit"}
)


class Broadcaster:
    """The coalescing fan-out from one scheduler to every open stream."""

    def __init__(self, *, interval: float = 0.25, keep: int = 64) -> None:
        self.interval = interval
        self.scheduler: Scheduler | None = None
        self.clients = 0
        self.closing = False
        #: Sampling instead of listening (see :meth:`_go_busy`).
        self.busy = False
        # Ids unique across restarts: a client resuming against a new process
        # has an id the ring does not hold, and refreshes.
        self.seq = int(time.time() * 1000)
        self.messages: deque[tuple[int, bytes]] = deque(maxlen=keep)
        self._changed: dict[str, Job[Any]] = {}
        self._more = False
        self._events = 0
        self._seen: Job[Any] | None = None
        self._counts: tuple[int, int, int] | None = None
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        #: The loop time until which a rendered page keeps the feed recording.
        self._held_until = 0.0
        #: The task runtime whose shared store is watched for other
        #: instances' runs, the look at it under way, when the next one is
        #: due (loop time), and what the last one saw.
        self.runtime: TaskRuntime | None = None
        self._look: asyncio.Task[None] | None = None
        self._next_look = 0.0
        self._cluster_seen: frozenset[tuple[str, str, int, bool]] | None = None
        self._tasks_changed = False
        #: Each open stream's request and the future set when it is gone.
        self._streams: dict[asyncio.Future[None], web.BaseRequest] = {}

    # -- the scheduler side ------------------------------------------------------

    def _listen(self, event: Event) -> None:
        self._events += 1
        if self._events > BUSY_EVENTS:
            self._go_busy()
        elif type(event) is JobEvent:
            job = event.job
            changed = self._changed
            if len(changed) < MAX_JOBS or job.id in changed:
                changed[job.id] = job
            else:
                self._more = True

    def _go_busy(self) -> None:
        """Too many events for one message: stop listening (the scheduler then
        builds no events at all) and sample it every interval instead, until
        it is quiet again. Clients are told to reload (``more``)."""
        scheduler = self.scheduler
        if scheduler is None or self.busy:
            return
        scheduler.events.remove_listener(self._listen)
        self.busy = True
        self._more = True
        self._seen = next(scheduler.history.newest(), None)

    def _go_quiet(self, scheduler: Scheduler) -> None:
        self.busy = False
        self._seen = None
        scheduler.events.add_listener(self._listen)

    def _look_at_cluster(self, now: float) -> None:
        """Every ``CLUSTER_INTERVAL``, read the shared store's leases (in a task
        of its own: a slow store does not hold up the flushes), unless the
        previous read is still under way."""
        runtime = self.runtime
        if runtime is None or now < self._next_look:
            return
        if self._look is None or self._look.done():
            self._next_look = now + CLUSTER_INTERVAL
            self._look = asyncio.get_running_loop().create_task(self._leases(runtime))

    async def _leases(self, runtime: TaskRuntime) -> None:
        try:
            seen = frozenset(
                (lease.run_id, lease.owner, lease.attempt, lease.cancelled)
                for lease in await runtime.leases()
            )
        except Exception:  # the store is away: the runner logs it
            return
        if self._cluster_seen is not None and seen != self._cluster_seen:
            self._tasks_changed = True
        self._cluster_seen = seen

    def hold(self, scheduler: Scheduler, runtime: TaskRuntime | None) -> None:
        """A page is being rendered: record changes from now on, for ``HOLD``
        seconds or for as long as a stream is open, so its stream (connecting
        with the id the page was rendered at) can replay them."""
        if self.closing:
            return
        self._held_until = asyncio.get_running_loop().time() + HOLD
        self._attach(scheduler, runtime)

    def _held(self) -> bool:
        return asyncio.get_running_loop().time() < self._held_until

    def release(self) -> None:
        """A stream ended: stop recording if no other stream is open and no
        page rendered lately waits for its own."""
        if self.clients == 0 and not self._held():
            self._detach()

    def _attach(self, scheduler: Scheduler, runtime: TaskRuntime | None) -> None:
        """Start recording; with *runtime* on a shared store (not the
        in-process memory store), watch its leases too."""
        if self.scheduler is not None:
            return
        if runtime is not None and type(runtime.store) is not MemoryStore:
            self.runtime = runtime
        self.scheduler = scheduler
        self.busy = False
        self._events = 0
        scheduler.events.add_listener(self._listen)
        loop = asyncio.get_running_loop()
        self._flusher = loop.create_task(self._flush_loop())
        self._look_at_cluster(loop.time())  # what runs now, to compare with

    def _detach(self) -> None:
        scheduler = self.scheduler
        if scheduler is not None and not self.busy:
            scheduler.events.remove_listener(self._listen)
        self.scheduler = None
        self.busy = False
        self._seen = None
        self._changed.clear()
        self._more = False
        # Nothing is recorded until a stream connects again: no id given so far
        # can be resumed (the skipped id makes even the newest one unknown).
        self.messages.clear()
        self.seq += 1
        self._held_until = 0.0
        self._cluster_seen = None
        self._tasks_changed = False
        self._next_look = 0.0
        look, self._look = self._look, None
        if look is not None:
            look.cancel()
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not asyncio.current_task():
            flusher.cancel()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._reap()
            if self.clients == 0 and not self._held():
                self._detach()  # the pages rendered lately never connected
                return
            self._look_at_cluster(asyncio.get_running_loop().time())
            self._events = 0
            if self.busy:
                self._sample()
            elif self._changed or self._more or self._tasks_changed:
                self.publish()

    def watch(self, request: web.BaseRequest) -> asyncio.Future[None]:
        """A future set once *request*'s connection is closed (looked at every
        interval), to be passed to :meth:`unwatch` when the stream ends."""
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._streams[gone] = request
        return gone

    def unwatch(self, gone: asyncio.Future[None]) -> None:
        self._streams.pop(gone, None)
        gone.cancel()

    def _reap(self) -> None:
        """Let go of the streams whose client went away, without waiting for a
        ping to fail on them."""
        for gone, request in list(self._streams.items()):
            transport = request.transport
            if transport is None or transport.is_closing():
                del self._streams[gone]
                if not gone.done():
                    gone.set_result(None)

    def _sample(self) -> None:
        """One look at a busy scheduler: its running jobs (their progress) and
        how many jobs finished since the last look."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        finished = 0
        newest = None
        seen = self._seen
        for job in scheduler.history.newest():
            if job is seen or finished >= QUIET_JOBS:
                break
            if newest is None:
                newest = job
            finished += 1
        if newest is not None:
            self._seen = newest
        counts = (
            scheduler.active_count,
            scheduler.pending_count,
            scheduler.scheduled_count,
        )
        if finished or counts != self._counts:
            self._counts = counts
            for job in itertools.islice(scheduler, MAX_JOBS):
                if job.state is JobState.RUNNING:
                    self._changed[job.id] = job
            self._more = True
            self.publish()
        if finished < QUIET_JOBS:
            self._go_quiet(scheduler)

    def publish(self) -> None:
        """Build one message from what changed since the last one."""
        scheduler = self.scheduler
        changed, self._changed = self._changed, {}
        more, self._more = self._more, False
        jobs = [job_row(job) for job in changed.values()]
        workflows = sorted(
            {
                tag[len("workflow:") :]
                for job in changed.values()
                for tag in job.tags
                if tag.startswith("workflow:")
            }
        )
        tasks = self._tasks_changed or any(
            job.tags[:1] == ("task",) for job in changed.values()
        )
        self._tasks_changed = False
        counts = (
            None
            if scheduler is None
            else {
                "running": scheduler.active_count,
                "pending": scheduler.pending_count,
                "scheduled": scheduler.scheduled_count,
            }
        )
        self.seq += 1
        payload = {
            "seq": self.seq,
            "jobs": jobs,
            "workflows": workflows,
            "tasks": tasks,
            "counts": counts,
            "more": more,
        }
        data = json.dumps(payload, separators=(",", ":"))  # one line: no "\n"
        # The frame is built once and written as it is to every stream.
        frame = f"id: {self.seq}\nevent: update\ndata: {data}\n\n".encode()
        self.messages.append((self.seq, frame))
        self._wake.set()
        self._wake = asyncio.Event()

    # -- the client side ---------------------------------------------------------

    def after(self, last: int) -> list[tuple[int, bytes]] | None:
        """The messages after *last*; ``None`` when some were dropped (or *last*
        is not one of ours): the client must refresh."""
        if last == self.seq:
            return []
        messages = self.messages
        if not messages or last > self.seq or last < messages[0][0] - 1:
            return None
        return [m for m in messages if m[0] > last]

    def close(self) -> None:
        """End every stream now (graceful shutdown)."""
        self.closing = True
        self._wake.set()
        self._detach()


BROADCASTER_KEY: Final = web.AppKey("aiohttp_jobs.dashboard.broadcaster", Broadcaster)

#: The live feed's message id as it was when the current request arrived
#: (before its page's data was read); set for each request by :func:`note_seq`.
SEQ_AT_START: Final[contextvars.ContextVar[int | None]] = contextvars.ContextVar(
    "aiohttp_jobs.dashboard.seq", default=None
)


@web.middleware
async def note_seq(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Remember the feed's id before the page reads its data: the page's stream
    resumes from it, so a change made while the page was being built or loaded
    still reaches it (or makes it refresh)."""
    broadcaster = request.app[BROADCASTER_KEY]
    route = request.match_info.route.name
    if request.method == "GET" and route in PAGES:
        scheduler = request.config_dict.get(SCHEDULER_KEY)
        if scheduler is not None:
            broadcaster.hold(scheduler, request.config_dict.get(TASKS_KEY))
    token = SEQ_AT_START.set(broadcaster.seq)
    try:
        return await handler(request)
    finally:
        SEQ_AT_START.reset(token)


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last")
    if raw is None or not raw.isdigit() or len(raw) > 20:
        return None
    return int(raw)


async def stream(request: web.Request, scheduler: Scheduler) -> web.StreamResponse:
    """The SSE endpoint: ``update`` events (JSON), ``refresh`` when the client
    must reload, comments as pings."""
    broadcaster = request.app[BROADCASTER_KEY]
    if broadcaster.closing:
        raise web.HTTPServiceUnavailable(text="shutting down\n")
    broadcaster._attach(scheduler, request.config_dict.get(TASKS_KEY))
    broadcaster.clients += 1
    _clients_changed(request, broadcaster)
    try:
        async with sse_response(request, ping_interval=PING_INTERVAL) as resp:
            pinged = asyncio.ensure_future(resp.wait())
            closed = broadcaster.watch(request)
            try:
                last = _last_event_id(request)
                if last is None:
                    last = broadcaster.seq
                    await resp.send("{}", id=str(last), event="hello", retry=3000)
                while not broadcaster.closing:
                    pending = broadcaster.after(last)
                    if pending is None:
                        last = broadcaster.seq
                        await resp.send("{}", id=str(last), event="refresh")
                    else:
                        for seq, frame in pending:
                            await resp.write(frame)
                            last = seq
                    woken = asyncio.ensure_future(broadcaster._wake.wait())
                    try:
                        await asyncio.wait(
                            (pinged, closed, woken),
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        woken.cancel()
                    if pinged.done() or closed.done():
                        break
            except (ConnectionResetError, RuntimeError):
                pass  # the client went away while a message was written
            finally:
                broadcaster.unwatch(closed)
                pinged.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pinged
        return resp
    finally:
        broadcaster.clients -= 1
        broadcaster.release()
        _clients_changed(request, broadcaster)


def _clients_changed(request: web.Request, broadcaster: Broadcaster) -> None:
    try:
        metrics.dashboard_streams_changed(request.app[ROOT_KEY], broadcaster.clients)
    except Exception:  # metrics never break the dashboard
        logger.exception("metrics: dashboard_streams_changed failed")

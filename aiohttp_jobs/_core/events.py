"""The stream of job state changes (and of the scheduler's own settings).

Listeners are plain callables run synchronously in the event loop thread right
after the change; streams are async iterators with a bounded buffer, for consumers
such as a live dashboard that may fall behind. Emitting costs one attribute check
when nobody listens.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .._checks import MAX_COUNT, check_callable, check_count
from .job import Job

__all__ = [
    "Event",
    "EventBus",
    "EventKind",
    "EventStream",
    "JobEvent",
    "Listener",
    "SchedulerEvent",
]

logger = logging.getLogger("aiohttp_jobs")


class EventKind(str, enum.Enum):
    """What happened to a job (or, for ``RECONFIGURED``, to the scheduler)."""

    CREATED = "created"  #: spawned; pending (or scheduled) until it starts
    STARTED = "started"  #: its task started running
    PROGRESS = "progress"  #: the job reported progress
    FINISHED = "finished"  #: reached a final state (see ``job.state``)
    #: limits, reserves or pool sizes changed (a :class:`SchedulerEvent`)
    RECONFIGURED = "reconfigured"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One change of one job. ``at`` is wall-clock time (``time.time()``)."""

    kind: EventKind
    job: Job[object]
    at: float


@dataclass(frozen=True, slots=True)
class SchedulerEvent:
    """A change of the scheduler itself: ``changes`` maps each setting that
    changed to its ``(old, new)`` values. ``at`` is wall-clock time."""

    kind: EventKind
    changes: Mapping[str, tuple[Any, Any]]
    at: float


#: What listeners and streams receive: tell them apart by ``kind`` (or type).
Event = JobEvent | SchedulerEvent
Listener = Callable[[Event], None]


class EventStream:
    """An async iterator over events, buffered up to ``maxsize``.

    When the consumer falls behind, the oldest events are dropped and counted in
    its ``dropped`` attribute, so a slow reader never slows the scheduler down.
    """

    __slots__ = ("_buffer", "_closed", "_waiter", "dropped", "maxsize")

    def __init__(self, *, maxsize: int) -> None:
        self.maxsize = check_count("maxsize", maxsize, minimum=1, maximum=MAX_COUNT)
        self.dropped = 0
        self._buffer: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<EventStream buffered={len(self._buffer)} dropped={self.dropped}>"

    def _push(self, event: Event) -> None:
        if self._closed:  # ended: its reader returns after what it buffered
            return
        if len(self._buffer) >= self.maxsize:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close(self) -> None:
        self._closed = True
        self._wake()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._buffer.popleft()


class EventBus:
    """Fan-out of :class:`JobEvent` to listeners and streams."""

    __slots__ = ("_closed", "_listeners", "_streams")

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._streams: set[EventStream] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<EventBus listeners={len(self._listeners)}>"

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def add_listener(self, listener: Listener) -> None:
        """Call *listener* with every event from now on."""
        check_callable("listener", listener)
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling *listener*; unknown listeners are ignored."""
        try:
            self._listeners.remove(listener)
        except ValueError:
            pass

    def stream(
        self, *, maxsize: int = 1000
    ) -> AbstractAsyncContextManager[EventStream]:
        """Subscribe for the duration of the ``async with`` block.

        The stream buffers up to *maxsize* events (an integer >= 1), dropping the
        oldest ones when its reader falls behind.
        """
        # Checked here, at the call, rather than when the block is entered.
        return self._stream(EventStream(maxsize=maxsize))

    @asynccontextmanager
    async def _stream(self, stream: EventStream) -> AsyncIterator[EventStream]:
        if self._closed:
            stream._close()  # its scheduler has closed: nothing more will come
            yield stream
            return
        push = stream._push
        self.add_listener(push)
        self._streams.add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)
            self.remove_listener(push)
            stream._close()

    def emit(self, event: Event) -> None:
        """Deliver *event*; a failing listener is logged and does not stop others."""
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed on %r", listener, event)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the scheduler has closed)."""
        return self._closed

    def close(self) -> None:
        """End every stream: its reader gets the events already buffered, then
        the ``async for`` ends. Called when the scheduler has closed; streams
        opened later end at once. Plain listeners stay attached (a job that
        outlives ``close_timeout`` still reports its end to them)."""
        self._closed = True
        for stream in self._streams:
            stream._close()
        self._streams.clear()

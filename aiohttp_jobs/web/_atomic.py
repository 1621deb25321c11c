"""``@atomic``: a handler that neither a client disconnect nor a graceful
shutdown (within ``wait_timeout``) can interrupt.

The handler runs in a task of its own that the request's task awaits. On
Python 3.11+ that task is awaited directly (no future in between, so no extra
trip through the event loop: this is on the path of every request) and it
declines the cancellations that merely propagate from the request's task; on
3.12+ it also starts eagerly, so a handler that never suspends costs no loop
trip at all.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from .._checks import check_callable
from .._core import tracing
from .._errors import ConfigTypeError, SchedulerClosedError, SetupError
from ._state import NOT_SET_UP, STATE_KEY, WebState, state_of

__all__ = ["atomic"]

_T = TypeVar("_T")
_R = TypeVar("_R", bound=web.Request | web.View)


def _state_of(request: web.Request) -> WebState:
    # request.app first: a cheap dict lookup, right for the root application.
    try:
        state = request.app.get(STATE_KEY) or request.config_dict.get(STATE_KEY)
    except AttributeError:  # not a web.Request: the slow path says what it is
        state = state_of(request)
    if state is None:
        raise SetupError(NOT_SET_UP)
    return state


def _qualname(handler: Callable[..., object]) -> str:
    return getattr(handler, "__qualname__", None) or type(handler).__qualname__


def _request_of(request_or_view: web.Request | web.View) -> web.Request:
    if isinstance(request_or_view, web.View):
        return request_or_view.request
    return request_or_view


class _AtomicTask(asyncio.Task[_T]):
    """Declines a cancellation that propagates from the awaiting request
    task (recognised by that task's ``cancelling()`` count having grown
    while it waits on this one): the request task stays cancelled and gets
    its ``CancelledError`` once this task is done. The task's own
    cancellations (``asyncio.timeout`` in the handler, task groups) apply.
    """

    __slots__ = ("_awaiter", "_declined")

    def __init__(
        self,
        coro: Coroutine[object, object, _T],
        *,
        loop: asyncio.AbstractEventLoop,
        awaiter: asyncio.Task[Any],
        cancelling: int,
    ) -> None:
        self._awaiter = awaiter
        self._declined = cancelling
        if sys.version_info >= (3, 12):
            # A handler that never suspends finishes right here.
            super().__init__(coro, loop=loop, name="atomic", eager_start=True)
        else:
            super().__init__(coro, loop=loop, name="atomic")

    def cancel(self, msg: Any | None = None) -> bool:
        awaiter = self._awaiter
        count = awaiter.cancelling()
        if count > self._declined and awaiter._fut_waiter is self:  # type: ignore[attr-defined]
            self._declined = count
            return False
        return super().cancel(msg)


def atomic(
    handler: Callable[[_R], Coroutine[object, object, _T]],
) -> Callable[[_R], Coroutine[object, object, _T]]:
    """Run the whole handler (plain function or ``web.View`` method) so that
    neither a client disconnect nor a graceful shutdown within
    ``wait_timeout`` can interrupt it; returns the handler's response.

    Raises :class:`ConfigTypeError` at once if *handler* is not an async
    function (it would fail at the first request otherwise).
    """
    check_callable("handler", handler)
    if not (
        inspect.iscoroutinefunction(handler)
        or inspect.iscoroutinefunction(type(handler).__call__)
    ):
        raise ConfigTypeError(
            f"handler must be an async function (async def) for @atomic, got "
            f"{handler!r}: a plain function's result cannot be run as atomic work"
        )

    @functools.wraps(handler)
    async def wrapper(request_or_view: _R) -> _T:
        request = _request_of(request_or_view)
        work = _state_of(request).protected
        coro = handler(request_or_view)
        if work.closing:
            raise work.refuse(coro)
        if tracing.active():  # a span for the work, child of the request's
            coro = (
                tracing.wrap_work(
                    coro,
                    "atomic",
                    _qualname(handler),
                    f"{request.method} {request.path}",
                )
                or coro
            )
        loop = asyncio.get_running_loop()
        awaiter = asyncio.current_task(loop)
        assert awaiter is not None
        base = awaiter.cancelling()
        entry = (request, loop.time(), True)
        scheduler = work.scheduler
        if scheduler is None:  # an application that has not started
            task = _AtomicTask(coro, loop=loop, awaiter=awaiter, cancelling=base)
        else:
            # The task copies the exemption: what the handler spawns while
            # the scheduler drains is admitted.
            with scheduler.drain_exempt():
                task = _AtomicTask(coro, loop=loop, awaiter=awaiter, cancelling=base)
        entries = work.entries
        entries[task] = entry
        try:
            return await task
        except asyncio.CancelledError:
            if awaiter.cancelling() > base:
                # The request was cancelled; that waited for the work to
                # end. No one gets the outcome: log a failure.
                work.log_orphan(task, entry)
            elif task.cancelled() and work.closing:
                raise work.cut_off() from None
            raise
        except SchedulerClosedError as exc:
            answer = work.refused(exc, entry)
            if answer is None:
                raise
            raise answer from exc
        finally:
            del entries[task]

    return wrapper

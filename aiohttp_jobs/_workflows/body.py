"""What a step runs: its body (a coroutine, an awaitable, or an async function
taking no argument), told apart from what cannot be awaited, named, and turned
into the coroutine its job runs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from types import CoroutineType
from typing import NoReturn, TypeAlias, TypeVar

from .._errors import NotAwaitableError

__all__ = ["Body", "body_name", "make_coroutine"]

_T = TypeVar("_T")

#: What a step may run.
Body: TypeAlias = "Awaitable[_T] | Callable[[], Awaitable[_T]]"


def body_name(body: object) -> str:
    """The name a step running *body* takes by default; raises
    :class:`NotAwaitableError` for a body that can never be awaited."""
    if type(body) is CoroutineType:  # the common case, checked fast
        return body.__qualname__
    if inspect.isawaitable(body) or _is_async_callable(body):
        return _name_of(body)
    raise NotAwaitableError(
        f"a step needs a coroutine or an async function, got {body!r}: write "
        "'async def', or wrap blocking code with asyncio.to_thread()"
    )


def make_coroutine(body: Body[_T], label: str) -> Coroutine[object, object, _T]:
    """The coroutine a job runs for *body*. A function that raises, or returns
    something that cannot be awaited, gives a coroutine that raises it: the
    step fails, not the workflow's driver."""
    if type(body) is CoroutineType or inspect.iscoroutine(body):
        return body
    if inspect.isawaitable(body):
        return _await(body)
    try:
        made: object = body()
    except Exception as exc:
        return _raise(exc)
    if inspect.iscoroutine(made):
        return made
    if inspect.isawaitable(made):
        return _await(made)
    return _raise(
        NotAwaitableError(
            f"step {label!r}: {body!r} returned {made!r}, which cannot be awaited"
        )
    )


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


async def _raise(exc: Exception) -> NoReturn:
    raise exc


def _is_async_callable(obj: object) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - async __call__ of an instance
    )


def _name_of(body: object) -> str:
    while isinstance(body, functools.partial):
        body = body.func
    name = getattr(body, "__qualname__", None) or getattr(body, "__name__", None)
    return name if isinstance(name, str) else type(body).__name__

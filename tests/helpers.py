"""Small coroutines and functions that many tests spawn as jobs."""

from __future__ import annotations

import asyncio
from typing import Any


async def settle(turns: int = 3) -> None:
    """Let the event loop run ``turns`` times (jobs start, finish, callbacks fire)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def returning(value: Any) -> Any:
    """A job that returns ``value``."""
    return value


async def failing(exc: BaseException) -> None:
    """A job that raises ``exc``."""
    raise exc


async def blocked(event: asyncio.Event) -> None:
    """A job that runs until ``event`` is set."""
    await event.wait()


def double(x: int) -> int:
    """Module level, so the process pool can pickle it."""
    return x * 2

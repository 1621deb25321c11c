"""The store backends every contract test runs against.

A backend joins by adding ``BACKENDS["name"] = factory``: an async callable
taking a per-test temporary directory and returning a store that is not opened
yet (the fixtures open and close it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aiohttp_jobs.stores import MemoryStore, TaskStore

from .redis_support import redis_backend, redis_cluster_backend
from .sqlite_support import sqlite_store

Factory = Callable[[Path], Awaitable[TaskStore]]


async def _memory(tmp_path: Path) -> TaskStore:
    return MemoryStore()


BACKENDS: dict[str, Factory] = {
    "memory": _memory,
    "redis": redis_backend,
    "redis-cluster": redis_cluster_backend,
    "sqlite": sqlite_store,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Factory:
    """The factory of one backend (for tests that need several stores of it)."""
    return BACKENDS[request.param]


@pytest.fixture
async def store(backend: Factory, tmp_path: Path) -> AsyncIterator[TaskStore]:
    """An open store of each backend."""
    async with await backend(tmp_path) as opened:
        yield opened


@pytest.fixture
async def fresh(backend: Factory, tmp_path: Path) -> AsyncIterator[TaskStore]:
    """A store of each backend, not opened yet (closed at the end if the test
    left it open)."""
    unopened = await backend(tmp_path)
    yield unopened
    for _ in range(10):
        await unopened.close()

"""Small coroutines and functions that many tests spawn as jobs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

#: The checkout's root, put on PYTHONPATH of the processes tests start.
ROOT = Path(__file__).resolve().parents[1]


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


class ChildProcess:
    """A Python process a test started: its handle and its output, line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, timeout: float = 20) -> str:
        """The next line it printed (a test fails instead of hanging)."""
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        return raw.decode().strip()


@contextlib.asynccontextmanager
async def python_process(
    *args: str, stdin: bool = False
) -> AsyncIterator[ChildProcess]:
    """Run ``python *args`` with this checkout importable; stdout (and stdin
    if asked) piped, stderr piped. Killed at the end if it has not exited (only
    when the test failed first): a test ends only the process it started."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        yield ChildProcess(proc)
    finally:
        if proc.returncode is None:  # pragma: no cover - only when a step failed
            proc.kill()
            await proc.wait()

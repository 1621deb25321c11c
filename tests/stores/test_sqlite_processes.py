"""The SQLite store shared by real processes: claims, and a process killed
inside a write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

from aiohttp_jobs.stores import TaskRecord
from aiohttp_jobs.stores.sqlite import SQLiteStore

from ..helpers import ChildProcess, python_process

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/locks"
)

WORKER = ("-m", "tests.stores.sqlite_support")


async def _start(
    stack: contextlib.AsyncExitStack, mode: str, db: Path, names: list[str]
) -> list[ChildProcess]:
    workers = [
        await stack.enter_async_context(
            python_process(*WORKER, mode, str(db), name, stdin=True)
        )
        for name in names
    ]
    for worker in workers:
        assert await worker.line(timeout=40) == "ready"
    for worker in workers:  # all at once
        _say(worker, "go")
    return workers


def _say(worker: ChildProcess, line: str) -> None:
    assert worker.proc.stdin is not None
    worker.proc.stdin.write(f"{line}\n".encode())


async def test_processes_claiming_from_one_file_each_get_distinct_runs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    async with SQLiteStore(db, synchronous="NORMAL") as store:
        await asyncio.gather(
            *(store.save(TaskRecord(f"t:{i}", "t", fire_at=1.0)) for i in range(500))
        )
        await asyncio.gather(
            *(store.add_run(f"t:{i}", fire_at=2.0) for i in range(500))
        )
    async with contextlib.AsyncExitStack() as stack:
        workers = await _start(stack, "claim", db, ["p1", "p2", "p3"])
        reports = [json.loads(await worker.line(timeout=40)) for worker in workers]
        for worker in workers:
            assert await worker.proc.wait() == 0
    assert [report["locked"] for report in reports] == [0, 0, 0]  # never "locked"
    handed = Counter(
        (run_id, from_cursor)
        for report in reports
        for run_id, from_cursor, _ in report["taken"]
    )
    assert len(handed) == 1000 and set(handed.values()) == {1}  # each run once
    assert {attempt for r in reports for *_, attempt in r["taken"]} == {0}


def _logged(db: Path, name: str) -> list[str]:
    """The keys worker *name* logged as accepted by the store (so far)."""
    log = Path(f"{db}.{name}.log")
    return log.read_text().split() if log.exists() else []


def _holds_write_lock(pid: int, shm: Path) -> bool:
    """Whether *pid* holds the WAL write lock: a POSIX lock on byte 120 of the
    ``-shm`` file (SQLite's WAL_WRITE_LOCK), listed in ``/proc/locks``."""
    inode = os.stat(shm).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:
            continue  # a waiter, not a holder
        if (
            fields[1] == "POSIX"
            and fields[3] == "WRITE"
            and fields[4] == str(pid)
            and fields[5].rsplit(":", 1)[-1] == str(inode)
            and fields[6] == "120"
        ):
            return True
    return False


async def test_a_process_killed_inside_a_write_loses_nothing_accepted(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    async with SQLiteStore(db):
        pass  # the tables exist before the workers race to open the file
    names = ["w1", "w2", "w3", "w4"]
    async with contextlib.AsyncExitStack() as stack:
        workers = await _start(stack, "write", db, names)
        victim = workers[0]
        for _ in range(3000):  # until the victim has had writes accepted
            await asyncio.sleep(0.01)
            if len(_logged(db, "w1")) >= 5:
                break
        shm = Path(f"{db}-shm")
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 15
        while not _holds_write_lock(victim.proc.pid, shm):
            assert loop.time() < give_up, "the worker never held the write lock"
            await asyncio.sleep(0)
        victim.proc.send_signal(signal.SIGKILL)
        assert await victim.proc.wait() == -signal.SIGKILL
        await asyncio.sleep(0.2)  # the others go on writing
        for worker in workers[1:]:
            _say(worker, "stop")
        for worker in workers[1:]:
            assert "done" in json.loads(await worker.line(timeout=30))
            assert await worker.proc.wait() == 0
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = dict(conn.execute("SELECT key, fire_at FROM aiohttp_jobs_records"))
        runs = conn.execute("SELECT count(*) FROM aiohttp_jobs_runs").fetchone()
    finally:
        conn.close()
    accepted = [key for name in names for key in _logged(db, name)]
    assert len(_logged(db, "w1")) >= 5  # the victim's accepted writes are checked too
    assert set(accepted) <= rows.keys()  # every save that returned is there
    assert set(rows.values()) == {None}  # and every run finished, the victim's too
    assert runs == (0,)

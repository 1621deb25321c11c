"""SQLite stores for the tests, and a worker process that uses one.

``python -m tests.stores.sqlite_support <mode> <file> <name>`` runs the worker
the multi-process tests start:

* ``claim``: claims every due run (small random batches, commits in parallel)
  until none is left, then prints one JSON line: what it claimed, and how many
  calls failed with "database is locked".
* ``write``: until told to stop on stdin, saves records (logging each one the
  store accepted to ``<file>.<name>.log``) and claims and finishes due runs; its
  lease is short, so a run it held when it was killed is taken over.

Both print ``ready`` once open and start on a line on stdin.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import sqlite3
import sys
import threading
import time
from pathlib import Path

from aiohttp_jobs.stores import Claim, Cursor, TaskRecord
from aiohttp_jobs.stores.sqlite import SQLiteStore

_files = itertools.count()

#: Lease of the ``write`` workers: a killed worker's runs are due again after it.
WRITE_LEASE = 1.0


async def sqlite_store(tmp_path: Path) -> SQLiteStore:
    """A store on a new file in *tmp_path* (not opened yet)."""
    return SQLiteStore(tmp_path / f"tasks-{next(_files)}.db")


def _finish(store: SQLiteStore, claim: Claim) -> asyncio.Future[object]:
    cursor = Cursor(None) if claim.from_cursor else None
    return asyncio.ensure_future(store.commit(claim, cursor=cursor))


async def _claim(store: SQLiteStore, name: str) -> None:
    taken: list[list[object]] = []
    locked = 0
    rng = random.Random(name)
    while True:
        try:
            claims = await store.acquire(
                now=1e6, owner=name, lease_duration=3600, limit=rng.randint(1, 20)
            )
        except sqlite3.OperationalError:
            locked += 1
            continue
        if not claims:
            break
        results = await asyncio.gather(*(_finish(store, c) for c in claims))
        assert all(results), results
        taken += [[c.run_id, c.from_cursor, c.attempt] for c in claims]
    print(json.dumps({"taken": taken, "locked": locked}), flush=True)  # noqa: T201


async def _write(store: SQLiteStore, name: str, log: Path) -> None:
    stop = threading.Event()
    threading.Thread(
        target=lambda: (sys.stdin.readline(), stop.set()), daemon=True
    ).start()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    padding = "x" * 5_000  # a write that takes a while
    done = 0
    for n in itertools.count():
        key = f"{name}:{n}"
        record = TaskRecord(key, name, params={"pad": padding}, fire_at=time.time())
        await store.save(record)
        os.write(fd, f"{key}\n".encode())  # accepted: must survive
        claims = await store.acquire(
            now=time.time(), owner=name, lease_duration=WRITE_LEASE, limit=5
        )
        done += sum(
            map(bool, await asyncio.gather(*(_finish(store, c) for c in claims)))
        )
        if stop.is_set():
            break
    # Stopping: finish what is due, runs of a killed worker included.
    while (due := await store.next_due()) is not None:
        await asyncio.sleep(max(0.0, due - time.time()))
        claims = await store.acquire(
            now=time.time(), owner=name, lease_duration=WRITE_LEASE, limit=50
        )
        done += sum(
            map(bool, await asyncio.gather(*(_finish(store, c) for c in claims)))
        )
    os.close(fd)
    print(json.dumps({"done": done}), flush=True)  # noqa: T201


async def main(mode: str, path: str, name: str) -> None:
    async with SQLiteStore(path, busy_timeout=10.0) as store:
        print("ready", flush=True)  # noqa: T201
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if mode == "claim":
            await _claim(store, name)
        else:
            await _write(store, name, Path(f"{path}.{name}.log"))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))

"""SQLite stores for the tests: a new database file on every call."""

from __future__ import annotations

import itertools
from pathlib import Path

from aiohttp_jobs.stores.sqlite import SQLiteStore

_files = itertools.count()


async def sqlite_store(tmp_path: Path) -> SQLiteStore:
    """A store on a new file in *tmp_path* (not opened yet); quick to notice
    changes made by other connections."""
    return SQLiteStore(tmp_path / f"tasks-{next(_files)}.db", poll_interval=0.05)

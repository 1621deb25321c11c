"""Task stores: where schedules, runs and leases live (see :mod:`.base`).

``SQLiteStore`` and ``RedisStore`` live in :mod:`aiohttp_jobs.stores.sqlite` and
:mod:`aiohttp_jobs.stores.redis`, imported only when used (or through
:func:`from_url`), so their libraries stay optional.
"""

from __future__ import annotations

from ._url import SCHEMES, from_url
from .base import (
    JSON,
    RUN_LOG_SIZE,
    Claim,
    Cursor,
    InstanceInfo,
    Lease,
    LeaseInfo,
    Outcome,
    RunLogEntry,
    TaskRecord,
    TaskStore,
)
from .memory import MemoryStore

__all__ = [
    "JSON",
    "RUN_LOG_SIZE",
    "SCHEMES",
    "Claim",
    "Cursor",
    "InstanceInfo",
    "Lease",
    "LeaseInfo",
    "MemoryStore",
    "Outcome",
    "RunLogEntry",
    "TaskRecord",
    "TaskStore",
    "from_url",
]

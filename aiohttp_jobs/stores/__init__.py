"""Task stores: where schedules, runs and leases live (see :mod:`.base`)."""

from __future__ import annotations

from .base import JSON, Claim, Cursor, TaskRecord, TaskStore
from .memory import MemoryStore

__all__ = ["JSON", "Claim", "Cursor", "MemoryStore", "TaskRecord", "TaskStore"]

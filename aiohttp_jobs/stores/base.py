"""The task store contract: where schedules, runs and leases live.

The task runner keeps no state of its own that must survive a restart: every
task instance is a :class:`TaskRecord` in a :class:`TaskStore`, and every run in
progress is a leased *run* inside the store. A store is shared by every instance
of an application that should not run the same occurrence twice.

Vocabulary:

* **record**: one schedulable task instance (a declared task, or one instance of
  a dynamic task), with a *cursor*: ``fire_at``, the next occurrence not yet
  claimed, and ``backlog``, occurrences queued to run back to back after it.
* **run**: one execution of one occurrence. A run is created when the cursor is
  claimed (its id, ``"<key>@<fire time in ms>"``, is derived from the fire time,
  so two instances claiming the same occurrence produce the same id) or by
  :meth:`TaskStore.add_run` (run now, keyword-fired runs).
* **claim**: a run leased to one runner until ``expires_at``. An expired lease
  makes the run claimable again, by anyone, with ``attempt`` increased: this is
  how at-least-once delivery survives a runner that died.

Rules every implementation follows (the contract suite in
``tests/test_stores.py`` checks them for each backend):

1. :meth:`~TaskStore.acquire` is atomic: a due run or cursor is handed to one
   caller only, in order of due time, at most ``limit`` at a time.
2. A record's cursor is claimable when ``enabled``, ``fire_at <= now``, it is not
   held by a claimed run, and fewer than ``max_running`` of its cursor runs exist.
3. Claiming the cursor *holds* it until a commit passes a new cursor.
4. A claim whose lease expired (or whose run was deleted) is lost:
   :meth:`~TaskStore.extend` and :meth:`~TaskStore.commit` return ``False`` and
   change nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, TypeAlias

__all__ = ["JSON", "NO_PARAMS", "Claim", "Cursor", "TaskRecord", "TaskStore"]

JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"

NO_PARAMS: Mapping[str, JSON] = MappingProxyType({})


class TaskRecord(NamedTuple):
    """One schedulable task instance and its cursor (immutable: use ``_replace``)."""

    key: str
    """Unique: the task name, or ``"<task>:<instance>"`` for a dynamic instance."""
    task: str
    """The name of the declared task that runs it."""
    schedule: dict[str, str | float] | None = None
    """``Schedule.to_spec()`` of its schedule; ``None`` for keyword-fired tasks."""
    params: Mapping[str, JSON] = NO_PARAMS
    """Read-only; a store that serialises it writes ``dict(params)``."""
    enabled: bool = True
    fire_at: float | None = None
    """The next occurrence not claimed yet (POSIX seconds); ``None``: none."""
    backlog: int = 0
    """Occurrences queued to run one after the other once ``fire_at`` has run."""
    max_running: int = 1
    """How many runs of the cursor may be in progress at once."""


class Cursor(NamedTuple):
    """A new position for a record's cursor, passed to :meth:`TaskStore.commit`."""

    fire_at: float | None
    backlog: int = 0


class Claim(NamedTuple):
    """A run leased to one runner; pass it back to ``extend`` / ``commit``."""

    run_id: str
    record: TaskRecord
    fire_at: float
    """The occurrence this run executes (what the task sees as scheduled time)."""
    attempt: int
    """0 for the first execution, then one more per retry or lost lease."""
    token: str
    expires_at: float
    from_cursor: bool
    """``True`` for a scheduled occurrence, ``False`` for an added run."""
    payload: dict[str, JSON] | None = None
    """Keyword arguments of an added run (``fire()``); ``None`` otherwise."""


class TaskStore(ABC):
    """Storage for task records, runs and leases.

    All times are POSIX timestamps (``float`` seconds) supplied by the caller: a
    store never reads a clock, so tests drive it deterministically.
    """

    @abstractmethod
    async def save(self, record: TaskRecord) -> None:
        """Insert *record*, or replace the record with the same key.

        Runs in progress are kept; a held cursor stays held.
        """

    @abstractmethod
    async def get(self, key: str) -> TaskRecord | None:
        """The record with this key, or ``None``."""

    @abstractmethod
    async def delete(self, key: str, *, claim: Claim | None = None) -> bool:
        """Remove a record and its queued runs; claims on it are lost.

        With *claim*: only while that claim still holds its lease (a once-off
        run finishing). ``False`` when nothing was removed.
        """

    @abstractmethod
    async def records(self, task: str | None = None) -> list[TaskRecord]:
        """All records (of one declared *task* if given), in key order."""

    @abstractmethod
    async def add_run(
        self, key: str, *, fire_at: float, payload: dict[str, JSON] | None = None
    ) -> str:
        """Queue one extra run of record *key*, due at *fire_at*; its run id.

        Added runs neither hold nor wait for the cursor. ``LookupError`` when the
        record does not exist.
        """

    @abstractmethod
    async def next_due(self) -> float | None:
        """The earliest time at which :meth:`acquire` may return something.

        Includes lease expiries. ``None`` when nothing is scheduled at all.
        """

    @abstractmethod
    async def acquire(
        self, *, now: float, owner: str, lease_duration: float, limit: int
    ) -> list[Claim]:
        """Lease up to *limit* runs due at *now* to *owner*, earliest first."""

    @abstractmethod
    async def extend(self, claim: Claim, *, until: float) -> bool:
        """Move the lease of *claim* to *until* (heartbeat); ``False`` if lost."""

    @abstractmethod
    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
    ) -> bool:
        """Report on a claimed run; ``False`` (and no change) if the claim is lost.

        * ``cursor``: move the record's cursor there and release its hold.
        * ``retry_at``: keep the run, unleased, due again then (attempt + 1).
        * ``keep_lease``: keep the run leased (it is still executing).
        * otherwise the run is finished and removed.
        """

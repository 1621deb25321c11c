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
  :meth:`TaskStore.add_run` (run now, keyword-fired runs). Run ids are unique
  among the runs a store holds: a run created while another has its id gets
  ``".2"``, ``".3"``... appended (an added run due at the cursor's time).
* **claim**: a run leased to one runner until ``expires_at``. An expired lease
  makes the run claimable again, by anyone, with ``attempt`` increased: this is
  how at-least-once delivery survives a runner that died.

A store has a lifecycle: the runtime calls :meth:`~TaskStore.open` when it
starts (connect, start listening) and :meth:`~TaskStore.close` when it stops;
``async with store:`` does both. Opens are counted: several runtimes of one
process may share a store, and the last ``close()`` releases it. A closed store
may be opened again and keeps what it persisted.

A store also *tells* the runners that use it when something changed that may
make a run due sooner than they planned (:meth:`~TaskStore.subscribe`): a run
added or a record saved by another process, a lease that expired because its
runner died. A runner then asks :meth:`~TaskStore.next_due` again instead of
polling.

Rules every implementation follows (the contract suite in
``tests/stores/test_contract.py`` checks them for each backend):

1. :meth:`~TaskStore.acquire` is atomic: a due run or cursor is handed to one
   caller only, in order of due time, at most ``limit`` at a time.
2. A record's cursor is claimable when ``enabled``, ``fire_at <= now``, it is not
   held by a claimed run, and fewer than ``max_running`` of its cursor runs exist.
3. Claiming the cursor *holds* it until a commit passes a new cursor.
4. A claim whose lease expired (or whose run was deleted) is lost:
   :meth:`~TaskStore.extend` and :meth:`~TaskStore.commit` return
   :attr:`Lease.LOST` (falsy) and change nothing.
5. Saving a record whose ``revision`` differs from the stored one *replaces*
   it: as if it was deleted and inserted, its runs are dropped and claims on it
   are lost (a run of the old definition that finishes cannot move, or delete,
   the new one). Saving with the same ``revision`` updates it in place.
6. Subscribers are called after every change that can make something due
   sooner (a save, an added run, a commit, an extended lease, a cancel
   request), whoever made it.
7. **Cancelling** (:meth:`~TaskStore.cancel`) marks a run; it never deletes or
   settles it. A marked run that is leased stays leased: its holder learns of
   the request when :meth:`~TaskStore.extend` or :meth:`~TaskStore.commit`
   returns :attr:`Lease.CANCELLED` (both still took effect), cancels its job
   and settles the occurrence with a ``commit`` that moves the cursor on. A
   marked run that is not leased (queued, waiting for a retry, or whose lease
   expired) becomes due at once and is handed out with ``Claim.cancelled`` set:
   whoever acquires it settles it without running it. A commit with
   ``retry_at`` or ``keep_lease`` on a marked run finishes the run instead
   (``commit`` still takes its ``cursor``), so a cancelled run never runs again.
8. **Fencing**: every claim carries ``fence``, a number greater than the
   ``fence`` of every earlier claim of the same record key, across lease
   takeovers, retries, replacements and deletions (one counter for the whole
   store, or per partition, satisfies this). A task passes it to systems that
   can reject writes of an older fence.
9. **Instances** (:meth:`~TaskStore.register_instance`) are listed while
   ``last_seen + ttl > now``; a store forgets the others (when it likes: the
   listing is what counts).
10. **Run log** (:meth:`~TaskStore.log_run`): per record key, the newest
    :data:`RUN_LOG_SIZE` entries, newest logged first. Entries for a key without
    a record are ignored; deleting a record deletes its log; saving another
    revision keeps it.
11. **Leases** (:meth:`~TaskStore.leases`) lists every run whose lease has not
    expired at *now*, whoever holds it, with the ``owner`` its claim was
    acquired for: what a dashboard shows as "running, and where". A run
    waiting (queued, or for a retry) or whose lease expired is not listed.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Literal, NamedTuple, TypeAlias, TypeVar

__all__ = [
    "JSON",
    "NO_PARAMS",
    "RUN_LOG_SIZE",
    "Claim",
    "Cursor",
    "InstanceInfo",
    "Lease",
    "LeaseInfo",
    "Outcome",
    "RunLogEntry",
    "TaskRecord",
    "TaskStore",
    "Unsubscribe",
]

_S = TypeVar("_S", bound="TaskStore")

Unsubscribe = Callable[[], None]
"""What :meth:`TaskStore.subscribe` returns: call it to stop the notifications."""

JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"

NO_PARAMS: Mapping[str, JSON] = MappingProxyType({})

RUN_LOG_SIZE = 100
"""How many run log entries a store keeps per record key (rule 10)."""

Outcome: TypeAlias = Literal["succeeded", "failed", "cancelled", "lost"]
"""How a run ended, as the run log records it: ``"failed"`` includes attempts
that will be retried; ``"lost"``: its lease was taken over before it finished."""


class _Subscribers:
    """The callbacks of a store's :meth:`TaskStore.subscribe`, shared by the
    bundled stores: true while there is one; :meth:`notify` calls each, and a
    callback that raises is logged on *log* without stopping the others."""

    __slots__ = ("_callbacks", "_log")

    def __init__(self, log: logging.Logger) -> None:
        self._callbacks: tuple[Callable[[], object], ...] = ()
        self._log = log

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def add(self, callback: Callable[[], object]) -> Unsubscribe:
        self._callbacks = (*self._callbacks, callback)

        def unsubscribe() -> None:
            callbacks = list(self._callbacks)
            if callback in callbacks:
                callbacks.remove(callback)
                self._callbacks = tuple(callbacks)

        return unsubscribe

    def notify(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                self._log.exception("task store subscriber %r failed", callback)


class Lease(enum.IntEnum):
    """What :meth:`TaskStore.extend` and :meth:`TaskStore.commit` report.

    Falsy only for :attr:`LOST`, so ``if await store.extend(...)`` reads "still
    held".
    """

    LOST = 0
    """The claim no longer holds its lease: nothing was changed."""
    HELD = 1
    """Done; the claim holds (or held, up to this commit) its lease."""
    CANCELLED = 2
    """Done, and a cancel was requested for this run (rule 7): stop the job
    and settle the occurrence."""


class InstanceInfo(NamedTuple):
    """One running application instance, as the instance registry lists it."""

    instance_id: str
    """Unique per process (the runner's owner name)."""
    host: str
    pid: int
    version: str
    """The aiohttp-jobs version it runs."""
    started: float
    """When it started (POSIX seconds)."""
    last_seen: float
    """Its latest heartbeat (POSIX seconds)."""


class LeaseInfo(NamedTuple):
    """One run leased now, as :meth:`TaskStore.leases` lists it (rule 11)."""

    run_id: str
    key: str
    """The record key."""
    task: str
    """The name of the declared task that runs it."""
    owner: str
    """Who holds the lease: the ``owner`` given to :meth:`TaskStore.acquire`
    (a runtime's ``instance_id``)."""
    attempt: int
    fire_at: float
    """The occurrence the run executes (POSIX seconds)."""
    expires_at: float
    """When the lease ends unless its holder extends it (POSIX seconds)."""
    cancelled: bool = False
    """A cancel was requested: the holder stops the run at its next heartbeat."""


class RunLogEntry(NamedTuple):
    """One finished run (or attempt), as the run log keeps it."""

    run_id: str
    key: str
    """The record key."""
    instance: str
    """The ``instance_id`` of the instance that ran it."""
    attempt: int
    outcome: Outcome
    started: float
    finished: float
    error: str | None = None
    """``repr()`` of the exception, for ``"failed"`` runs."""

    @property
    def duration(self) -> float:
        """Seconds from start to finish."""
        return self.finished - self.started


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
    revision: int = 0
    """Which definition of *key* this is (rule 5: saving another revision
    replaces the record). The runtime gives each definition a number no earlier
    one of the key had; a store only compares them for equality."""


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
    fence: int = 0
    """Fencing token: greater than that of every earlier claim of this record
    key (rule 8)."""
    cancelled: bool = False
    """A cancel was requested before this claim was handed out: settle the
    occurrence without running it (rule 7)."""


class TaskStore(ABC):
    """Storage for task records, runs and leases.

    All times are POSIX timestamps (``float`` seconds) supplied by the caller: a
    store never reads a clock, so tests drive it deterministically.
    """

    # -- lifecycle --------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None:
        """Make the store ready (connect, start listening for changes).

        Counted: each ``open()`` is matched by one :meth:`close`.
        """

    @abstractmethod
    async def close(self) -> None:
        """Undo one :meth:`open`; the last one releases what the store holds.

        Closing a store that is not open does nothing.
        """

    async def __aenter__(self: _S) -> _S:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    def subscribe(self, callback: Callable[[], object]) -> Unsubscribe:
        """Call ``callback()`` in the event loop after each change (rule 6).

        Notifications carry no data (ask :meth:`next_due`) and may come in bursts
        or be merged; the callback must be quick and must not call the store.
        Returns a function that ends the subscription.
        """

    # -- records ----------------------------------------------------------------

    @abstractmethod
    async def save(self, record: TaskRecord) -> None:
        """Insert *record*, or update or replace the record with the same key.

        With the stored ``revision``: runs in progress are kept and a held cursor
        stays held. With another revision: the old record, its runs and its
        claims are gone first (rule 5).
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
        """Lease up to *limit* runs due at *now* to *owner*, earliest first.

        A store split into partitions deals *limit* out between the partitions
        with runs due, in turn from where its previous acquire stopped, each
        giving its earliest runs, so no partition waits behind another's
        backlog; the claims returned are still sorted by due time."""

    @abstractmethod
    async def extend(self, claim: Claim, *, until: float) -> Lease:
        """Move the lease of *claim* to *until* (heartbeat).

        :attr:`Lease.LOST` (nothing changed) if the claim lost its lease;
        :attr:`Lease.CANCELLED` (lease moved) if a cancel was requested.
        """

    @abstractmethod
    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
        log: RunLogEntry | None = None,
    ) -> Lease:
        """Report on a claimed run; :attr:`Lease.LOST` (and no change) if the
        claim lost its lease.

        * ``cursor``: move the record's cursor there and release its hold.
        * ``retry_at``: keep the run, unleased, due again then (attempt + 1).
        * ``keep_lease``: keep the run leased (it is still executing).
        * otherwise the run is finished and removed.
        * ``log``: also append this entry to the run log (rule 10), in the same
          step, only if the commit took effect.

        :attr:`Lease.CANCELLED` when a cancel was requested for the run: it
        is then finished whatever ``retry_at`` and ``keep_lease`` said (rule 7).
        """

    @abstractmethod
    async def cancel(self, run_id: str, *, now: float) -> bool:
        """Ask for run *run_id* to be cancelled, wherever it runs (rule 7).

        ``False`` when no such run exists (it finished, or never was). A run
        not leased becomes due at *now* (or stays due earlier).
        """

    # -- instances and run log (what a dashboard shows of the whole cluster) -------

    @abstractmethod
    async def leases(self, *, now: float) -> list[LeaseInfo]:
        """The runs leased at *now* (lease not expired), whoever holds them,
        by record key then run id (rule 11).

        Costs the store one read (one per partition), whatever the number of
        records: a dashboard asks it on every look.
        """

    @abstractmethod
    async def register_instance(self, info: InstanceInfo, *, ttl: float) -> None:
        """Add or refresh (heartbeat) an instance: listed until
        ``info.last_seen + ttl`` (rule 9)."""

    @abstractmethod
    async def deregister_instance(self, instance_id: str) -> None:
        """Remove an instance from the registry (it stopped); unknown: no-op."""

    @abstractmethod
    async def instances(self, *, now: float) -> list[InstanceInfo]:
        """The instances alive at *now*, by ``instance_id``."""

    @abstractmethod
    async def log_run(self, entry: RunLogEntry) -> None:
        """Append *entry* to the run log of ``entry.key`` (rule 10)."""

    @abstractmethod
    async def recent_runs(
        self, key: str, *, limit: int = RUN_LOG_SIZE
    ) -> list[RunLogEntry]:
        """Up to *limit* run log entries of record *key*, newest first."""

    # -- optional ---------------------------------------------------------------------

    async def server_time(self) -> float | None:
        """The current time of the store's server (POSIX seconds), for stores
        that have one (Redis ``TIME``); ``None`` (the default) otherwise.

        The only clock reading in the contract, and never used by the store
        itself: a runtime may take its time from it (sampled, round trip
        corrected) so hosts with skewed clocks agree on what is due.
        """
        return None

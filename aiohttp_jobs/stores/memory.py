"""The in-memory task store: one process, no persistence, O(log n) per run.

Due cursors, queued runs and lease expiries share one binary heap; entries are
never removed in place, they carry a version and stale ones are skipped when
they reach the top.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable

from .._checks import MAX_TIMESTAMP, check_count, check_duration, check_timestamp
from .._errors import ConfigTypeError
from .base import (
    JSON,
    RUN_LOG_SIZE,
    Claim,
    Cursor,
    InstanceInfo,
    Lease,
    LeaseInfo,
    RunLogEntry,
    TaskRecord,
    TaskStore,
    Unsubscribe,
    _Subscribers,
)

__all__ = ["MemoryStore"]

log = logging.getLogger("aiohttp_jobs.stores")

_CURSOR, _RUN, _LEASE = 0, 1, 2


def _add(index: dict[str, set[str]], key: str, run_id: str) -> None:
    runs = index.get(key)
    if runs is None:
        index[key] = {run_id}
    else:
        runs.add(run_id)


class _Run:
    __slots__ = (
        "attempt",
        "cancelled",
        "due",
        "expires",
        "fence",
        "fire_at",
        "from_cursor",
        "key",
        "payload",
        "run_id",
        "token",
        "version",
    )

    def __init__(
        self,
        run_id: str,
        key: str,
        fire_at: float,
        from_cursor: bool,
        payload: dict[str, JSON] | None,
    ) -> None:
        self.run_id = run_id
        self.key = key
        self.fire_at = fire_at
        self.from_cursor = from_cursor
        self.payload = payload
        self.attempt = 0
        self.due = fire_at
        self.token: str | None = None
        self.expires = 0.0
        self.version = 0
        self.fence = 0
        self.cancelled = False


class MemoryStore(TaskStore):
    """Keeps everything in this process; the default store.

    A record's state is spread over plain dicts of strings and numbers rather
    than one object per record: the garbage collector scans only the records
    themselves (TaskRecord, a tuple subclass, stays tracked), one per instance.
    """

    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}
        self._versions: dict[str, int] = {}  # cursor version, per key
        self._held: dict[str, str] = {}  # key -> run id holding its cursor
        self._running: dict[str, int] = {}  # key -> cursor runs in progress (> 0)
        self._run_ids: dict[str, set[str]] = {}  # key -> its run ids (if any)
        self._runs: dict[str, _Run] = {}
        self._heap: list[tuple[float, int, int, str, int]] = []
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self._fences = itertools.count(1)
        self._logs: dict[str, deque[RunLogEntry]] = {}
        self._suffixes: dict[str, int] = {}  # run id -> next ".n" to try
        self._instances: dict[str, InstanceInfo] = {}
        self._instance_ttl: dict[str, float] = {}
        self._opened = 0
        self._subscribers = _Subscribers(log)

    def __repr__(self) -> str:
        state = "open" if self._opened else "closed"
        return (
            f"<MemoryStore {state} records={len(self._records)} runs={len(self._runs)}>"
        )

    # -- lifecycle ----------------------------------------------------------------

    @property
    def opened(self) -> bool:
        """Whether an :meth:`open` is not matched by a :meth:`close` yet."""
        return self._opened > 0

    async def open(self) -> None:
        """Nothing to connect: counts the opens (the data stays in memory, also
        while closed, so a runtime started again on this store finds it)."""
        self._opened += 1

    async def close(self) -> None:
        if self._opened:
            self._opened -= 1

    def subscribe(self, callback: Callable[[], object]) -> Unsubscribe:
        """Every change is made in this process: the subscribers are called
        synchronously, from the store method that made it."""
        return self._subscribers.add(callback)

    # -- heap ---------------------------------------------------------------------

    def _push_cursor(self, key: str, record: TaskRecord) -> None:
        if record.enabled and record.fire_at is not None and key not in self._held:
            entry = (record.fire_at, next(self._seq), _CURSOR, key, self._versions[key])
            heapq.heappush(self._heap, entry)

    def _push_run(self, run: _Run) -> None:
        # From the one counter: a later run with the same id (the occurrence
        # claimed again after this run finished) never matches this one's entries.
        run.version = next(self._seq)
        if run.token is None:
            entry = (run.due, next(self._seq), _RUN, run.run_id, run.version)
        else:
            entry = (run.expires, next(self._seq), _LEASE, run.run_id, run.version)
        heapq.heappush(self._heap, entry)

    def _live(self, kind: int, ident: str, version: int) -> bool:
        """Whether a heap entry still stands for something claimable."""
        if kind == _CURSOR:
            record = self._records.get(ident)
            return (
                record is not None
                and self._versions[ident] == version
                and ident not in self._held
                and record.enabled
                and self._running.get(ident, 0) < record.max_running
            )
        run = self._runs.get(ident)
        return run is not None and run.version == version

    # -- records ------------------------------------------------------------------

    async def save(self, record: TaskRecord) -> None:
        if type(record) is not TaskRecord and not isinstance(record, TaskRecord):
            raise ConfigTypeError(
                f"record must be a TaskRecord, got {record!r} ({type(record).__name__})"
            )
        key = record.key
        old = self._records.get(key)
        if old is not None and old.revision != record.revision:
            self._drop(key)  # another definition: the old one's runs go
        # One counter for every key: a key deleted (or replaced) and saved again
        # never reuses a version that stale heap entries of it may still carry.
        self._versions[key] = next(self._seq)
        self._records[key] = record
        self._push_cursor(key, record)
        if self._subscribers:
            self._subscribers.notify()

    async def get(self, key: str) -> TaskRecord | None:
        return self._records.get(key)

    async def delete(self, key: str, *, claim: Claim | None = None) -> bool:
        if claim is not None and (
            claim.record.key != key or self._owned(claim) is None
        ):
            return False
        if key not in self._records:
            return False
        self._drop(key)
        self._logs.pop(key, None)
        return True

    def _drop(self, key: str) -> None:
        del self._records[key]
        del self._versions[key]
        self._held.pop(key, None)
        self._running.pop(key, None)
        for run_id in self._run_ids.pop(key, ()):
            del self._runs[run_id]
            if self._suffixes:
                self._release(run_id)

    async def records(self, task: str | None = None) -> list[TaskRecord]:
        return [
            self._records[key]
            for key in sorted(self._records)
            if task is None or self._records[key].task == task
        ]

    async def add_run(
        self, key: str, *, fire_at: float, payload: dict[str, JSON] | None = None
    ) -> str:
        if type(fire_at) is not float or not 0.0 <= fire_at <= MAX_TIMESTAMP:
            fire_at = check_timestamp("fire_at", fire_at)
        if key not in self._records:
            raise LookupError(f"no task record {key!r}")
        run_id = f"{key}@{round(fire_at * 1000)}"
        if run_id in self._runs:
            run_id = self._unique(run_id)
        run = self._runs[run_id] = _Run(run_id, key, fire_at, False, payload)
        _add(self._run_ids, key, run_id)
        self._push_run(run)
        if self._subscribers:
            self._subscribers.notify()
        return run_id

    def _unique(self, base: str) -> str:
        """``base.2``, ``base.3``...: the first that no run has.

        ``_suffixes[base]`` remembers below which every suffix is taken, so
        many runs added at one moment cost O(1) each, not O(n).
        """
        suffixes = self._suffixes
        n = suffixes.get(base, 2)
        while f"{base}.{n}" in self._runs:
            n += 1
        suffixes[base] = n + 1
        return f"{base}.{n}"

    def _release(self, run_id: str) -> None:
        """*run_id* is free again: a suffix below the hint lowers it."""
        dot = run_id.find(".", run_id.rfind("@"))
        if dot < 0:
            return
        base = run_id[:dot]
        hint = self._suffixes.get(base)
        if hint is not None:
            n = int(run_id[dot + 1 :])
            if n == 2:
                del self._suffixes[base]  # back to the start: nothing to keep
            elif n < hint:
                self._suffixes[base] = n

    # -- claiming -----------------------------------------------------------------

    async def next_due(self) -> float | None:
        heap = self._heap
        while heap:
            due, _, kind, ident, version = heap[0]
            if self._live(kind, ident, version):
                return due
            heapq.heappop(heap)
        return None

    async def acquire(
        self, *, now: float, owner: str, lease_duration: float, limit: int
    ) -> list[Claim]:
        if type(limit) is not int or limit < 1:
            check_count("limit", limit, minimum=1)
        heap = self._heap
        claims: list[Claim] = []
        expires = now + lease_duration
        while heap and heap[0][0] <= now and len(claims) < limit:
            _, _, kind, ident, version = heapq.heappop(heap)
            if not self._live(kind, ident, version):
                continue
            if kind == _CURSOR:
                fire_at = self._records[ident].fire_at
                assert fire_at is not None
                run_id = f"{ident}@{round(fire_at * 1000)}"
                if run_id in self._runs:  # an added run has it: unique ids
                    run_id = self._unique(run_id)
                run = _Run(run_id, ident, fire_at, True, None)
                self._runs[run_id] = run
                _add(self._run_ids, ident, run_id)
                self._held[ident] = run_id
                self._running[ident] = self._running.get(ident, 0) + 1
            else:
                run = self._runs[ident]
                if kind == _LEASE:
                    run.attempt += 1  # the previous holder lost its lease
            run.token = f"{owner}:{next(self._tokens)}"
            run.fence = next(self._fences)
            run.expires = expires
            self._push_run(run)
            claims.append(self._claim(run))
        return claims

    def _claim(self, run: _Run) -> Claim:
        assert run.token is not None
        return Claim(  # positional: this is the hot path
            run.run_id,
            self._records[run.key],
            run.fire_at,
            run.attempt,
            run.token,
            run.expires,
            run.from_cursor,
            run.payload,
            run.fence,
            run.cancelled,
        )

    def _owned(self, claim: Claim) -> _Run | None:
        run = self._runs.get(claim.run_id)
        if (
            run is None
            or run.token != claim.token
            or claim.record.key not in self._records
        ):
            return None
        return run

    async def extend(self, claim: Claim, *, until: float) -> Lease:
        run = self._owned(claim)
        if run is None:
            return Lease.LOST
        run.expires = until
        self._push_run(run)
        if self._subscribers:
            self._subscribers.notify()
        return Lease.CANCELLED if run.cancelled else Lease.HELD

    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
        log: RunLogEntry | None = None,
    ) -> Lease:
        run = self._owned(claim)
        if run is None:
            return Lease.LOST
        key = run.key
        cancelled = run.cancelled
        if cancelled:  # rule 7: a cancelled run finishes
            retry_at = None
            keep_lease = False
        if cursor is not None:
            if self._held.get(key) == run.run_id:
                del self._held[key]
            self._records[key] = self._records[key]._replace(
                fire_at=cursor.fire_at, backlog=cursor.backlog
            )
            self._versions[key] = next(self._seq)
        if retry_at is not None:
            run.token = None
            run.attempt += 1
            run.due = retry_at
            self._push_run(run)
        elif not keep_lease:
            del self._runs[run.run_id]
            if self._suffixes:
                self._release(run.run_id)
            runs = self._run_ids.get(key)
            if runs is not None:
                runs.discard(run.run_id)
                if not runs:
                    del self._run_ids[key]
            run.version = -1  # finished: its heap entries are stale
            if run.from_cursor:
                left = self._running[key] - 1
                if left:
                    self._running[key] = left
                else:
                    del self._running[key]
                if self._held.get(key) == run.run_id:  # finished, cursor not moved
                    del self._held[key]
                    self._versions[key] = next(self._seq)
        if cursor is not None or not keep_lease:
            self._push_cursor(key, self._records[key])
        if log is not None:
            self._append_log(log)
        if self._subscribers:
            self._subscribers.notify()
        return Lease.CANCELLED if cancelled else Lease.HELD

    async def cancel(self, run_id: str, *, now: float) -> bool:
        run = self._runs.get(run_id)
        if run is None:
            return False
        if not run.cancelled:
            run.cancelled = True
            if run.token is None and now < run.due:
                run.due = now
                self._push_run(run)
        if self._subscribers:
            self._subscribers.notify()
        return True

    # -- instances and run log ----------------------------------------------------

    async def leases(self, *, now: float) -> list[LeaseInfo]:
        """Looks at every run (queued ones too): this store keeps no index of
        the leased ones, so the claim path stays as cheap as it was."""
        records = self._records
        found = [
            LeaseInfo(
                run.run_id,
                run.key,
                records[run.key].task,
                run.token.rpartition(":")[0],  # "<owner>:<n>"
                run.attempt,
                run.fire_at,
                run.expires,
                run.cancelled,
            )
            for run in self._runs.values()
            if run.token is not None and run.expires > now
        ]
        found.sort(key=lambda lease: (lease.key, lease.run_id))
        return found

    async def register_instance(self, info: InstanceInfo, *, ttl: float) -> None:
        if type(info) is not InstanceInfo and not isinstance(info, InstanceInfo):
            raise ConfigTypeError(
                f"info must be an InstanceInfo, got {info!r} ({type(info).__name__})"
            )
        ttl = check_duration("ttl", ttl, positive=True)
        self._instances[info.instance_id] = info
        self._instance_ttl[info.instance_id] = info.last_seen + ttl

    async def deregister_instance(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)
        self._instance_ttl.pop(instance_id, None)

    async def instances(self, *, now: float) -> list[InstanceInfo]:
        for ident, until in list(self._instance_ttl.items()):
            if until <= now:
                await self.deregister_instance(ident)
        return [self._instances[ident] for ident in sorted(self._instances)]

    async def log_run(self, entry: RunLogEntry) -> None:
        if type(entry) is not RunLogEntry and not isinstance(entry, RunLogEntry):
            raise ConfigTypeError(
                f"entry must be a RunLogEntry, got {entry!r} ({type(entry).__name__})"
            )
        self._append_log(entry)

    def _append_log(self, entry: RunLogEntry) -> None:
        if entry.key not in self._records:
            return
        log_ = self._logs.get(entry.key)
        if log_ is None:
            log_ = self._logs[entry.key] = deque(maxlen=RUN_LOG_SIZE)
        log_.appendleft(entry)

    async def recent_runs(
        self, key: str, *, limit: int = RUN_LOG_SIZE
    ) -> list[RunLogEntry]:
        if type(limit) is not int or limit < 1:
            check_count("limit", limit, minimum=1)
        entries = self._logs.get(key)
        if not entries:
            return []
        return list(itertools.islice(entries, limit))

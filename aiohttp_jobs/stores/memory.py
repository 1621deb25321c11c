"""The in-memory task store: one process, no persistence, O(log n) per run.

Due cursors, queued runs and lease expiries share one binary heap; entries are
never removed in place, they carry a version and stale ones are skipped when
they reach the top.
"""

from __future__ import annotations

import heapq
import itertools

from .base import JSON, Claim, Cursor, TaskRecord, TaskStore

__all__ = ["MemoryStore"]

_CURSOR, _RUN, _LEASE = 0, 1, 2


class _Rec:
    __slots__ = ("held", "record", "running", "runs", "version")

    def __init__(self, record: TaskRecord) -> None:
        self.record = record
        self.runs: set[str] | None = None  # its run ids (created on first use)
        self.version = 0
        self.held: str | None = None  # run id holding the cursor
        self.running = 0  # cursor runs in progress


def _add_run_id(rec: _Rec, run_id: str) -> None:
    if rec.runs is None:
        rec.runs = {run_id}
    else:
        rec.runs.add(run_id)


class _Run:
    __slots__ = (
        "attempt",
        "due",
        "expires",
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


class MemoryStore(TaskStore):
    """Keeps everything in this process; the default store."""

    def __init__(self) -> None:
        self._records: dict[str, _Rec] = {}
        self._runs: dict[str, _Run] = {}
        self._heap: list[tuple[float, int, int, str, int]] = []
        self._seq = itertools.count()
        self._tokens = itertools.count(1)

    def __repr__(self) -> str:
        return f"<MemoryStore records={len(self._records)} runs={len(self._runs)}>"

    # -- heap ---------------------------------------------------------------------

    def _push_cursor(self, rec: _Rec) -> None:
        record = rec.record
        if record.enabled and record.fire_at is not None and rec.held is None:
            entry = (record.fire_at, next(self._seq), _CURSOR, record.key, rec.version)
            heapq.heappush(self._heap, entry)

    def _push_run(self, run: _Run) -> None:
        run.version += 1
        if run.token is None:
            entry = (run.due, next(self._seq), _RUN, run.run_id, run.version)
        else:
            entry = (run.expires, next(self._seq), _LEASE, run.run_id, run.version)
        heapq.heappush(self._heap, entry)

    def _live(self, kind: int, ident: str, version: int) -> bool:
        """Whether a heap entry still stands for something claimable."""
        if kind == _CURSOR:
            rec = self._records.get(ident)
            return (
                rec is not None
                and rec.version == version
                and rec.held is None
                and rec.record.enabled
                and rec.running < rec.record.max_running
            )
        run = self._runs.get(ident)
        return run is not None and run.version == version

    # -- records ------------------------------------------------------------------

    async def save(self, record: TaskRecord) -> None:
        rec = self._records.get(record.key)
        if rec is None:
            rec = self._records[record.key] = _Rec(record)
        else:
            rec.record = record
            rec.version += 1
        self._push_cursor(rec)

    async def get(self, key: str) -> TaskRecord | None:
        rec = self._records.get(key)
        return None if rec is None else rec.record

    async def delete(self, key: str, *, claim: Claim | None = None) -> bool:
        if claim is not None and (
            claim.record.key != key or self._owned(claim) is None
        ):
            return False
        rec = self._records.pop(key, None)
        if rec is None:
            return False
        for run_id in rec.runs or ():
            del self._runs[run_id]
        return True

    async def records(self, task: str | None = None) -> list[TaskRecord]:
        return [
            self._records[key].record
            for key in sorted(self._records)
            if task is None or self._records[key].record.task == task
        ]

    async def add_run(
        self, key: str, *, fire_at: float, payload: dict[str, JSON] | None = None
    ) -> str:
        if key not in self._records:
            raise LookupError(f"no task record {key!r}")
        base = f"{key}@{round(fire_at * 1000)}"
        run_id = base
        n = 1
        while run_id in self._runs:
            n += 1
            run_id = f"{base}.{n}"
        run = self._runs[run_id] = _Run(run_id, key, fire_at, False, payload)
        _add_run_id(self._records[key], run_id)
        self._push_run(run)
        return run_id

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
        heap = self._heap
        claims: list[Claim] = []
        expires = now + lease_duration
        while heap and heap[0][0] <= now and len(claims) < limit:
            _, _, kind, ident, version = heapq.heappop(heap)
            if not self._live(kind, ident, version):
                continue
            if kind == _CURSOR:
                rec = self._records[ident]
                record = rec.record
                assert record.fire_at is not None
                run_id = f"{ident}@{round(record.fire_at * 1000)}"
                run = _Run(run_id, ident, record.fire_at, True, None)
                self._runs[run_id] = run
                _add_run_id(rec, run_id)
                rec.held = run_id
                rec.running += 1
            else:
                run = self._runs[ident]
                if kind == _LEASE:
                    run.attempt += 1  # the previous holder lost its lease
            run.token = f"{owner}:{next(self._tokens)}"
            run.expires = expires
            self._push_run(run)
            claims.append(self._claim(run))
        return claims

    def _claim(self, run: _Run) -> Claim:
        assert run.token is not None
        return Claim(  # positional: this is the hot path
            run.run_id,
            self._records[run.key].record,
            run.fire_at,
            run.attempt,
            run.token,
            run.expires,
            run.from_cursor,
            run.payload,
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

    async def extend(self, claim: Claim, *, until: float) -> bool:
        run = self._owned(claim)
        if run is None:
            return False
        run.expires = until
        self._push_run(run)
        return True

    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
    ) -> bool:
        run = self._owned(claim)
        if run is None:
            return False
        rec = self._records[run.key]
        if cursor is not None:
            if rec.held == run.run_id:
                rec.held = None
            rec.record = rec.record._replace(
                fire_at=cursor.fire_at, backlog=cursor.backlog
            )
            rec.version += 1
        if retry_at is not None:
            run.token = None
            run.attempt += 1
            run.due = retry_at
            self._push_run(run)
        elif not keep_lease:
            del self._runs[run.run_id]
            if rec.runs is not None:
                rec.runs.discard(run.run_id)
            run.version += 1
            if run.from_cursor:
                rec.running -= 1
                if rec.held == run.run_id:  # finished without moving the cursor
                    rec.held = None
                    rec.version += 1
        if cursor is not None or not keep_lease:
            self._push_cursor(rec)
        return True

"""How the SQLite store keeps its data in rows, and the row-level logic of a
batch of commits (no I/O here: :mod:`.sqlite` runs the statements).

Times are integer milliseconds. A record's ``due`` column is generated: its
``fire_at`` while the cursor is claimable (rule 2 of :mod:`.base`), else
``NULL``, so a partial index holds exactly the claimable cursors. A run's ``due``
is when it can be claimed: its due time while unleased, its lease expiry while
leased.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from .base import NO_PARAMS, Claim, Cursor, Lease, RunLogEntry, TaskRecord

__all__ = [
    "RECORD_COLUMNS",
    "RUN_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "DeleteOp",
    "LeaseOp",
    "LogOp",
    "RecordRow",
    "RunRow",
    "SaveOp",
    "chunks",
    "dumps",
    "marks",
    "ms",
    "record_of",
    "replay",
    "seconds",
]

SCHEMA_VERSION = 1
"""The layout of the tables, kept in ``PRAGMA user_version`` of the file."""

IN_CHUNK = 500  # values per "IN (...)" list, well under SQLite's variable limit

_TABLES = """
CREATE TABLE aiohttp_jobs_records (
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    task        TEXT NOT NULL,
    schedule    TEXT,
    params      TEXT,
    enabled     INTEGER NOT NULL,
    fire_at     INTEGER,
    backlog     INTEGER NOT NULL,
    max_running INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    held        TEXT,
    running     INTEGER NOT NULL DEFAULT 0,
    due INTEGER GENERATED ALWAYS AS (
        CASE WHEN enabled AND held IS NULL AND running < max_running
        THEN fire_at END
    ) VIRTUAL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX aiohttp_jobs_records_due
    ON aiohttp_jobs_records (namespace, due) WHERE due IS NOT NULL;
CREATE INDEX aiohttp_jobs_records_task ON aiohttp_jobs_records (namespace, task, key);

CREATE TABLE aiohttp_jobs_runs (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fire_at     INTEGER NOT NULL,
    from_cursor INTEGER NOT NULL,
    payload     TEXT,
    attempt     INTEGER NOT NULL DEFAULT 0,
    token       TEXT,
    due         INTEGER NOT NULL,
    fence       INTEGER NOT NULL DEFAULT 0,
    cancelled   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, run_id)
);
CREATE INDEX aiohttp_jobs_runs_due ON aiohttp_jobs_runs (namespace, due);
CREATE INDEX aiohttp_jobs_runs_key ON aiohttp_jobs_runs (namespace, key);

CREATE TABLE aiohttp_jobs_counters (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

CREATE TABLE aiohttp_jobs_instances (
    namespace   TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    version     TEXT NOT NULL,
    started     INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires     INTEGER NOT NULL,
    PRIMARY KEY (namespace, instance_id)
) WITHOUT ROWID;

CREATE TABLE aiohttp_jobs_run_log (
    id        INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    instance  TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    outcome   TEXT NOT NULL,
    started   INTEGER NOT NULL,
    finished  INTEGER NOT NULL,
    error     TEXT
);
CREATE INDEX aiohttp_jobs_run_log_key ON aiohttp_jobs_run_log (namespace, key, id);
"""

SCHEMA: tuple[str, ...] = (
    *(statement for statement in _TABLES.split(";") if statement.strip()),
    # Another revision replaces a record: its runs go (rule 5 of .base).
    """CREATE TRIGGER aiohttp_jobs_records_replaced
    BEFORE UPDATE OF revision ON aiohttp_jobs_records
    WHEN OLD.revision <> NEW.revision
    BEGIN
        DELETE FROM aiohttp_jobs_runs
        WHERE namespace = OLD.namespace AND key = OLD.key;
    END""",
    # A deleted record takes its runs and its run log along.
    """CREATE TRIGGER aiohttp_jobs_records_deleted
    AFTER DELETE ON aiohttp_jobs_records
    BEGIN
        DELETE FROM aiohttp_jobs_runs
        WHERE namespace = OLD.namespace AND key = OLD.key;
        DELETE FROM aiohttp_jobs_run_log
        WHERE namespace = OLD.namespace AND key = OLD.key;
    END""",
)
"""The statements that create the tables, indexes and triggers (in order)."""

RECORD_COLUMNS = (
    "key, task, schedule, params, enabled, fire_at, backlog, max_running, revision"
)
RUN_COLUMNS = (
    "id, run_id, key, fire_at, from_cursor, payload, attempt, token, due, cancelled"
)


def ms(seconds: float) -> int:
    """POSIX seconds as the integer milliseconds a row keeps."""
    return round(seconds * 1000)


def seconds(ms: int | None) -> float | None:
    """A row's milliseconds as POSIX seconds."""
    return None if ms is None else ms / 1000


def dumps(value: object) -> str:
    """Parameters, schedules and payloads as compact JSON text."""
    return json.dumps(value, separators=(",", ":"))


def record_of(row: Sequence[Any]) -> TaskRecord:
    """The :class:`TaskRecord` of a row selected with :data:`RECORD_COLUMNS`."""
    key, task, schedule, params, enabled, fire_at, backlog, max_running, rev = row
    return TaskRecord(
        key,
        task,
        None if schedule is None else json.loads(schedule),
        NO_PARAMS if params is None else json.loads(params),
        bool(enabled),
        seconds(fire_at),
        backlog,
        max_running,
        rev,
    )


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    """*items* in slices of *size*: short enough for one ``IN (...)`` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(n: int) -> str:
    """``?,?,...``: *n* parameter marks."""
    return ",".join("?" * n)


# Writes waiting for the next batch transaction, each with the future of its
# answer; the store applies a run of them of one kind together.


class SaveOp(NamedTuple):
    """A save: its row."""

    row: tuple[Any, ...]
    future: asyncio.Future[None]


class DeleteOp(NamedTuple):
    """A delete, with the claim that must still hold its run (if any)."""

    key: str
    claim: Claim | None
    future: asyncio.Future[bool]


class LogOp(NamedTuple):
    """A run log entry."""

    entry: RunLogEntry
    future: asyncio.Future[None]


class LeaseOp:
    """A commit or extend waiting for the next batch transaction."""

    __slots__ = ("claim", "cursor", "future", "keep_lease", "log", "retry_at", "until")

    def __init__(
        self,
        claim: Claim,
        future: asyncio.Future[Lease],
        *,
        until: float | None = None,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
        log: RunLogEntry | None = None,
    ) -> None:
        self.claim = claim
        self.future = future
        self.until = until
        self.cursor = cursor
        self.retry_at = retry_at
        self.keep_lease = keep_lease
        self.log = log


class RunRow:
    """A run as a batch of commits reads it, changed in place by the replay."""

    __slots__ = (
        "attempt",
        "cancelled",
        "deleted",
        "dirty",
        "due",
        "from_cursor",
        "id",
        "key",
        "run_id",
        "token",
    )

    def __init__(
        self,
        id: int,
        run_id: str,
        key: str,
        from_cursor: int,
        attempt: int,
        token: str | None,
        due: int,
        cancelled: int,
    ) -> None:
        self.id = id
        self.run_id = run_id
        self.key = key
        self.from_cursor = bool(from_cursor)
        self.attempt = attempt
        self.token = token
        self.due = due
        self.cancelled = bool(cancelled)
        self.deleted = False
        self.dirty = False


class RecordRow:
    """The cursor columns of a record, as a batch of commits reads them."""

    __slots__ = ("backlog", "dirty", "fire_at", "held", "key", "running")

    def __init__(
        self,
        key: str,
        held: str | None,
        running: int,
        fire_at: int | None,
        backlog: int,
    ) -> None:
        self.key = key
        self.held = held
        self.running = running
        self.fire_at = fire_at
        self.backlog = backlog
        self.dirty = False


def replay(
    op: LeaseOp, runs: dict[str, RunRow], records: dict[str, RecordRow]
) -> Lease:
    """What one commit or extend does to the rows (what MemoryStore does)."""
    claim = op.claim
    run = runs.get(claim.run_id)
    if (
        run is None
        or run.deleted
        or run.token is None
        or run.token != claim.token
        or run.key != claim.record.key
        or run.key not in records
    ):
        return Lease.LOST
    answer = Lease.CANCELLED if run.cancelled else Lease.HELD
    run.dirty = True
    if op.until is not None:
        run.due = ms(op.until)
        return answer
    record = records[run.key]
    record.dirty = True
    retry_at, keep_lease = op.retry_at, op.keep_lease
    if run.cancelled:  # a cancelled run finishes (rule 7)
        retry_at, keep_lease = None, False
    if op.cursor is not None:
        if record.held == run.run_id:
            record.held = None
        record.fire_at = None if op.cursor.fire_at is None else ms(op.cursor.fire_at)
        record.backlog = op.cursor.backlog
    if retry_at is not None:
        run.token = None
        run.attempt += 1
        run.due = ms(retry_at)
    elif not keep_lease:
        run.deleted = True
        if run.from_cursor:
            record.running -= 1
            if record.held == run.run_id:
                record.held = None
    return answer

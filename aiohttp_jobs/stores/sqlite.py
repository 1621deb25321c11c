"""The SQLite task store: one file shared by the processes of one host.

Built on :mod:`aiosqlite` (``pip install "aiohttp-jobs[sqlite]"``), imported
when the store opens, so importing this module costs nothing.

How it stays correct with several processes on one file:

* The file is in WAL mode: readers and the writer do not block each other,
  and a process killed inside a write leaves a transaction that never
  committed, which the next connection ignores.
* Every transaction that reads and then writes starts with ``BEGIN IMMEDIATE``:
  it takes the write lock before reading, so two processes never both read the
  same due run and then race to claim it. (A deferred ``BEGIN`` upgrades its
  lock at the first write and fails with "database is locked" when another
  process got there first, whatever the busy timeout; an immediate one waits.)
* ``busy_timeout``: how long a process waits for another's write lock before a
  call fails (the runner logs the error and tries again).
* A claim reads the earliest due cursors and runs in one statement, then
  inserts the cursors' runs already leased and leases the runs with one
  ``UPDATE ... RETURNING``. The writes made in one event-loop turn or the next
  (commits, heartbeats, saves, deletes, claims...) share one transaction: one
  lock, one sync to disk, and one statement for each run of writes of a kind
  (a batch of finished once-off runs is one ``DELETE``); each caller gets its
  own answer.
* Times are integer milliseconds, indexed, so finding what is due costs the
  same with a million records as with a thousand.
* SQLite tells no other process of a change: while someone is subscribed, a
  thread of the store reads the header of the WAL index (the ``-shm`` file,
  whose header every commit rewrites) every ``poll_interval`` seconds, which
  costs no query; when it moved, the store reads ``PRAGMA data_version`` (a
  counter of commits made by other connections) and notifies the subscribers
  when that moved. The header is only a hint: the store also asks SQLite once
  a second, and every ``max(poll_interval, 0.1)`` seconds where there is no
  index to read.

Not on a network file system (NFS, SMB/CIFS, cloud file shares such as EFS or
Azure Files): SQLite's locks are POSIX advisory locks, which network file
systems implement wrongly or not at all (two processes then both believe they
hold the write lock, and the file is corrupted), and WAL mode needs a
shared-memory index (the ``-shm`` file, memory-mapped by every process) that
processes on different machines cannot share. A block volume mounted by one
host (a local disk, EBS, a Kubernetes ReadWriteOnce volume) is fine; for
several hosts use Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any, Literal

from .._checks import (
    MAX_TIMESTAMP,
    check_count,
    check_duration,
    check_name,
    check_timestamp,
)
from .._errors import ConfigError, ConfigTypeError, MissingDependencyError
from ._sqlite_rows import (
    RECORD_COLUMNS,
    RUN_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    DeleteOp,
    LeaseOp,
    LogOp,
    RecordRow,
    RunRow,
    SaveOp,
    chunks,
    dumps,
    marks,
    ms,
    record_of,
    replay,
    seconds,
)
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

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

log = logging.getLogger("aiohttp_jobs.stores")

_SYNCHRONOUS = ("FULL", "NORMAL")

# Another revision: a trigger drops the old one's runs (rule 5).
_SAVE = (
    "INSERT INTO aiohttp_jobs_records (namespace, key, task, schedule, "
    "params, enabled, fire_at, backlog, max_running, revision) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (namespace, key) DO UPDATE SET task = excluded.task, "
    "schedule = excluded.schedule, params = excluded.params, "
    "enabled = excluded.enabled, fire_at = excluded.fire_at, "
    "backlog = excluded.backlog, max_running = excluded.max_running, "
    "held = CASE WHEN revision = excluded.revision THEN held END, "
    "running = CASE WHEN revision = excluded.revision THEN running "
    "ELSE 0 END, revision = excluded.revision"
)


def _check_folder(path: str) -> None:
    """Refuse a file whose folder is missing, naming it (SQLite would only say
    "unable to open database file")."""
    folder = os.path.dirname(os.path.abspath(path))
    if path != ":memory:" and not os.path.isdir(folder):
        raise ConfigError(
            f"path={path!r}: the folder {folder!r} does not exist "
            "(the store creates the file, not its folder)"
        )


# The WAL index (the ``-shm`` file every connection maps) starts with a 48-byte
# header that every commit rewrites (its change counter, frame count and
# checksums: https://www.sqlite.org/walformat.html). Reading it costs no query
# and no round trip to the connection's thread.
_HEADER_SIZE = 48
_ASK_EVERY = 1.0  # seconds between two questions to SQLite anyway
_FALLBACK_INTERVAL = 0.1  # ... at least, when there is no index to read
_MIN_POLL_INTERVAL = 0.001


def _index_of(path: str) -> str | None:
    """The WAL index file of the database at *path*, as SQLite names it (links
    followed, from the current directory); ``None`` in memory."""
    return None if path == ":memory:" else os.path.realpath(path) + "-shm"


def _read_header(fd: int) -> bytes | None:
    """The header of the WAL index open at *fd*; ``None`` if unreadable."""
    try:
        if hasattr(os, "pread"):
            header = os.pread(fd, _HEADER_SIZE, 0)
        else:  # pragma: no cover - Windows
            os.lseek(fd, 0, os.SEEK_SET)
            header = os.read(fd, _HEADER_SIZE)
    except OSError:
        return None
    return header if len(header) == _HEADER_SIZE else None


class _IndexWatch:
    """A thread that reads the WAL index header every *interval* seconds and
    calls *moved* on *loop* when it changed.

    A thread, not a timer of the event loop: waking a sleeping thread costs a
    fraction of a loop turn, and an idle process should stay cheap.
    """

    __slots__ = ("_fd", "_interval", "_loop", "_moved", "_stopped")

    def __init__(
        self,
        fd: int,
        interval: float,
        loop: asyncio.AbstractEventLoop,
        moved: Callable[[], None],
    ) -> None:
        self._fd = fd
        self._interval = interval
        self._loop = loop
        self._moved = moved
        self._stopped = False

    @classmethod
    def start(
        cls,
        path: str | None,
        interval: float,
        loop: asyncio.AbstractEventLoop,
        moved: Callable[[], None],
    ) -> _IndexWatch | None:
        """Watch the WAL index at *path* (the database's, ``None`` for an
        in-memory one); ``None`` when there is none to read (a journal that is
        not WAL)."""
        if path is None:
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        if _read_header(fd) is None:
            os.close(fd)
            return None
        watch = cls(fd, interval, loop, moved)
        threading.Thread(
            target=watch._run, name="sqlite-store-watch", daemon=True
        ).start()
        return watch

    @property
    def watching(self) -> bool:
        """Whether the thread still looks (it stops when the index becomes
        unreadable)."""
        return not self._stopped

    def stop(self) -> None:
        """Stop looking (the thread ends after its current sleep)."""
        self._stopped = True

    def _run(self) -> None:
        fd, interval, sleep = self._fd, self._interval, time.sleep
        try:
            header = _read_header(fd)
            while not self._stopped:
                sleep(interval)
                seen = _read_header(fd)
                if seen is None:  # unreadable: SQLite is asked more often
                    self._stopped = True
                if seen != header:
                    header = seen
                    self._loop.call_soon_threadsafe(self._moved)
        except RuntimeError:  # the loop closed
            pass
        finally:
            os.close(fd)


def _import_aiosqlite() -> Any:
    try:
        import aiosqlite
    except ImportError as exc:
        raise MissingDependencyError(
            "SQLiteStore needs the 'aiosqlite' library, which is not installed: "
            'pip install "aiohttp-jobs[sqlite]"'
        ) from exc
    return aiosqlite


Body = Callable[["aiosqlite.Connection"], Awaitable[Any]]


class _Body:
    """A write (a save, a claim, ...) waiting for the next batch transaction."""

    __slots__ = ("body", "future", "notify")

    def __init__(self, body: Body, future: asyncio.Future[Any], notify: bool) -> None:
        self.body = body
        self.future = future
        self.notify = notify


_Op = SaveOp | DeleteOp | LogOp | LeaseOp
_Item = _Body | _Op
_DELETE_CHUNK = 300  # deletes per statement: 3 parameters each, under 999


def _due_order(row: Sequence[Any]) -> tuple[Any, ...]:
    """How acquire() orders what is due: by due time, runs (kind 0) before
    cursors on a tie, then by row id (runs) or key (cursors)."""
    return row[1], row[0], row[2]


def _groups(batch: list[_Item]) -> Iterator[list[Any]]:
    """*batch* in order, as runs of operations of one kind (applied together)
    and bodies alone (each body is its own key)."""
    for _, group in groupby(
        batch, key=lambda item: item if isinstance(item, _Body) else type(item)
    ):
        yield list(group)


def _distinct_keys(batch: list[DeleteOp]) -> Iterator[list[DeleteOp]]:
    """*batch* in order, in slices of at most ``_DELETE_CHUNK`` deletes of
    distinct keys (one statement each: a key deleted twice in one statement
    would be reported deleted twice)."""
    group: list[DeleteOp] = []
    keys: set[str] = set()
    for op in batch:
        if op.key in keys or len(group) == _DELETE_CHUNK:
            yield group
            group, keys = [], set()
        group.append(op)
        keys.add(op.key)
    if group:
        yield group


class SQLiteStore(TaskStore):
    """Keeps tasks, runs and leases in one SQLite file, shared by the processes
    of one host (see the module documentation for how, and why not over a
    network file system).

    :param path: the database file (created with its tables if missing), or
        ``":memory:"`` for a private in-memory database (one process).
    :param namespace: records of other namespaces in the same file are
        invisible: several applications can share one file.
    :param busy_timeout: seconds a write waits for another process's write lock
        before the call fails with ``sqlite3.OperationalError``.
    :param poll_interval: seconds between two looks for changes made by other
        processes, while something is subscribed (:meth:`subscribe`): how late
        a run another process adds may start here at worst. A look reads 48
        bytes of shared memory in a thread, no query; SQLite is asked only when
        they changed. At the default 0.005 s an idle runner process uses about
        half a percent of a core (``idle_cpu`` in the store benchmark; see the
        capacity page). At least 0.001.
    :param synchronous: ``"FULL"`` (the default) syncs the write-ahead log on
        every commit; ``"NORMAL"`` is faster and still survives a killed
        process, but a power cut may lose the last commits (their runs then
        run again).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        namespace: str = "aiohttp_jobs",
        busy_timeout: float = 5.0,
        poll_interval: float = 0.005,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ConfigTypeError(
                f"path must be a file path (str or os.PathLike), got {path!r} "
                f"({type(path).__name__})"
            )
        self._path = os.fspath(path)
        if not self._path:
            raise ConfigError(f"path must name a file, got {path!r}")
        self._namespace: str = check_name("namespace", namespace)  # type: ignore[assignment]
        self._busy_timeout = check_duration("busy_timeout", busy_timeout)
        self._poll_interval = check_duration(
            "poll_interval", poll_interval, positive=True
        )
        if self._poll_interval < _MIN_POLL_INTERVAL:
            raise ConfigError(
                f"poll_interval must be at least {_MIN_POLL_INTERVAL} seconds (each "
                f"look wakes a thread), got {poll_interval!r}"
            )
        if synchronous not in _SYNCHRONOUS:
            raise ConfigError(
                f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}"
            )
        self._synchronous = synchronous
        self._conn: aiosqlite.Connection | None = None
        self._opened = 0
        self._lock = asyncio.Lock()
        self._subscribers = _Subscribers(log)
        self._poller: asyncio.Task[None] | None = None
        self._data_version = 0
        self._index: str | None = None  # the WAL index file, once open
        self._pending: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "open" if self._opened else "closed"
        return f"<SQLiteStore {state} {self._path!r} namespace={self._namespace!r}>"

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def namespace(self) -> str:
        """The namespace this store reads and writes in its file."""
        return self._namespace

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Connect (the first open), set up WAL, create or check the tables."""
        self._opened += 1
        if self._opened > 1:
            return
        self._lock = asyncio.Lock()  # of this event loop
        try:
            self._conn = await self._connect()
        except BaseException:
            self._opened -= 1
            raise
        if self._subscribers:
            self._start_poller()

    async def _connect(self) -> aiosqlite.Connection:
        library = _import_aiosqlite()
        _check_folder(self._path)
        self._index = _index_of(self._path)
        conn: aiosqlite.Connection = await library.connect(
            self._path, isolation_level=None
        )
        try:
            await conn.execute(f"PRAGMA busy_timeout = {ms(self._busy_timeout)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                [(version,)] = await conn.execute_fetchall("PRAGMA user_version")
                if version == 0:
                    # One by one: executescript() would commit first.
                    for statement in SCHEMA:
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif version != SCHEMA_VERSION:
                    raise ConfigError(
                        f"{self._path!r} holds aiohttp-jobs tables of schema "
                        f"version {version}; this release reads version "
                        f"{SCHEMA_VERSION} (use a matching aiohttp-jobs release, "
                        "or another file)"
                    )
                await conn.execute(
                    "INSERT OR IGNORE INTO aiohttp_jobs_counters VALUES (?, ?, 0)",
                    (self._namespace, "fence"),
                )
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            [(self._data_version,)] = await conn.execute_fetchall("PRAGMA data_version")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Undo one :meth:`open`; the last one finishes the pending commits and
        closes the connection."""
        if not self._opened:
            return
        self._opened -= 1
        if self._opened:
            return
        if self._poller is not None:
            self._poller.cancel()
            poller, self._poller = self._poller, None
            await asyncio.gather(poller, return_exceptions=True)
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                await conn.close()

    # -- notifications ------------------------------------------------------------

    def subscribe(self, callback: Callable[[], object]) -> Unsubscribe:
        """Changes made through this store are notified when their transaction
        commits; changes made by other processes (or other connections) within
        ``poll_interval`` seconds, while the store is open."""
        unsubscribe = self._subscribers.add(callback)
        if self._opened:
            self._start_poller()

        return unsubscribe

    def _start_poller(self) -> None:
        if self._poller is None or self._poller.done():
            loop = asyncio.get_running_loop()
            self._poller = loop.create_task(self._poll(), name="sqlite-store-poll")

    async def _poll(self) -> None:
        """Notify when another connection committed (``PRAGMA data_version``,
        asked when the WAL index moved, and once a second anyway: the index is
        a hint, SQLite's counter decides)."""
        loop = asyncio.get_running_loop()
        moved = asyncio.Event()
        moved.set()  # the first round asks: changes made since the store opened
        watch = _IndexWatch.start(self._index, self._poll_interval, loop, moved.set)
        fallback = max(self._poll_interval, _FALLBACK_INTERVAL)
        anyway = max(self._poll_interval, _ASK_EVERY)
        try:
            while self._subscribers:
                if not moved.is_set():
                    watching = watch is not None and watch.watching
                    every = anyway if watching else fallback
                    timer = loop.call_later(every, moved.set)
                    try:
                        await moved.wait()
                    finally:
                        timer.cancel()
                    continue  # the subscribers may have gone meanwhile
                moved.clear()
                try:
                    async with self._lock:
                        if self._conn is None:
                            return
                        rows = await self._conn.execute_fetchall("PRAGMA data_version")
                except Exception:
                    log.exception("SQLite store: reading data_version failed")
                    continue
                [(version,)] = rows
                if version != self._data_version:
                    self._data_version = version
                    self._subscribers.notify()
        finally:
            if watch is not None:
                watch.stop()
        self._poller = None

    # -- transactions ---------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError(f"{self!r} is not open: call open() first")
        return self._conn

    async def _write(self, body: Body, *, notify: bool = False) -> Any:
        """``await body(conn)`` inside the next batch transaction; its result.

        A caller cancelled meanwhile does not take its write back: it is done
        (or fails) with the rest of the batch.
        """
        return await self._queue(_Body(body, self._future(), notify))

    def _future(self) -> asyncio.Future[Any]:
        """A future for the answer to a queued write (the store must be open)."""
        self._connection()
        return asyncio.get_running_loop().create_future()

    async def _queue(self, item: _Item) -> Any:
        """The answer to *item*, once the batch transaction that takes it is
        done (a caller cancelled meanwhile does not take its write back)."""
        self._pending.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await asyncio.shield(item.future)

    async def _read(self, sql: str, params: Sequence[Any]) -> Iterable[Any]:
        async with self._lock:
            return await self._connection().execute_fetchall(sql, params)

    # -- records ------------------------------------------------------------------

    async def save(self, record: TaskRecord) -> None:
        if not isinstance(record, TaskRecord):
            raise ConfigTypeError(
                f"record must be a TaskRecord, got {record!r} ({type(record).__name__})"
            )
        ns = self._namespace
        row = (
            ns,
            record.key,
            record.task,
            None if record.schedule is None else dumps(record.schedule),
            dumps(dict(record.params)) if record.params else None,
            int(record.enabled),
            None if record.fire_at is None else ms(record.fire_at),
            record.backlog,
            record.max_running,
            record.revision,
        )

        await self._queue(SaveOp(row, self._future()))

    async def get(self, key: str) -> TaskRecord | None:
        rows = list(
            await self._read(
                f"SELECT {RECORD_COLUMNS} FROM aiohttp_jobs_records "
                "WHERE namespace = ? AND key = ?",
                (self._namespace, key),
            )
        )
        return record_of(rows[0]) if rows else None

    async def delete(self, key: str, *, claim: Claim | None = None) -> bool:
        if claim is not None and claim.record.key != key:
            return False
        deleted: bool = await self._queue(DeleteOp(key, claim, self._future()))
        return deleted

    async def records(self, task: str | None = None) -> list[TaskRecord]:
        sql = f"SELECT {RECORD_COLUMNS} FROM aiohttp_jobs_records WHERE namespace = ?"
        params: tuple[str, ...] = (self._namespace,)
        if task is not None:
            sql += " AND task = ?"
            params += (task,)
        return [
            record_of(row) for row in await self._read(sql + " ORDER BY key", params)
        ]

    async def add_run(
        self, key: str, *, fire_at: float, payload: dict[str, JSON] | None = None
    ) -> str:
        if type(fire_at) is not float or not 0.0 <= fire_at <= MAX_TIMESTAMP:
            fire_at = check_timestamp("fire_at", fire_at)
        ns = self._namespace
        fire_ms = ms(fire_at)
        base = f"{key}@{fire_ms}"
        data = None if payload is None else dumps(payload)

        async def body(conn: aiosqlite.Connection) -> str:
            # Mostly the plain id is free: one statement adds the run if the
            # record exists and no run has that id.
            added = await conn.execute(
                "INSERT OR IGNORE INTO aiohttp_jobs_runs (namespace, run_id, key, "
                "fire_at, from_cursor, payload, due) SELECT ?, ?, ?, ?, 0, ?, ? "
                "FROM aiohttp_jobs_records WHERE namespace = ? AND key = ?",
                (ns, base, key, fire_ms, data, fire_ms, ns, key),
            )
            if added.rowcount == 1:
                return base
            # The run ids taken from this base on, and a NULL if the record exists.
            rows = await conn.execute_fetchall(
                "SELECT run_id FROM aiohttp_jobs_runs WHERE namespace = ? "
                "AND (run_id = ? OR (run_id > ? AND run_id < ?)) UNION ALL "
                "SELECT NULL FROM aiohttp_jobs_records WHERE namespace = ? AND key = ?",
                (ns, base, base + ".", base + "/", ns, key),
            )
            taken = {run_id for (run_id,) in rows}
            if None not in taken:
                raise LookupError(f"no task record {key!r}")
            run_id, n = base, 1
            while run_id in taken:
                n += 1
                run_id = f"{base}.{n}"
            await conn.execute(
                "INSERT INTO aiohttp_jobs_runs (namespace, run_id, key, fire_at, "
                "from_cursor, payload, due) VALUES (?, ?, ?, ?, 0, ?, ?)",
                (ns, run_id, key, fire_ms, data, fire_ms),
            )
            return run_id

        run_id: str = await self._write(body, notify=True)
        return run_id

    # -- claiming -----------------------------------------------------------------

    async def next_due(self) -> float | None:
        ns = self._namespace
        [(due,)] = await self._read(
            "SELECT min(due) FROM (SELECT min(due) AS due FROM aiohttp_jobs_records "
            "WHERE namespace = ? AND due IS NOT NULL UNION ALL "
            "SELECT min(due) FROM aiohttp_jobs_runs WHERE namespace = ?)",
            (ns, ns),
        )
        return seconds(due)

    async def acquire(
        self, *, now: float, owner: str, lease_duration: float, limit: int
    ) -> list[Claim]:
        if type(limit) is not int or limit < 1:
            check_count("limit", limit, minimum=1)
        ns = self._namespace
        now_ms = ms(now)
        expires_ms = ms(now + lease_duration)
        expires_at = expires_ms / 1000
        token_of = f"{owner}:{{}}".format

        async def body(conn: aiosqlite.Connection) -> list[Claim]:
            # The earliest `limit` due cursors and due runs, in one statement:
            # (kind: 0 a run, 1 a cursor, due, run row id or record key, record).
            due = await conn.execute_fetchall(
                f"SELECT * FROM (SELECT 1, due, key, {RECORD_COLUMNS} "
                "FROM aiohttp_jobs_records WHERE namespace = ? AND due IS NOT NULL "
                "AND due <= ? ORDER BY due LIMIT ?) UNION ALL "
                "SELECT * FROM (SELECT 0, due, id, NULL, NULL, NULL, NULL, NULL, "
                "NULL, NULL, NULL, NULL FROM aiohttp_jobs_runs WHERE namespace = ? "
                "AND due <= ? ORDER BY due, id LIMIT ?)",
                # Plain placeholders: numbered ones warn on Python 3.12.
                (ns, now_ms, limit) * 2,
            )
            # In due order, runs first on a tie; the fences grow in that order.
            chosen = sorted(due, key=_due_order)[:limit]
            if not chosen:
                return []
            [(last,)] = await conn.execute_fetchall(
                "UPDATE aiohttp_jobs_counters SET value = value + ? "
                "WHERE namespace = ? AND name = 'fence' RETURNING value",
                (len(chosen), ns),
            )
            first = last - len(chosen) + 1
            claims: list[Claim | None] = [None] * len(chosen)
            records: dict[str, TaskRecord] = {}
            cursors: list[tuple[int, TaskRecord, int]] = []  # (position, record, ms)
            runs: list[tuple[int, int]] = []  # (row id, position)
            for n, (kind, due_ms, ident, *columns) in enumerate(chosen):
                if kind:
                    record = records[ident] = record_of(columns)
                    cursors.append((n, record, due_ms))
                else:
                    runs.append((ident, n))
            if cursors:
                # Each claimed cursor becomes a run, leased at once, that holds
                # its record.
                new = {
                    f"{record.key}@{fire_ms}": (
                        ns,
                        f"{record.key}@{fire_ms}",
                        record.key,
                        fire_ms,
                        token_of(first + n),
                        expires_ms,
                        first + n,
                    )
                    for n, record, fire_ms in cursors
                }
                added = await self._insert_runs(conn, list(new.values()))
                for base in new.keys() - added:  # an added run has that id
                    row = new[base]
                    run_id = await self._free_id(conn, base)
                    await self._insert_runs(conn, [(ns, run_id, *row[2:])])
                    new[base] = (ns, run_id, *row[2:])
                await conn.executemany(
                    "UPDATE aiohttp_jobs_records SET held = ?, "
                    "running = running + 1 WHERE namespace = ? AND key = ?",
                    [(row[1], ns, row[2]) for row in new.values()],
                )
                for (n, record, fire_ms), row in zip(
                    cursors, new.values(), strict=True
                ):
                    claims[n] = Claim(
                        row[1],
                        record,
                        fire_ms / 1000,
                        0,
                        row[4],
                        expires_at,
                        True,
                        None,
                        row[6],
                        False,
                    )
            if runs:
                claimed = await conn.execute_fetchall(
                    "UPDATE aiohttp_jobs_runs SET due = ?, "
                    "attempt = attempt + (token IS NOT NULL), "
                    "fence = ? + chosen.n, token = ? || (? + chosen.n) "
                    "FROM (SELECT json_extract(value, '$[0]') AS id, "
                    "json_extract(value, '$[1]') AS n FROM json_each(?)) AS chosen "
                    "WHERE aiohttp_jobs_runs.id = chosen.id "
                    f"RETURNING {RUN_COLUMNS}, fence",
                    (expires_ms, first, f"{owner}:", first, dumps(runs)),
                )
                missing = sorted({row[2] for row in claimed} - records.keys())
                for row in await self._rows_in(
                    conn,
                    f"SELECT {RECORD_COLUMNS} FROM aiohttp_jobs_records",
                    "key",
                    missing,
                ):
                    records[row[0]] = record_of(row)
                for (
                    _,
                    run_id,
                    key,
                    fire_ms,
                    from_cursor,
                    payload,
                    attempt,
                    token,
                    _,
                    cancelled,
                    fence,
                ) in claimed:
                    claims[fence - first] = Claim(
                        run_id,
                        records[key],
                        fire_ms / 1000,
                        attempt,
                        token,
                        expires_at,
                        bool(from_cursor),
                        None if payload is None else json.loads(payload),
                        fence,
                        bool(cancelled),
                    )
            return [claim for claim in claims if claim is not None]

        claims: list[Claim] = await self._write(body)
        return claims

    async def _insert_runs(
        self, conn: aiosqlite.Connection, rows: list[tuple[Any, ...]]
    ) -> set[str]:
        """Insert runs of claimed cursors, leased: (namespace, run_id, key,
        fire_at, token, due, fence) each, unless a run has that id; the run ids
        inserted."""
        inserted: set[str] = set()
        for chunk in chunks(rows, 999 // 7):
            added = await conn.execute_fetchall(
                "INSERT OR IGNORE INTO aiohttp_jobs_runs (namespace, run_id, key, "
                "fire_at, token, due, fence, from_cursor) VALUES "
                + ",".join(["(?, ?, ?, ?, ?, ?, ?, 1)"] * len(chunk))
                + " RETURNING run_id",
                [value for row in chunk for value in row],
            )
            inserted.update(run_id for (run_id,) in added)
        return inserted

    async def _free_id(self, conn: aiosqlite.Connection, base: str) -> str:
        """A run id for a new run whose *base* id is taken: ``<base>.<n>``, the
        lowest free ``n`` from 2 (an added run due at the same millisecond as
        the cursor)."""
        rows = await conn.execute_fetchall(
            "SELECT run_id FROM aiohttp_jobs_runs WHERE namespace = ? "
            "AND (run_id = ? OR (run_id > ? AND run_id < ?))",
            (self._namespace, base, base + ".", base + "/"),
        )
        taken = {run_id for (run_id,) in rows}
        run_id, n = base, 1
        while run_id in taken:
            n += 1
            run_id = f"{base}.{n}"
        return run_id

    async def _rows_in(
        self,
        conn: aiosqlite.Connection,
        select: str,
        column: str,
        values: Sequence[str],
    ) -> list[Any]:
        """The rows of *select* (``SELECT ... FROM <table>``) in this store's
        namespace whose *column* is one of *values*, asked in slices short
        enough for one ``IN (...)`` list."""
        rows: list[Any] = []
        for chunk in chunks(values):
            rows.extend(
                await conn.execute_fetchall(
                    f"{select} WHERE namespace = ? AND {column} IN "
                    f"({marks(len(chunk))})",
                    (self._namespace, *chunk),
                )
            )
        return rows

    # -- commits and heartbeats, batched per loop turn ------------------------------

    async def extend(self, claim: Claim, *, until: float) -> Lease:
        return await self._submit(claim, until=until)

    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
        log: RunLogEntry | None = None,
    ) -> Lease:
        return await self._submit(
            claim, cursor=cursor, retry_at=retry_at, keep_lease=keep_lease, log=log
        )

    async def _submit(self, claim: Claim, **kwargs: Any) -> Lease:
        """Queue a commit or extend for the batch transaction; its result."""
        lease: Lease = await self._queue(LeaseOp(claim, self._future(), **kwargs))
        return lease

    async def _flush(self) -> None:
        """Write what is pending, one transaction per batch.

        Every write asked for in the same loop turn or the next (the runs of a
        batch started together finish together), and those asked for while the
        previous batch was being written, share one ``BEGIN IMMEDIATE``
        transaction (one lock, one sync to disk); each caller gets its own
        answer, or its own error. Writes of one kind in a row (saves, deletes,
        commits and extends, run log entries) take one statement together.
        """
        while self._pending:
            await asyncio.sleep(0)  # writes asked for in the next loop turn join
            async with self._lock:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await self._run_batch(batch)
                except Exception as exc:  # the batch was undone: each caller hears
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                except BaseException:  # the flusher itself is cancelled
                    for item in [*batch, *self._pending]:
                        item.future.cancel()
                    self._pending = []
                    raise
            if any(notify for *_, notify in outcomes):
                self._subscribers.notify()
            for future, ok, value, _ in outcomes:
                if not future.done():
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)

    async def _run_batch(
        self, batch: list[_Item]
    ) -> list[tuple[asyncio.Future[Any], bool, Any, bool]]:
        """Run *batch* in order in one transaction: (future, ok, result or
        error, notify) per item.

        A write refuses with ``LookupError`` before it writes anything: only its
        caller gets the error. Any other error undoes the whole batch and every
        caller in it gets the error.
        """
        conn = self._connection()
        outcomes: list[tuple[asyncio.Future[Any], bool, Any, bool]] = []
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for group in _groups(batch):
                first = group[0]
                if isinstance(first, _Body):
                    try:
                        value = await first.body(conn)
                    except LookupError as exc:  # refused before it wrote anything
                        outcomes.append((first.future, False, exc, False))
                    else:
                        outcomes.append((first.future, True, value, first.notify))
                elif isinstance(first, LeaseOp):
                    outcomes += [
                        (op.future, True, lease, bool(lease))
                        for op, lease in await self._apply_leases(conn, group)
                    ]
                elif isinstance(first, DeleteOp):
                    outcomes += [
                        (op.future, True, deleted, False)
                        for op, deleted in await self._apply_deletes(conn, group)
                    ]
                elif isinstance(first, SaveOp):
                    await conn.executemany(_SAVE, [op.row for op in group])
                    outcomes += [(op.future, True, None, True) for op in group]
                else:
                    await self._append_log(conn, [op.entry for op in group])
                    outcomes += [(op.future, True, None, False) for op in group]
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        return outcomes

    async def _apply_deletes(
        self, conn: aiosqlite.Connection, batch: list[DeleteOp]
    ) -> list[tuple[DeleteOp, bool]]:
        """Apply deletes in order, a statement for as many as have distinct
        keys (a key deleted twice: the second finds nothing)."""
        ns = self._namespace
        results: list[tuple[DeleteOp, bool]] = []
        for group in _distinct_keys(batch):
            params: list[Any] = []
            for op in group:
                claim = op.claim
                params += (
                    (op.key, None, None)
                    if claim is None
                    else (op.key, claim.run_id, claim.token)
                )
            # Each (key, run_id, token): with a claim, only while its run is
            # still held by that claim's token; a trigger deletes runs and log.
            rows = await conn.execute_fetchall(
                "WITH doomed (key, run_id, token) AS (VALUES "
                f"{','.join(['(?, ?, ?)'] * len(group))}) "
                "DELETE FROM aiohttp_jobs_records WHERE namespace = ? AND key IN "
                "(SELECT key FROM doomed WHERE run_id IS NULL OR EXISTS "
                "(SELECT 1 FROM aiohttp_jobs_runs AS r WHERE r.namespace = ? "
                "AND r.run_id = doomed.run_id AND r.token = doomed.token)) "
                "RETURNING key",
                (*params, ns, ns),
            )
            deleted = {key for (key,) in rows}
            results += [(op, op.key in deleted) for op in group]
        return results

    async def _apply_leases(
        self, conn: aiosqlite.Connection, batch: list[LeaseOp]
    ) -> list[tuple[LeaseOp, Lease]]:
        """Apply commits and extends in order: read the runs and records they
        touch, replay the operations in Python, write back."""
        run_ids = sorted({op.claim.run_id for op in batch})
        runs: dict[str, RunRow] = {
            row[1]: RunRow(*row)
            for row in await self._rows_in(
                conn,
                "SELECT id, run_id, key, from_cursor, attempt, token, due, "
                "cancelled FROM aiohttp_jobs_runs",
                "run_id",
                run_ids,
            )
        }
        keys = sorted({run.key for run in runs.values()})
        records: dict[str, RecordRow] = {
            row[0]: RecordRow(*row)
            for row in await self._rows_in(
                conn,
                "SELECT key, held, running, fire_at, backlog FROM aiohttp_jobs_records",
                "key",
                keys,
            )
        }
        results = [(op, replay(op, runs, records)) for op in batch]
        await self._write_back(conn, runs, records, results)
        return results

    async def _write_back(
        self,
        conn: aiosqlite.Connection,
        runs: dict[str, RunRow],
        records: dict[str, RecordRow],
        results: list[tuple[LeaseOp, Lease]],
    ) -> None:
        ns = self._namespace
        deleted = [(run.id,) for run in runs.values() if run.deleted]
        updated = [
            (run.attempt, run.token, run.due, run.id)
            for run in runs.values()
            if run.dirty and not run.deleted
        ]
        if deleted:
            await conn.executemany(
                "DELETE FROM aiohttp_jobs_runs WHERE id = ?", deleted
            )
        if updated:
            await conn.executemany(
                "UPDATE aiohttp_jobs_runs SET attempt = ?, token = ?, due = ? "
                "WHERE id = ?",
                updated,
            )
        dirty = [
            (rec.held, rec.running, rec.fire_at, rec.backlog, ns, rec.key)
            for rec in records.values()
            if rec.dirty
        ]
        if dirty:
            await conn.executemany(
                "UPDATE aiohttp_jobs_records SET held = ?, running = ?, fire_at = ?, "
                "backlog = ? WHERE namespace = ? AND key = ?",
                dirty,
            )
        entries = [op.log for op, result in results if result and op.log is not None]
        if entries:
            await self._append_log(conn, entries)

    # -- cancelling -----------------------------------------------------------------

    async def cancel(self, run_id: str, *, now: float) -> bool:
        ns = self._namespace
        now_ms = ms(now)

        async def body(conn: aiosqlite.Connection) -> bool:
            cursor = await conn.execute(
                "UPDATE aiohttp_jobs_runs SET due = CASE WHEN cancelled = 0 "
                "AND token IS NULL AND due > ? THEN ? ELSE due END, cancelled = 1 "
                "WHERE namespace = ? AND run_id = ?",
                (now_ms, now_ms, ns, run_id),
            )
            return cursor.rowcount > 0

        found: bool = await self._write(body, notify=True)
        return found

    # -- instances and run log ----------------------------------------------------

    async def register_instance(self, info: InstanceInfo, *, ttl: float) -> None:
        if not isinstance(info, InstanceInfo):
            raise ConfigTypeError(
                f"info must be an InstanceInfo, got {info!r} ({type(info).__name__})"
            )
        ttl = check_duration("ttl", ttl, positive=True)
        ns = self._namespace
        seen = ms(info.last_seen)

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "DELETE FROM aiohttp_jobs_instances WHERE namespace = ? "
                "AND expires <= ?",
                (ns, seen),
            )
            await conn.execute(
                "INSERT OR REPLACE INTO aiohttp_jobs_instances "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ns,
                    info.instance_id,
                    info.host,
                    info.pid,
                    info.version,
                    ms(info.started),
                    seen,
                    ms(info.last_seen + ttl),
                ),
            )

        await self._write(body)

    async def deregister_instance(self, instance_id: str) -> None:
        ns = self._namespace

        async def body(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "DELETE FROM aiohttp_jobs_instances "
                "WHERE namespace = ? AND instance_id = ?",
                (ns, instance_id),
            )

        await self._write(body)

    async def instances(self, *, now: float) -> list[InstanceInfo]:
        rows = await self._read(
            "SELECT instance_id, host, pid, version, started, last_seen "
            "FROM aiohttp_jobs_instances WHERE namespace = ? AND expires > ? "
            "ORDER BY instance_id",
            (self._namespace, ms(now)),
        )
        return [
            InstanceInfo(ident, host, pid, version, started / 1000, seen / 1000)
            for ident, host, pid, version, started, seen in rows
        ]

    async def leases(self, *, now: float) -> list[LeaseInfo]:
        """One SELECT: the runs whose ``due`` (their lease expiry, while
        leased) is after *now*, with a token."""
        rows = await self._read(
            "SELECT r.run_id, r.key, rec.task, r.token, r.attempt, r.fire_at, "
            "r.due, r.cancelled FROM aiohttp_jobs_runs AS r "
            "JOIN aiohttp_jobs_records AS rec "
            "ON rec.namespace = r.namespace AND rec.key = r.key "
            "WHERE r.namespace = ? AND r.due > ? AND r.token IS NOT NULL "
            "ORDER BY r.key, r.run_id",
            (self._namespace, ms(now)),
        )
        return [
            LeaseInfo(
                run_id,
                key,
                task,
                token.rpartition(":")[0],  # "<owner>:<n>"
                attempt,
                fire_at / 1000,
                expires / 1000,
                bool(cancelled),
            )
            for run_id, key, task, token, attempt, fire_at, expires, cancelled in rows
        ]

    async def log_run(self, entry: RunLogEntry) -> None:
        if not isinstance(entry, RunLogEntry):
            raise ConfigTypeError(
                f"entry must be a RunLogEntry, got {entry!r} ({type(entry).__name__})"
            )

        await self._queue(LogOp(entry, self._future()))

    async def _append_log(
        self, conn: aiosqlite.Connection, entries: list[RunLogEntry]
    ) -> None:
        """Append to the run log of records that exist, keeping the newest
        :data:`RUN_LOG_SIZE` per key."""
        ns = self._namespace
        await conn.executemany(
            "INSERT INTO aiohttp_jobs_run_log (namespace, key, run_id, instance, "
            "attempt, outcome, started, finished, error) "
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM "
            "aiohttp_jobs_records WHERE namespace = ? AND key = ?)",
            [
                (
                    ns,
                    e.key,
                    e.run_id,
                    e.instance,
                    e.attempt,
                    e.outcome,
                    ms(e.started),
                    ms(e.finished),
                    e.error,
                    ns,
                    e.key,
                )
                for e in entries
            ],
        )
        await conn.executemany(
            "DELETE FROM aiohttp_jobs_run_log WHERE namespace = ? AND key = ? "
            "AND id <= (SELECT id FROM aiohttp_jobs_run_log WHERE namespace = ? "
            "AND key = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            [(ns, key, ns, key, RUN_LOG_SIZE) for key in {e.key for e in entries}],
        )

    async def recent_runs(
        self, key: str, *, limit: int = RUN_LOG_SIZE
    ) -> list[RunLogEntry]:
        if type(limit) is not int or limit < 1:
            check_count("limit", limit, minimum=1)
        rows = await self._read(
            "SELECT run_id, key, instance, attempt, outcome, started, finished, error "
            "FROM aiohttp_jobs_run_log WHERE namespace = ? AND key = ? "
            "ORDER BY id DESC LIMIT ?",
            (self._namespace, key, limit),
        )
        return [
            RunLogEntry(
                run_id,
                key_,
                instance,
                attempt,
                outcome,
                started / 1000,
                end / 1000,
                err,
            )
            for run_id, key_, instance, attempt, outcome, started, end, err in rows
        ]

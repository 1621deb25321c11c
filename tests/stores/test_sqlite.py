"""What the SQLite store promises beyond the store contract (one process)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from aiohttp_jobs import ConfigError, MissingDependencyError
from aiohttp_jobs.stores import (
    Cursor,
    InstanceInfo,
    Lease,
    RunLogEntry,
    TaskRecord,
    from_url,
)
from aiohttp_jobs.stores import sqlite as sqlite_module
from aiohttp_jobs.stores.sqlite import SCHEMA_VERSION, SQLiteStore

from ..helpers import ROOT


def _rec(key: str = "t", fire_at: float | None = 100.0, **kw: Any) -> TaskRecord:
    return TaskRecord(key=key, task=key.split(":")[0], fire_at=fire_at, **kw)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    yield tmp_path / "jobs.db"


async def _settled(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (on the loop) until *condition* holds; fail after *timeout*."""
    for _ in range(round(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


# -- the file ------------------------------------------------------------------------


async def test_the_file_is_created_in_wal_mode_with_a_schema_version(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await store.save(_rec())
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_records_survive_closing_and_times_are_kept_to_the_millisecond(
    db: Path,
) -> None:
    async with SQLiteStore(db) as store:
        await store.save(_rec(fire_at=100.0004, params={"to": ["ann"]}, revision=3))
        await store.add_run("t", fire_at=50.0016, payload={"n": 1})
    async with SQLiteStore(db) as store:
        record = await store.get("t")
        assert record == _rec(fire_at=100.0, params={"to": ["ann"]}, revision=3)
        [added, cursor] = await store.acquire(
            now=200.0, owner="me", lease_duration=30, limit=5
        )
        assert (added.run_id, added.fire_at, added.payload) == (
            "t@50002",
            50.002,
            {"n": 1},
        )
        assert (cursor.run_id, cursor.expires_at) == ("t@100000", 230.0)


async def test_a_file_of_another_schema_version_is_refused(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStore(db)
    with pytest.raises(ConfigError, match="schema version"):
        await store.open()
    assert not store._opened
    await store.close()


async def test_a_file_in_a_missing_folder_is_refused_naming_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nowhere" / "jobs.db")
    with pytest.raises(ConfigError, match="nowhere"):
        await store.open()
    async with SQLiteStore(":memory:") as private:  # no folder needed
        await private.save(_rec())
        assert await private.next_due() == 100.0


async def test_namespaces_share_a_file_without_seeing_each_other(db: Path) -> None:
    async with SQLiteStore(db, namespace="a") as a, SQLiteStore(db, namespace="b") as b:
        await a.save(_rec("x", fire_at=1.0))
        await b.save(_rec("y", fire_at=2.0))
        assert [r.key for r in await a.records()] == ["x"]
        assert await b.get("x") is None
        [claim] = await a.acquire(now=10.0, owner="a", lease_duration=5, limit=10)
        assert claim.run_id == "x@1000"
        assert await b.next_due() == 2.0


async def test_from_url_opens_a_sqlite_store(tmp_path: Path) -> None:
    store = from_url(f"sqlite:///{tmp_path}/url.db", namespace="app", busy_timeout=1)
    assert isinstance(store, SQLiteStore)
    assert (store.path, store.namespace) == (f"{tmp_path}/url.db", "app")
    async with store:
        await store.save(_rec())
    assert (tmp_path / "url.db").exists()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"path": 3}, "path must be a file path"),
        ({"path": ""}, "path must name a file"),
        ({"namespace": ""}, "namespace"),
        ({"busy_timeout": -1}, "busy_timeout"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": 0.0001}, "poll_interval must be at least 0.001.*0.0001"),
        ({"poll_interval": "fast"}, "poll_interval.*'fast'"),
        ({"synchronous": "OFF"}, "synchronous"),
    ],
)
def test_bad_arguments_are_refused_naming_them(
    kwargs: dict[str, Any], fragment: str
) -> None:
    args = {"path": "x.db", **kwargs}
    with pytest.raises(ConfigError, match=fragment):
        SQLiteStore(**args)


async def test_a_missing_aiosqlite_names_the_extra(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aiosqlite", None)
    store = SQLiteStore(db)  # constructing needs no library
    with pytest.raises(MissingDependencyError, match=r"aiohttp-jobs\[sqlite\]"):
        await store.open()


def test_importing_the_module_does_not_import_aiosqlite() -> None:
    code = (
        "import sys, aiohttp_jobs.stores.sqlite as m; m.SQLiteStore('x.db'); "
        "assert 'aiosqlite' not in sys.modules, 'loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- several connections -----------------------------------------------------------


async def test_changes_made_by_another_connection_are_notified(db: Path) -> None:
    async with SQLiteStore(db, poll_interval=0.02) as mine, SQLiteStore(db) as other:
        heard: list[int] = []
        unsubscribe = mine.subscribe(lambda: heard.append(1))
        await asyncio.sleep(0.05)
        heard.clear()
        await other.save(_rec(fire_at=5.0))  # another process, as far as SQLite knows
        await _settled(lambda: bool(heard))
        assert await mine.next_due() == 5.0
        unsubscribe()
        await asyncio.sleep(0.05)
        heard.clear()
        await other.add_run("t", fire_at=1.0)
        await asyncio.sleep(0.1)
        assert heard == []  # unsubscribed: the poll stopped


async def test_a_commit_of_another_connection_is_seen_in_the_wal_index(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite is asked only when the index moved: nothing else would notice
    monkeypatch.setattr(sqlite_module, "_ASK_EVERY", 3600.0, raising=False)
    async with SQLiteStore(db, poll_interval=0.01) as mine:
        statements = await _traced(mine)
        heard = asyncio.Event()
        mine.subscribe(heard.set)
        await _settled(lambda: "PRAGMA data_version" in statements)  # since open
        await asyncio.sleep(0.2)  # looks at an index that does not move
        assert statements.count("PRAGMA data_version") == 1
        assert not heard.is_set()
        other = sqlite3.connect(db, isolation_level=None)  # another process
        try:
            other.execute(
                "UPDATE aiohttp_jobs_counters SET value = value + 1 "
                "WHERE name = 'fence'"
            )
        finally:
            other.close()
        await asyncio.wait_for(heard.wait(), 10)
        assert statements.count("PRAGMA data_version") == 2


async def test_a_file_named_relative_to_the_directory_is_watched_from_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_ASK_EVERY", 3600.0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    async with SQLiteStore("jobs.db", poll_interval=0.01) as mine:
        monkeypatch.chdir(tmp_path / "elsewhere")  # the application moved on
        heard = asyncio.Event()
        mine.subscribe(heard.set)
        await _settled(lambda: len(_watchers()) == 1)
        await asyncio.sleep(0.05)
        heard.clear()
        async with SQLiteStore(tmp_path / "jobs.db") as other:
            await other.save(_rec(fire_at=5.0))
        await asyncio.wait_for(heard.wait(), 10)


async def test_sqlite_is_asked_anyway_when_the_index_seems_still(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The header is only a hint: one that never moves still lets a commit of
    # another process through, on the slower timer.
    monkeypatch.setattr(sqlite_module, "_read_header", lambda fd: b"\0" * 48)
    monkeypatch.setattr(sqlite_module, "_ASK_EVERY", 0.05)
    async with SQLiteStore(db, poll_interval=0.01) as mine:
        heard = asyncio.Event()
        mine.subscribe(heard.set)
        await _settled(lambda: len(_watchers()) == 1)  # watching, still
        await asyncio.sleep(0.1)
        heard.clear()
        async with SQLiteStore(db) as other:
            await other.save(_rec(fire_at=5.0))
        await asyncio.wait_for(heard.wait(), 10)
        assert len(_watchers()) == 1


async def test_without_a_wal_index_to_read_sqlite_is_asked_on_a_timer(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module._IndexWatch, "start", lambda *args: None)
    async with SQLiteStore(db, poll_interval=0.01) as mine, SQLiteStore(db) as other:
        heard = asyncio.Event()
        mine.subscribe(heard.set)
        await asyncio.sleep(0.05)
        heard.clear()
        await other.save(_rec(fire_at=5.0))
        await asyncio.wait_for(heard.wait(), 10)
    await _settled(lambda: _watchers() == [])
    async with SQLiteStore(":memory:") as private:  # no index: nothing to watch
        private.subscribe(lambda: None)
        await asyncio.sleep(0.05)
        assert _watchers() == []


def _watchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-store-watch"]


async def test_the_watching_thread_ends_with_the_subscription_or_the_store(
    db: Path,
) -> None:
    async with SQLiteStore(db, poll_interval=0.01) as store:
        unsubscribe = store.subscribe(lambda: None)
        await _settled(lambda: len(_watchers()) == 1)
        unsubscribe()
        await store.save(_rec())  # wakes the poller, which sees nobody is left
        await _settled(lambda: store._poller is None)
        await _settled(lambda: _watchers() == [])
        store.subscribe(lambda: None)
        await _settled(lambda: len(_watchers()) == 1)
    await _settled(lambda: _watchers() == [])


async def test_two_connections_never_claim_the_same_run(db: Path) -> None:
    async with SQLiteStore(db) as a, SQLiteStore(db) as b:
        for i in range(40):
            await a.save(_rec(f"t:{i}", fire_at=float(i)))
            await a.add_run(f"t:{i}", fire_at=float(i))

        async def take(store: SQLiteStore, owner: str) -> list[tuple[str, bool]]:
            taken: list[tuple[str, bool]] = []
            while claims := await store.acquire(
                now=100.0, owner=owner, lease_duration=60, limit=3
            ):
                taken += [(c.run_id, c.from_cursor) for c in claims]
                done = [
                    store.commit(c, cursor=Cursor(None) if c.from_cursor else None)
                    for c in claims
                ]
                assert all(await asyncio.gather(*done))
            return taken

        first, second = await asyncio.gather(take(a, "a"), take(b, "b"))
        assert len(first) + len(second) == 80
        assert len(set(first) | set(second)) == 80


# -- batching ----------------------------------------------------------------------


async def _traced(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    assert store._conn is not None
    await store._conn.set_trace_callback(statements.append)
    return statements


async def test_commits_of_one_loop_turn_share_one_transaction(db: Path) -> None:
    async with SQLiteStore(db) as store:
        for i in range(20):
            await store.save(_rec(f"t:{i}", fire_at=1.0))
        claims = await store.acquire(now=1.0, owner="me", lease_duration=9, limit=20)
        stale = claims[0]._replace(token="someone else")
        statements = await _traced(store)
        results = await asyncio.gather(
            *(store.commit(c, cursor=Cursor(50.0)) for c in claims[1:]),
            store.extend(claims[0], until=30.0),
            store.extend(stale, until=40.0),
            store.commit(claims[0], retry_at=20.0),
            store.commit(claims[0]),  # after the retry above: no longer leased
        )
        assert results == [Lease.HELD] * 19 + [Lease.HELD, Lease.LOST] * 2
        assert statements.count("BEGIN IMMEDIATE") == 1
        assert await store.next_due() == 20.0
        [retry] = await store.acquire(now=20.0, owner="me", lease_duration=9, limit=5)
        assert (retry.run_id, retry.attempt) == ("t:0@1000", 1)


async def test_writes_of_one_loop_turn_share_one_transaction_and_fail_alone(
    db: Path,
) -> None:
    async with SQLiteStore(db) as store:
        await store.save(_rec("t", fire_at=None))
        statements = await _traced(store)
        results = await asyncio.gather(
            *(store.save(_rec(f"u:{i}", fire_at=5.0)) for i in range(10)),
            store.add_run("t", fire_at=1.0),
            store.add_run("missing", fire_at=1.0),
            store.cancel("t@1000", now=0.5),
            return_exceptions=True,
        )
        assert results[:10] == [None] * 10
        assert results[10:12:2] == ["t@1000"] and results[12] is True
        assert isinstance(results[11], LookupError)
        assert statements.count("BEGIN IMMEDIATE") == 1
        assert statements.count("COMMIT") == 1
        assert len(await store.records()) == 11
        [cancelled] = await store.acquire(
            now=0.5, owner="me", lease_duration=9, limit=1
        )
        assert (cancelled.run_id, cancelled.cancelled) == ("t@1000", True)


def _calls(store: SQLiteStore) -> list[str]:
    """The statements *store* sends to its connection's thread from now on,
    one per call (a call is a round trip; ``executemany`` is one)."""
    calls: list[str] = []
    conn = store._conn
    assert conn is not None

    def counting(method: Any) -> Any:
        def counted(sql: str, *args: Any) -> Any:
            calls.append(sql.split(" (")[0][:40])
            return method(sql, *args)

        return counted

    for name in ("execute", "executemany", "execute_fetchall"):
        setattr(conn, name, counting(getattr(conn, name)))
    return calls


async def test_finished_once_off_runs_of_one_loop_turn_are_deleted_at_once(
    db: Path,
) -> None:
    async with SQLiteStore(db) as store:
        for i in range(50):
            await store.save(_rec(f"t:{i}", fire_at=1.0))
        await store.save(_rec("plain", fire_at=None))
        claims = await store.acquire(now=1.0, owner="me", lease_duration=9, limit=50)
        stale = claims[1]._replace(token="someone else")
        await store.log_run(RunLogEntry("x", "t:0", "me", 0, "succeeded", 1.0, 2.0))
        calls = _calls(store)
        results = await asyncio.gather(
            store.delete("t:1", claim=stale),  # not the claim's holder
            *(store.delete(c.record.key, claim=c) for c in claims),
            store.delete("t:2", claim=claims[2]),  # another record's (t:10) claim
            store.delete("plain"),
            store.delete("missing"),
            store.delete("t:3", claim=claims[4]),  # another record's claim
        )
        assert results == [False] + [True] * 50 + [False, True, False, False]
        # one statement for each run of distinct keys (t:1 came twice)
        assert calls == ["BEGIN IMMEDIATE", "WITH doomed", "WITH doomed", "COMMIT"]
        assert await store.records() == []
        assert await store.recent_runs("t:0") == []  # the log went along
        assert await store.next_due() is None  # and the runs


async def test_a_batch_of_deletes_takes_a_statement_for_each_300(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await asyncio.gather(*(store.save(_rec(f"t:{i}")) for i in range(301)))
        calls = _calls(store)
        results = await asyncio.gather(*(store.delete(f"t:{i}") for i in range(301)))
        assert results == [True] * 301
        # at most 300 deletes (900 parameters) in one statement
        assert calls == ["BEGIN IMMEDIATE", "WITH doomed", "WITH doomed", "COMMIT"]
        assert await store.records() == []


async def test_saves_and_log_entries_of_one_loop_turn_are_written_at_once(
    db: Path,
) -> None:
    async with SQLiteStore(db) as store:
        calls = _calls(store)
        await asyncio.gather(*(store.save(_rec(f"t:{i}")) for i in range(30)))
        assert calls == [
            "BEGIN IMMEDIATE",
            "INSERT INTO aiohttp_jobs_records",
            "COMMIT",
        ]
        calls.clear()
        await asyncio.gather(
            *(
                store.log_run(
                    RunLogEntry(f"r{i}", f"t:{i % 3}", "me", 0, "failed", i, i)
                )
                for i in range(30)
            ),
            store.log_run(RunLogEntry("r", "missing", "me", 0, "failed", 1.0, 2.0)),
        )
        assert len(calls) == 4, calls  # BEGIN, insert, trim, COMMIT
        assert [len(await store.recent_runs(f"t:{i}")) for i in range(3)] == [10] * 3
        assert await store.recent_runs("missing") == []


async def test_claiming_due_cursors_and_runs_takes_a_few_statements_whatever_the_count(
    db: Path,
) -> None:
    async with SQLiteStore(db) as store:
        for i in range(60):
            await store.save(_rec(f"t:{i:02}", fire_at=float(i)))
        await store.add_run("t:05", fire_at=5.0)  # the id its cursor's run takes
        await store.add_run("t:07", fire_at=1.5, payload={"n": 1})
        calls = _calls(store)
        claims = await store.acquire(now=100.0, owner="me", lease_duration=9, limit=40)
        # read, count the fences, insert the cursors' runs, hold their records,
        # then the one taken id, and lease the added runs
        assert calls[0] == "BEGIN IMMEDIATE" and calls[-1] == "COMMIT"
        assert len(calls) == 2 + 4 + 2 + 1, calls
        assert [(c.run_id, c.from_cursor) for c in claims[:8]] == [
            ("t:00@0", True),
            ("t:01@1000", True),
            ("t:07@1500", False),
            ("t:02@2000", True),
            ("t:03@3000", True),
            ("t:04@4000", True),
            ("t:05@5000", False),  # an added run before the cursor on a tie
            ("t:05@5000.2", True),
        ]
        assert len(claims) == 40
        assert [c.fence for c in claims] == sorted(c.fence for c in claims)
        assert len({c.fence for c in claims}) == 40
        assert {c.expires_at for c in claims} == {109.0}
        assert claims[2].payload == {"n": 1}
        assert claims[2].record == _rec("t:07", fire_at=7.0)
        more = await store.acquire(now=100.0, owner="me", lease_duration=9, limit=40)
        assert [c.run_id for c in more] == [f"t:{i}@{i * 1000}" for i in range(38, 60)]


async def test_a_hundred_due_once_off_tasks_are_claimed_in_four_statements(
    db: Path,
) -> None:
    # What docs/stores.md promises: claimed in four statements, deleted in one.
    async with SQLiteStore(db) as store:
        await asyncio.gather(
            *(store.save(_rec(f"t:{i:03}", fire_at=1.0)) for i in range(100))
        )
        calls = _calls(store)
        claims = await store.acquire(now=1.0, owner="me", lease_duration=9, limit=100)
        assert len(claims) == 100
        assert calls[0] == "BEGIN IMMEDIATE" and calls[-1] == "COMMIT"
        assert len(calls) == 2 + 4, calls
        calls.clear()
        deleted = await asyncio.gather(
            *(store.delete(c.record.key, claim=c) for c in claims)
        )
        assert deleted == [True] * 100
        assert calls == ["BEGIN IMMEDIATE", "WITH doomed", "COMMIT"]


async def test_writes_asked_for_in_the_next_loop_turn_join_the_batch(
    db: Path,
) -> None:
    async with SQLiteStore(db) as store:
        statements = await _traced(store)

        async def later() -> None:
            await asyncio.sleep(0)
            await store.save(_rec("u"))

        await asyncio.gather(store.save(_rec("t")), later())
        assert statements.count("BEGIN IMMEDIATE") == 1
        assert len(await store.records()) == 2


async def test_every_write_is_inside_a_begin_immediate_transaction(db: Path) -> None:
    async with SQLiteStore(db) as store:
        statements = await _traced(store)
        await store.save(_rec(fire_at=1.0))
        run_id = await store.add_run("t", fire_at=1.0)
        claims = await store.acquire(now=2.0, owner="me", lease_duration=9, limit=5)
        await store.extend(claims[0], until=20.0)
        await store.cancel(run_id, now=2.0)
        await store.commit(claims[0], cursor=Cursor(50.0))
        await store.register_instance(InstanceInfo("i", "h", 1, "v", 1.0, 2.0), ttl=5)
        await store.log_run(RunLogEntry(run_id, "t", "i", 0, "succeeded", 1.0, 2.0))
        await store.delete("t", claim=claims[1])
        await store.deregister_instance("i")
        await store.next_due()
    inside = False
    for sql in statements:
        if sql == "BEGIN IMMEDIATE":
            assert not inside
            inside = True
        elif sql in ("COMMIT", "ROLLBACK"):
            inside = False
        else:
            assert not sql.startswith("BEGIN"), sql  # never a deferred BEGIN
            if sql.startswith(("INSERT", "UPDATE", "DELETE")):
                assert inside, sql
    assert statements.count("BEGIN IMMEDIATE") == 10


async def test_a_write_lock_held_too_long_fails_that_batch_only(db: Path) -> None:
    async with SQLiteStore(db, busy_timeout=0.05) as store:
        await store.save(_rec(fire_at=1.0))
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            results = await asyncio.gather(
                store.save(_rec("u", fire_at=2.0)),
                store.add_run("t", fire_at=3.0),
                return_exceptions=True,
            )
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)
        assert "locked" in str(results[0])
        assert await store.get("u") is None  # nothing of the batch was kept
        await store.save(_rec("u", fire_at=2.0))  # the next batch goes through
        assert await store.next_due() == 1.0


async def test_a_cancelled_caller_does_not_undo_its_commit(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await store.save(_rec(fire_at=1.0))
        [claim] = await store.acquire(now=1.0, owner="me", lease_duration=9, limit=1)
        task = asyncio.ensure_future(store.commit(claim, cursor=Cursor(60.0)))
        await asyncio.sleep(0)
        task.cancel()
        await _settled(lambda: store._flusher is not None and store._flusher.done())
        assert await store.next_due() == 60.0


# -- cost with many records -------------------------------------------------------


def _fill(db: Path, records: int) -> None:
    """Add *records* records (most due far in the future) and as many runs."""
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO aiohttp_jobs_records (namespace, key, task, enabled, "
            "fire_at, backlog, max_running, revision) "
            "VALUES ('aiohttp_jobs', ?, 'bulk', 1, ?, 0, 1, 0)",
            ((f"bulk:{i}", 10_000_000 + i) for i in range(records)),
        )
        conn.executemany(
            "INSERT INTO aiohttp_jobs_runs (namespace, run_id, key, fire_at, "
            "from_cursor, due) VALUES ('aiohttp_jobs', ?, ?, ?, 0, ?)",
            ((f"bulk:{i}@1", f"bulk:{i}", 1, 20_000_000 + i) for i in range(records)),
        )
    conn.close()


async def _cost(store: SQLiteStore, call: Callable[[], Awaitable[object]]) -> int:
    """SQLite virtual machine steps that *call* takes (not time: deterministic)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    assert store._conn is not None
    await store._conn.set_progress_handler(count, 1)
    await call()
    await store._conn.set_progress_handler(None, 1)
    return steps[0]


async def test_finding_what_is_due_costs_the_same_with_100_times_more_records(
    tmp_path: Path,
) -> None:
    costs: list[list[int]] = []
    plans: list[str] = []
    for size in (1_000, 100_000):
        db = tmp_path / f"{size}.db"
        async with SQLiteStore(db):
            pass  # creates the tables
        _fill(db, size)
        async with SQLiteStore(db) as store:
            for i in range(5):
                await store.save(_rec(f"due:{i}", fire_at=float(i)))
            statements = await _traced(store)
            await store.next_due()  # warm the statement cache

            async def acquire() -> None:
                claims = await store.acquire(
                    now=10.0, owner="me", lease_duration=5, limit=10
                )
                assert len(claims) == 5
                await asyncio.gather(
                    *(store.commit(c, cursor=Cursor(9e6)) for c in claims[1:]),
                    store.delete(claims[0].record.key, claim=claims[0]),
                )

            costs.append(
                [await _cost(store, store.next_due), await _cost(store, acquire)]
            )
            assert store._conn is not None
            for sql in statements:
                if sql.startswith(("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
                    rows = await store._conn.execute_fetchall(
                        f"EXPLAIN QUERY PLAN {sql}"
                    )
                    plans += [f"{row[3]}  <-  {sql[:60]}" for row in rows]
    [small, large] = costs
    assert small == large, costs  # no step depends on the number of records
    for line in plans:  # and every table is reached through an index
        assert not line.startswith("SCAN aiohttp_jobs"), line
        assert "TEMP B-TREE" not in line, line

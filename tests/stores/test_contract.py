"""The task store contract, run against every store backend.

A new backend joins by adding a factory to ``BACKENDS`` in ``conftest.py``:
every test here then runs against it too.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiohttp_jobs import ConfigError
from aiohttp_jobs.stores import (
    RUN_LOG_SIZE,
    Claim,
    Cursor,
    InstanceInfo,
    Lease,
    LeaseInfo,
    RunLogEntry,
    TaskRecord,
    TaskStore,
)


def _rec(key: str = "t", fire_at: float | None = 100.0, **kw: object) -> TaskRecord:
    return TaskRecord(key=key, task=key.split(":")[0], fire_at=fire_at, **kw)  # type: ignore[arg-type]


async def _take(
    store: TaskStore, now: float, limit: int = 10, lease: float = 30
) -> list[Claim]:
    return await store.acquire(now=now, owner="me", lease_duration=lease, limit=limit)


async def test_save_get_records_delete(store: TaskStore) -> None:
    await store.save(_rec("b", params={"x": 1}))
    await store.save(_rec("a", schedule={"interval": 5.0}))
    assert (await store.get("b")) == _rec("b", params={"x": 1})
    assert [r.key for r in await store.records()] == ["a", "b"]
    assert [r.key for r in await store.records("a")] == ["a"]
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.get("a") is None


async def test_nothing_is_due_before_its_time(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    assert await store.next_due() == 100.0
    assert await _take(store, 99.9) == []
    [claim] = await _take(store, 100.0)
    assert claim.run_id == "t@100000"
    assert (claim.fire_at, claim.attempt, claim.from_cursor) == (100.0, 0, True)
    assert claim.expires_at == 130.0


async def test_a_cursor_is_claimed_once_until_committed(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await _take(store, 110.0) == []  # held
    assert await store.next_due() == 130.0  # the lease expiry
    assert await store.commit(claim, cursor=Cursor(160.0)) is Lease.HELD
    assert await store.next_due() == 160.0
    assert (await store.get("t")).fire_at == 160.0  # type: ignore[union-attr]
    [again] = await _take(store, 160.0)
    assert again.run_id == "t@160000"


async def test_claims_come_in_due_order_up_to_the_limit(store: TaskStore) -> None:
    for i, at in enumerate([30.0, 10.0, 20.0, 40.0]):
        await store.save(_rec(f"t{i}", fire_at=at))
    claims = await _take(store, 35.0, limit=2)
    assert [c.fire_at for c in claims] == [10.0, 20.0]
    assert [c.fire_at for c in await _take(store, 35.0)] == [30.0]


async def test_expired_lease_is_taken_over_and_the_old_claim_is_lost(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [first] = await _take(store, 100.0)
    [second] = await _take(store, 130.0)
    assert second.run_id == first.run_id  # the same occurrence: detectable duplicate
    assert second.attempt == 1
    assert await store.extend(first, until=500.0) is Lease.LOST
    assert await store.commit(first, cursor=Cursor(999.0)) is Lease.LOST
    assert (await store.get("t")).fire_at == 100.0  # type: ignore[union-attr]
    assert await store.commit(second, cursor=Cursor(200.0)) is Lease.HELD


async def test_heartbeat_extends_the_lease(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.extend(claim, until=200.0) is Lease.HELD
    assert await _take(store, 150.0) == []
    assert await store.next_due() == 200.0


async def test_retry_keeps_the_occurrence_and_counts_attempts(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim, retry_at=105.0) is Lease.HELD
    assert await store.next_due() == 105.0
    assert await _take(store, 104.0) == []
    [retry] = await _take(store, 105.0)
    assert (retry.run_id, retry.fire_at, retry.attempt) == (claim.run_id, 100.0, 1)


async def test_finishing_without_a_cursor_releases_the_hold(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim) is Lease.HELD
    [again] = await _take(store, 100.0)
    assert again.fire_at == 100.0


async def test_disabled_records_are_never_due(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0, enabled=False))
    assert await store.next_due() is None
    assert await _take(store, 1000.0) == []
    await store.save(_rec(fire_at=100.0, enabled=True))
    assert len(await _take(store, 1000.0)) == 1


async def test_max_running_allows_overlapping_runs(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0, max_running=2))
    [a] = await _take(store, 100.0)
    assert await store.commit(a, cursor=Cursor(110.0), keep_lease=True)
    [b] = await _take(store, 110.0)
    assert await store.commit(b, cursor=Cursor(120.0), keep_lease=True)
    assert await _take(store, 120.0) == []  # two running: the cursor waits
    assert await store.commit(a) is Lease.HELD
    [c] = await _take(store, 120.0)
    assert c.fire_at == 120.0


async def test_added_runs_carry_a_payload_and_ignore_the_cursor(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=None))
    run_id = await store.add_run("t", fire_at=50.0, payload={"user": "ann"})
    second = await store.add_run("t", fire_at=50.0)
    assert run_id == "t@50000" and second != run_id
    claims = await _take(store, 50.0)
    assert [(c.from_cursor, c.payload) for c in claims] == [
        (False, {"user": "ann"}),
        (False, None),
    ]
    assert all([await store.commit(c) for c in claims])
    assert await store.next_due() is None
    with pytest.raises(LookupError):
        await store.add_run("nope", fire_at=1.0)


async def test_an_added_run_and_the_cursor_due_at_once_are_two_runs(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    added = await store.add_run("t", fire_at=100.0, payload={"x": 1})
    claims = await _take(store, 100.0)
    assert sorted((c.run_id, c.from_cursor, c.payload) for c in claims) == [
        ("t@100000", False, {"x": 1}),
        ("t@100000.2", True, None),
    ]
    assert added == "t@100000"
    assert all(c.attempt == 0 for c in claims)
    for claim in claims:
        assert await store.commit(claim) is Lease.HELD


async def test_an_occurrence_finished_and_claimed_again_is_one_claim(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0, lease=1)
    # finished without moving the cursor (after its lease ran out, untaken)
    assert await store.commit(claim) is Lease.HELD
    again = await _take(store, 101.0, lease=1)
    assert [(c.run_id, c.attempt) for c in again] == [("t@100000", 0)]


async def test_deleting_a_record_loses_its_claims(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    await store.add_run("t", fire_at=100.0)
    assert await store.delete("t") is True
    assert await store.commit(claim) is Lease.LOST
    assert await _take(store, 1000.0) == []


async def test_saving_keeps_runs_in_progress(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    await store.save(_rec(fire_at=100.0, params={"new": True}))
    assert await _take(store, 110.0) == []  # still held by the claim
    assert await store.commit(claim, cursor=Cursor(200.0)) is Lease.HELD
    assert (await store.get("t")).params == {"new": True}  # type: ignore[union-attr]


async def test_backlog_is_stored_with_the_cursor(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim, cursor=Cursor(110.0, 3))
    record = await store.get("t")
    assert record is not None and (record.fire_at, record.backlog) == (110.0, 3)


async def test_delete_with_a_claim_only_while_the_claim_holds(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [first] = await _take(store, 100.0)
    [second] = await _take(store, 130.0)  # first's lease expired and was taken
    assert await store.delete("t", claim=first) is False
    assert await store.get("t") is not None
    assert await store.delete("t", claim=second) is True
    assert await store.get("t") is None


# -- replacing a record (rule 5) ------------------------------------------------------


async def test_saving_another_revision_replaces_the_record_and_its_runs(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [running] = await _take(store, 100.0)
    await store.save(_rec(fire_at=500.0, params={"v": 2}, revision=1))
    assert await store.next_due() == 500.0  # not held by the old run
    # the old run ends: it can move or delete nothing of the new definition
    assert await store.commit(running, cursor=Cursor(200.0)) is Lease.LOST
    assert await store.delete("t", claim=running) is False
    assert await store.extend(running, until=900.0) is Lease.LOST
    record = await store.get("t")
    assert record is not None and (record.fire_at, record.revision) == (500.0, 1)
    [new] = await _take(store, 500.0)
    assert (new.fire_at, new.attempt, new.record.params) == (500.0, 0, {"v": 2})


async def test_a_replaced_or_recreated_record_forgets_its_old_times(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0, max_running=2))
    await store.save(_rec(fire_at=300.0, revision=1))  # replaced
    assert await store.next_due() == 300.0
    assert await _take(store, 200.0) == []
    await store.delete("t")
    await store.save(_rec(fire_at=400.0, revision=1))  # created again
    assert await store.next_due() == 400.0
    assert await _take(store, 350.0) == []


async def test_saving_another_revision_drops_a_pending_retry(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim, retry_at=150.0) is Lease.HELD
    await store.save(_rec(fire_at=3600.0, revision=1))
    assert await store.next_due() == 3600.0
    assert await _take(store, 200.0) == []  # the old retry is gone


async def test_saving_the_same_revision_updates_in_place(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0, revision=4))
    [claim] = await _take(store, 100.0)
    await store.save(_rec(fire_at=100.0, enabled=False, revision=4))
    assert await store.commit(claim, cursor=Cursor(200.0)) is Lease.HELD


# -- lifecycle and notifications ------------------------------------------------------


async def test_async_with_opens_and_closes_and_opens_are_counted(
    fresh: TaskStore,
) -> None:
    async with fresh as opened:
        assert opened is fresh
        await fresh.save(_rec(fire_at=100.0))
        await fresh.open()  # a second runtime of the process shares it
        await fresh.close()
        assert await fresh.get("t") is not None  # still open: one open left
    await fresh.close()  # closing a closed store does nothing
    async with fresh:  # opened again
        assert [r.key for r in await fresh.records()] == ["t"]


async def test_subscribers_hear_of_every_change_that_can_make_a_run_due(
    store: TaskStore,
) -> None:
    heard: list[str] = []
    unsubscribe = store.subscribe(lambda: heard.append("changed"))

    async def count(action: Callable[[], Awaitable[Any]]) -> int:
        heard.clear()
        await action()
        await _settle()
        return len(heard)

    assert await count(lambda: store.save(_rec(fire_at=100.0))) >= 1
    assert await count(lambda: store.add_run("t", fire_at=50.0)) >= 1
    [added, claim] = await _take(store, 100.0)
    assert await count(lambda: store.extend(claim, until=500.0)) >= 1
    assert await count(lambda: store.commit(claim, retry_at=120.0)) >= 1
    assert await count(lambda: store.commit(added)) >= 1
    unsubscribe()
    unsubscribe()  # twice is harmless
    assert await count(lambda: store.save(_rec("u", fire_at=1.0))) == 0


async def test_a_failing_subscriber_does_not_stop_the_others(
    store: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[str] = []

    def broken() -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    store.subscribe(lambda: heard.append("changed"))
    await store.save(_rec(fire_at=100.0))
    await _settle()
    assert heard
    assert "subscriber bug" in caplog.text


async def _settle() -> None:
    """Backends may notify from a listener task: give it a few loop turns."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_values_no_store_could_keep_are_refused_naming_them(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    with pytest.raises(ConfigError, match="record"):
        await store.save("t")  # type: ignore[arg-type]
    for fire_at in (math.nan, math.inf, 1e300):
        with pytest.raises(ConfigError, match="fire_at"):
            await store.add_run("t", fire_at=fire_at)
    for limit in (0, math.nan, 1.5, "10"):
        with pytest.raises(ConfigError, match="limit"):
            await _take(store, 100.0, limit=limit)  # type: ignore[arg-type]
    assert [c.fire_at for c in await _take(store, 100.0)] == [100.0]


# -- cancelling a run from any instance (rule 7) --------------------------------------


async def test_a_leased_run_hears_of_its_cancel_at_its_next_heartbeat(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert claim.cancelled is False
    assert await store.cancel(claim.run_id, now=101.0) is True
    assert await store.cancel(claim.run_id, now=101.0) is True  # idempotent
    assert await _take(store, 110.0) == []  # still leased to its holder
    assert await store.extend(claim, until=200.0) is Lease.CANCELLED
    # the holder settles the occurrence: the cursor moves on
    assert await store.commit(claim, cursor=Cursor(160.0)) is Lease.CANCELLED
    assert await store.commit(claim) is Lease.LOST  # the run is gone
    assert await store.cancel(claim.run_id, now=102.0) is False
    [next_one] = await _take(store, 160.0)
    assert (next_one.run_id, next_one.cancelled) == ("t@160000", False)


async def test_a_cancelled_run_is_never_retried_nor_kept(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0, max_running=2))
    [a] = await _take(store, 100.0)
    await store.cancel(a.run_id, now=100.0)
    assert await store.commit(a, retry_at=105.0) is Lease.CANCELLED
    assert await store.cancel(a.run_id, now=106.0) is False  # finished
    [b] = await _take(store, 106.0)  # the hold was released; same occurrence
    await store.cancel(b.run_id, now=106.0)
    assert (
        await store.commit(b, cursor=Cursor(120.0), keep_lease=True) is Lease.CANCELLED
    )
    assert await store.extend(b, until=500.0) is Lease.LOST  # finished, not kept
    record = await store.get("t")
    assert record is not None and record.fire_at == 120.0


async def test_a_cancelled_run_waiting_is_handed_out_at_once_to_be_settled(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim, retry_at=500.0) is Lease.HELD
    added = await store.add_run("t", fire_at=900.0, payload={"x": 1})
    assert await store.cancel(added, now=120.0) is True
    assert await store.cancel(claim.run_id, now=130.0) is True
    assert await store.next_due() == 120.0
    settle = await _take(store, 130.0)
    assert [(c.run_id, c.cancelled) for c in settle] == [
        (added, True),
        (claim.run_id, True),
    ]
    assert await store.commit(settle[0]) is Lease.CANCELLED
    assert await store.commit(settle[1], cursor=Cursor(160.0)) is Lease.CANCELLED
    assert await store.next_due() == 160.0
    assert await store.cancel("t@999", now=1.0) is False


async def test_a_cancelled_run_whose_holder_died_is_handed_out_cancelled(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    await store.cancel(claim.run_id, now=101.0)
    [taken] = await _take(store, 130.0)  # the lease expired
    assert (taken.run_id, taken.cancelled, taken.attempt) == (claim.run_id, True, 1)
    assert await store.commit(claim, cursor=Cursor(999.0)) is Lease.LOST


async def test_subscribers_hear_of_a_cancel(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    heard: list[str] = []
    store.subscribe(lambda: heard.append("changed"))
    await store.cancel(claim.run_id, now=100.0)
    await _settle()
    assert heard


# -- fencing (rule 8) -----------------------------------------------------------------


async def test_fences_grow_per_record_across_takeovers_retries_and_replacements(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    fences: list[int] = []
    [first] = await _take(store, 100.0)
    [second] = await _take(store, 130.0)  # takeover
    fences += [first.fence, second.fence]
    assert await store.commit(second, retry_at=140.0)
    [third] = await _take(store, 140.0)
    fences.append(third.fence)
    await store.save(_rec(fire_at=150.0, revision=1))  # replaced
    [fourth] = await _take(store, 150.0)
    fences.append(fourth.fence)
    await store.delete("t")
    await store.save(_rec(fire_at=160.0))  # deleted and created again
    [fifth] = await _take(store, 160.0)
    fences.append(fifth.fence)
    assert fences == sorted(set(fences)) and fences[0] >= 1
    assert (await store.extend(fifth, until=300.0)) is Lease.HELD


# -- instance registry (rule 9) -------------------------------------------------------


def _instance(ident: str, seen: float) -> InstanceInfo:
    return InstanceInfo(ident, "host-1", 1234, "1.0", started=10.0, last_seen=seen)


async def test_instances_are_listed_while_they_heartbeat(store: TaskStore) -> None:
    assert await store.instances(now=0.0) == []
    await store.register_instance(_instance("b", 100.0), ttl=30.0)
    await store.register_instance(_instance("a", 100.0), ttl=30.0)
    assert [i.instance_id for i in await store.instances(now=110.0)] == ["a", "b"]
    assert (await store.instances(now=110.0))[1] == _instance("b", 100.0)
    await store.register_instance(_instance("a", 125.0), ttl=30.0)  # heartbeat
    assert await store.instances(now=140.0) == [_instance("a", 125.0)]  # b aged out
    await store.deregister_instance("a")
    await store.deregister_instance("a")  # unknown: nothing happens
    assert await store.instances(now=140.0) == []
    with pytest.raises(ConfigError, match="ttl"):
        await store.register_instance(_instance("a", 1.0), ttl=0)


# -- leases (rule 11) -----------------------------------------------------------------


async def test_leases_list_each_run_leased_now_with_its_owner_and_expiry(
    store: TaskStore,
) -> None:
    await store.save(_rec("d:x", fire_at=90.0))
    await store.save(_rec("t", fire_at=100.0))
    await store.add_run("t", fire_at=200.0)  # queued: not leased
    assert await store.leases(now=90.0) == []
    # an owner may have colons in it (a host:pid name)
    acquire = store.acquire
    [a] = await acquire(now=95.0, owner="host-1:42", lease_duration=30, limit=10)
    [b] = await acquire(now=100.0, owner="b", lease_duration=40, limit=10)
    assert await store.leases(now=100.0) == [
        LeaseInfo("d:x@90000", "d:x", "d", "host-1:42", 0, 90.0, 125.0, False),
        LeaseInfo("t@100000", "t", "t", "b", 0, 100.0, 140.0, False),
    ]
    # a lease is listed until it expires, and follows its heartbeats
    assert [x.run_id for x in await store.leases(now=125.0)] == [b.run_id]
    assert await store.extend(b, until=300.0) is Lease.HELD
    [held] = await store.leases(now=200.0)
    assert (held.run_id, held.owner, held.expires_at) == (b.run_id, "b", 300.0)
    # finished: gone (the expired one too, once its holder commits)
    assert await store.commit(b, cursor=Cursor(500.0)) is Lease.HELD
    assert await store.commit(a) is Lease.HELD
    assert await store.leases(now=100.0) == []


async def test_a_lease_taken_over_names_its_new_owner_and_attempt(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    await store.acquire(now=100.0, owner="a", lease_duration=30, limit=1)
    assert [x.owner for x in await store.leases(now=129.0)] == ["a"]
    assert await store.leases(now=130.0) == []  # expired: held by nobody
    await store.acquire(now=130.0, owner="b", lease_duration=30, limit=1)
    assert await store.leases(now=130.0) == [
        LeaseInfo("t@100000", "t", "t", "b", 1, 100.0, 160.0, False)
    ]


async def test_a_run_waiting_to_retry_or_gone_is_not_leased(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0, max_running=2))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim, retry_at=110.0) is Lease.HELD
    assert await store.leases(now=100.0) == []
    [retry] = await _take(store, 110.0)
    assert [x.attempt for x in await store.leases(now=110.0)] == [1]
    # the cursor moved on while the run goes on: still leased
    assert await store.commit(retry, cursor=Cursor(120.0), keep_lease=True)
    assert [x.run_id for x in await store.leases(now=110.0)] == [claim.run_id]
    [other] = await _take(store, 120.0)
    assert len(await store.leases(now=120.0)) == 2
    await store.save(_rec(fire_at=100.0, max_running=2, revision=1))  # replaced
    assert await store.leases(now=120.0) == []
    [claim] = await _take(store, 120.0)
    assert await store.delete("t") is True
    assert await store.leases(now=120.0) == []
    assert other.run_id == "t@120000"


async def test_a_leased_run_shows_its_cancel_request(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.cancel(claim.run_id, now=101.0) is True
    [lease] = await store.leases(now=101.0)
    assert (lease.run_id, lease.cancelled) == (claim.run_id, True)
    assert await store.commit(claim, cursor=Cursor(160.0)) is Lease.CANCELLED
    assert await store.leases(now=101.0) == []


# -- run log (rule 10) ----------------------------------------------------------------


def _entry(n: int, key: str = "t", **kw: Any) -> RunLogEntry:
    fields: dict[str, Any] = {
        "run_id": f"{key}@{n}",
        "key": key,
        "instance": "i-1",
        "attempt": 0,
        "outcome": "succeeded",
        "started": float(n),
        "finished": n + 0.5,
    }
    return RunLogEntry(**{**fields, **kw})


async def test_the_run_log_keeps_the_newest_entries_per_key(store: TaskStore) -> None:
    await store.save(_rec("t", fire_at=None))
    await store.save(_rec("u", fire_at=None))
    failed = _entry(0, outcome="failed", error="ValueError('boom')", attempt=2)
    await store.log_run(failed)
    assert await store.recent_runs("t") == [failed]
    assert failed.duration == 0.5
    for n in range(1, RUN_LOG_SIZE + 5):
        await store.log_run(_entry(n))
    await store.log_run(_entry(7, key="u", outcome="cancelled"))
    entries = await store.recent_runs("t")
    assert len(entries) == RUN_LOG_SIZE
    assert [e.started for e in entries[:2]] == [RUN_LOG_SIZE + 4.0, RUN_LOG_SIZE + 3.0]
    assert [e.run_id for e in await store.recent_runs("t", limit=2)] == [
        f"t@{RUN_LOG_SIZE + 4}",
        f"t@{RUN_LOG_SIZE + 3}",
    ]
    assert await store.recent_runs("u") == [_entry(7, key="u", outcome="cancelled")]
    with pytest.raises(ConfigError, match="limit"):
        await store.recent_runs("t", limit=0)


async def test_the_run_log_lives_and_dies_with_its_record(store: TaskStore) -> None:
    await store.log_run(_entry(1, key="ghost"))  # no record: ignored
    assert await store.recent_runs("ghost") == []
    await store.save(_rec(fire_at=None))
    await store.log_run(_entry(1))
    await store.save(_rec(fire_at=None, revision=1))  # replaced: the log stays
    assert len(await store.recent_runs("t")) == 1
    await store.delete("t")
    await store.save(_rec(fire_at=None))
    assert await store.recent_runs("t") == []


async def test_a_commit_appends_its_log_entry_only_if_it_took_effect(
    store: TaskStore,
) -> None:
    await store.save(_rec(fire_at=100.0))
    [first] = await _take(store, 100.0)
    [second] = await _take(store, 130.0)
    lost = _entry(1, outcome="succeeded")
    assert await store.commit(first, cursor=Cursor(200.0), log=lost) is Lease.LOST
    assert await store.recent_runs("t") == []
    done = _entry(2, attempt=1, run_id=second.run_id)
    assert await store.commit(second, cursor=Cursor(200.0), log=done) is Lease.HELD
    assert await store.recent_runs("t") == [done]


async def test_the_clock_of_a_store_without_a_server_is_none(
    store: TaskStore,
) -> None:
    server_time = await store.server_time()
    assert server_time is None or server_time > 1_600_000_000

"""The task store contract, run against every store backend.

A new backend joins by adding a factory to ``STORES``: every test here then runs
against it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from aiohttp_jobs.stores import Claim, Cursor, MemoryStore, TaskRecord, TaskStore


async def _memory() -> TaskStore:
    return MemoryStore()


STORES: dict[str, Callable[[], Awaitable[TaskStore]]] = {"memory": _memory}


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[TaskStore]:
    yield await STORES[request.param]()


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
    assert await store.commit(claim, cursor=Cursor(160.0)) is True
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
    assert await store.extend(first, until=500.0) is False
    assert await store.commit(first, cursor=Cursor(999.0)) is False
    assert (await store.get("t")).fire_at == 100.0  # type: ignore[union-attr]
    assert await store.commit(second, cursor=Cursor(200.0)) is True


async def test_heartbeat_extends_the_lease(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.extend(claim, until=200.0) is True
    assert await _take(store, 150.0) == []
    assert await store.next_due() == 200.0


async def test_retry_keeps_the_occurrence_and_counts_attempts(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim, retry_at=105.0) is True
    assert await store.next_due() == 105.0
    assert await _take(store, 104.0) == []
    [retry] = await _take(store, 105.0)
    assert (retry.run_id, retry.fire_at, retry.attempt) == (claim.run_id, 100.0, 1)


async def test_finishing_without_a_cursor_releases_the_hold(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    assert await store.commit(claim) is True
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
    assert await store.commit(a) is True
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


async def test_deleting_a_record_loses_its_claims(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    await store.add_run("t", fire_at=100.0)
    assert await store.delete("t") is True
    assert await store.commit(claim) is False
    assert await _take(store, 1000.0) == []


async def test_saving_keeps_runs_in_progress(store: TaskStore) -> None:
    await store.save(_rec(fire_at=100.0))
    [claim] = await _take(store, 100.0)
    await store.save(_rec(fire_at=100.0, params={"new": True}))
    assert await _take(store, 110.0) == []  # still held by the claim
    assert await store.commit(claim, cursor=Cursor(200.0)) is True
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

"""What the in-memory store promises beyond the store contract."""

from __future__ import annotations

import gc

from aiohttp_jobs.stores import MemoryStore, TaskRecord


async def test_a_record_costs_the_garbage_collector_one_object() -> None:
    store = MemoryStore()
    await store.save(TaskRecord(key="warm", task="t", fire_at=1.0))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(2000):
        await store.save(
            TaskRecord(key=f"t:{i}", task="t", schedule={"at": 1.0}, fire_at=1.0)
        )
    gc.collect()  # untracks the plain tuples and dicts (heap entries, specs)
    # Only the TaskRecord itself (a tuple subclass stays tracked): the store's own
    # state per record is plain dicts of strings and numbers.
    assert len(gc.get_objects()) - before < 2000 + 300
    assert len(await store.records()) == 2001


async def test_run_ids_added_at_one_moment_take_the_first_free_suffix() -> None:
    store = MemoryStore()
    await store.save(TaskRecord(key="t", task="t"))
    ids = [await store.add_run("t", fire_at=5.0) for _ in range(4)]
    assert ids == ["t@5000", "t@5000.2", "t@5000.3", "t@5000.4"]
    claims = await store.acquire(now=5.0, owner="o", lease_duration=1, limit=10)
    by_id = {c.run_id: c for c in claims}
    await store.commit(by_id["t@5000.3"])  # frees .3
    assert await store.add_run("t", fire_at=5.0) == "t@5000.3"
    assert await store.add_run("t", fire_at=5.0) == "t@5000.5"
    await store.commit(by_id["t@5000.2"])
    await store.commit(by_id["t@5000"])
    assert await store.add_run("t", fire_at=5.0) == "t@5000"
    assert await store.add_run("t", fire_at=5.0) == "t@5000.2"
    assert await store.add_run("t", fire_at=5.0) == "t@5000.6"

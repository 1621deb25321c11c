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

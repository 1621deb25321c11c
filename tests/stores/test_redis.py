"""What RedisStore promises beyond the store contract, on real redis-servers:
batching, idempotent commits, wake-ups across instances, partitions, Redis
Cluster, the server clock, and recovery from the faults a server has (script
cache flushed, restarted, unreachable for a while)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
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
from aiohttp_jobs.stores.redis import RedisClock, RedisStore

from ..helpers import ROOT
from .redis_support import (
    RedisCluster,
    RedisServer,
    ReplyDropper,
    fresh_namespace,
    redis_cluster,  # noqa: F401 - fixture
    redis_factory,  # noqa: F401 - fixture
    redis_server,  # noqa: F401 - fixture
)


def _rec(key: str, fire_at: float | None = 100.0, **kw: Any) -> TaskRecord:
    return TaskRecord(key=key, task=key.split(":")[0], fire_at=fire_at, **kw)


@pytest.fixture
async def opened() -> AsyncIterator[Callable[..., Any]]:
    """``await opened(url, **options)``: an open RedisStore, closed at the end."""
    stores: list[RedisStore] = []

    async def make(url: str, **options: Any) -> RedisStore:
        options.setdefault("namespace", fresh_namespace())
        store = RedisStore(url, **options)
        stores.append(store)
        await store.open()
        return store

    yield make
    for store in stores:
        await store.close()


async def _wait_for(event: asyncio.Event, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        await event.wait()


async def _subscribed(server: RedisServer, store: RedisStore) -> None:
    """Wait until *store*'s listener is subscribed to its wake-up channel."""
    client = server.client(decode_responses=True)
    channel = f"{store.namespace}:wake"
    try:
        for _ in range(1000):  # the server is asked: there is no event to await
            if (await client.pubsub_numsub(channel))[0][1]:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"nobody subscribed to {channel} within 10 s")
    finally:
        await client.aclose()


async def _evalsha_calls(server: RedisServer) -> int:
    client = server.client(decode_responses=True)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def _connections_made(server: RedisServer) -> int:
    """How many connections the server has accepted (this question's too)."""
    client = server.client(decode_responses=True)
    try:
        stats = await client.info("stats")
    finally:
        await client.aclose()
    return int(stats["total_connections_received"])


# -- round trips and idempotence ------------------------------------------------------


async def test_commits_of_one_loop_turn_are_one_script_call(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url)
    for i in range(50):
        await store.save(_rec(f"t{i}"))
    before = await _evalsha_calls(redis_server)
    claims = await store.acquire(now=100.0, owner="me", lease_duration=30, limit=50)
    assert len(claims) == 50
    results = await asyncio.gather(
        *(store.commit(c, cursor=Cursor(200.0)) for c in claims)
    )
    assert results == [Lease.HELD] * 50
    beats = await asyncio.gather(*(store.extend(c, until=300.0) for c in claims))
    assert beats == [Lease.LOST] * 50  # finished runs: nothing to extend
    # one acquire, one commit batch, one heartbeat batch
    assert await _evalsha_calls(redis_server) - before == 3


async def test_reading_every_partition_is_one_round_trip_on_one_server(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url, partitions=4)
    for i in range(8):
        await store.save(_rec(f"t{i}", fire_at=100.0 + i))
    before = await _connections_made(redis_server)
    # sent at once, four reads would take four connections of the pool
    assert await store.next_due() == 100.0
    assert len(await store.acquire(now=200.0, owner="a", lease_duration=30, limit=8))
    assert await store.next_due() == 230.0
    # one pipeline on the one connection the store had open: none opened
    # but the one asking
    assert await _connections_made(redis_server) - before == 1


async def test_leases_are_one_script_call_per_partition_whatever_is_leased(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url, partitions=3)
    for i in range(30):
        await store.save(_rec(f"t{i}", fire_at=100.0 + i))
    await store.acquire(now=200.0, owner="a", lease_duration=30, limit=20)
    before = await _evalsha_calls(redis_server)
    assert len(await store.leases(now=200.0)) == 20
    assert await _evalsha_calls(redis_server) - before == 3


async def test_a_commit_repeated_after_a_lost_reply_takes_effect_once(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    async with ReplyDropper(redis_server.port) as proxy:
        store = await opened(proxy.url)
        other = await opened(redis_server.url, namespace=store.namespace)
        await store.save(_rec("t", max_running=2))
        [claim] = await store.acquire(
            now=100.0, owner="a", lease_duration=1000, limit=1
        )
        proxy.drop_next_reply()
        # the server moves the cursor, the reply is lost, redis-py sends the
        # same call again: it must answer HELD, not LOST, and change nothing more
        assert await store.commit(claim, cursor=Cursor(200.0), keep_lease=True) is (
            Lease.HELD
        )
        assert proxy.dropped == 1
        [second] = await other.acquire(now=200.0, owner="b", lease_duration=30, limit=1)
        assert second.run_id == "t@200000"
        assert await other.commit(second, cursor=Cursor(300.0)) is Lease.HELD
        # a repeat of the first commit still answers as the first time, and
        # does not move the cursor back to 200
        record = await store.get("t")
        assert record is not None and record.fire_at == 300.0
        assert await store.commit(claim) is Lease.HELD


@pytest.mark.parametrize("partitions", [1, 3])
async def test_an_acquire_repeated_after_a_lost_reply_returns_the_same_claims(
    partitions: int,
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    async with ReplyDropper(redis_server.port) as proxy:
        store = await opened(proxy.url, partitions=partitions)
        other = await opened(
            redis_server.url, namespace=store.namespace, partitions=partitions
        )
        for i in range(6):
            await store.save(_rec(f"t{i}", fire_at=100.0 + i))
        proxy.drop_reply_to("EVALSHA")
        # the server claims four runs, the reply is lost, the call is sent
        # again: it answers with those four claims, instead of claiming the
        # other two and leaving the four held by nobody until the lease ends
        claims = await store.acquire(now=200.0, owner="a", lease_duration=30, limit=4)
        assert proxy.dropped == 1
        assert len(claims) == 4
        assert [c.fire_at for c in claims] == sorted(c.fire_at for c in claims)
        rest = await other.acquire(now=200.0, owner="b", lease_duration=30, limit=10)
        assert sorted(c.run_id for c in claims + rest) == [
            f"t{i}@{100 + i}000" for i in range(6)
        ]
        assert len({c.fence for c in claims + rest}) == 6
        results = await asyncio.gather(
            *(store.commit(c, cursor=Cursor(300.0)) for c in claims)
        )
        assert results == [Lease.HELD] * 4


async def test_what_an_acquire_claimed_is_kept_only_while_the_lease_lasts(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url)
    done = f"{{{store.namespace}:0}}:done"
    client = redis_server.client(decode_responses=True)
    try:
        await store.save(_rec("t", max_running=3))
        assert await store.acquire(now=100.0, owner="a", lease_duration=30, limit=5)
        assert await client.hlen(done) == 1  # to answer a repeat
        assert not await store.acquire(now=100.0, owner="a", lease_duration=30, limit=5)
        assert await client.hlen(done) == 1  # nothing claimed: nothing to repeat
        await store.save(_rec("u"))
        await store.acquire(now=100.0, owner="a", lease_duration=0.001, limit=5)
        assert await client.hlen(done) == 2
        await asyncio.sleep(0.01)  # the server's clock passes that lease's end
        await store.add_run("t", fire_at=1.0)  # a call that remembers its answer
        # the 1 ms lease's claims are forgotten; the 30 s lease's are kept
        assert await client.hlen(done) == 2
    finally:
        await client.aclose()


async def test_acquire_and_fencing_across_instances(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    a = await opened(redis_server.url)
    b = await opened(redis_server.url, namespace=a.namespace)
    for i in range(20):
        await a.save(_rec(f"t{i}"))
    got = await asyncio.gather(
        a.acquire(now=100.0, owner="a", lease_duration=30, limit=15),
        b.acquire(now=100.0, owner="b", lease_duration=30, limit=15),
    )
    ids = [c.run_id for claims in got for c in claims]
    assert sorted(ids) == sorted(f"t{i}@100000" for i in range(20))  # once each
    [again] = await b.acquire(now=130.0, owner="b", lease_duration=30, limit=1)
    first = next(c for claims in got for c in claims if c.run_id == again.run_id)
    assert again.attempt == 1 and again.fence > first.fence


# -- faults ---------------------------------------------------------------------


async def test_a_flushed_script_cache_is_refilled(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url, partitions=3)
    for i in range(6):
        await store.save(_rec(f"t{i}"))
    assert redis_server.command("SCRIPT", "FLUSH") == "+OK"
    claims = await store.acquire(now=100.0, owner="me", lease_duration=30, limit=10)
    assert len(claims) == 6
    assert redis_server.command("SCRIPT", "FLUSH") == "+OK"
    # several partitions: one pipeline of script calls, each reloaded
    results = await asyncio.gather(*(store.commit(c) for c in claims))
    assert results == [Lease.HELD] * 6
    assert redis_server.command("SCRIPT", "FLUSH") == "+OK"
    await store.save(_rec("u"))
    assert await store.get("u") == _rec("u")


async def test_a_restart_with_aof_loses_nothing(
    redis_factory: Any,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    server: RedisServer = redis_factory(appendonly=True)
    store = await opened(server.url)
    for i in range(20):
        await store.save(_rec(f"t{i}", schedule={"interval": 10.0}))
    claims = await store.acquire(now=100.0, owner="me", lease_duration=30, limit=5)
    server.restart(kill=True)  # a crash; every write was fsynced
    results = await asyncio.gather(
        *(store.commit(c, cursor=Cursor(110.0)) for c in claims)
    )
    assert results == [Lease.HELD] * 5  # reconnected, script reloaded
    records = await store.records()
    assert len(records) == 20
    assert sorted(r.fire_at for r in records) == [100.0] * 15 + [110.0] * 5
    rest = await store.acquire(now=100.0, owner="me", lease_duration=30, limit=50)
    assert len(rest) == 15


async def test_calls_made_while_the_server_restarts_wait_for_it(
    redis_factory: Any,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    server: RedisServer = redis_factory(appendonly=True)
    store = await opened(server.url)
    await store.save(_rec("t"))
    [claim] = await store.acquire(now=100.0, owner="me", lease_duration=30, limit=1)
    server.stop()
    restart = asyncio.get_running_loop().run_in_executor(None, server.start)
    # refused connections until it is back: the calls try again meanwhile
    assert await store.commit(claim, cursor=Cursor(200.0)) is Lease.HELD
    await store.save(_rec("u"))
    await restart
    assert [r.fire_at for r in await store.records()] == [200.0, 100.0]


async def test_a_paused_server_makes_calls_wait_then_they_go_on(
    redis_factory: Any,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    server: RedisServer = redis_factory()
    store = await opened(server.url, socket_timeout=5.0)
    await store.save(_rec("t"))
    server.pause()
    asyncio.get_running_loop().call_later(1.0, server.resume)
    await store.save(_rec("u"))  # waits for the server, then succeeds
    assert [r.key for r in await store.records()] == ["t", "u"]


async def test_an_unreachable_server_fails_calls_clearly_and_they_recover(
    redis_factory: Any,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    import redis.exceptions

    server: RedisServer = redis_factory()
    store = await opened(server.url, socket_timeout=0.3, retry_for=0)
    await store.save(_rec("t"))
    server.pause()
    try:
        with pytest.raises(redis.exceptions.TimeoutError, match=str(server.port)):
            await store.get("t")
    finally:
        server.resume()
    assert await store.get("t") == _rec("t")


async def test_the_listener_reconnects_and_reports_what_it_may_have_missed(
    redis_factory: Any,  # noqa: F811
    opened: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server: RedisServer = redis_factory()
    listener = await opened(
        server.url, socket_timeout=0.3, retry_for=0, poll_interval=0.1
    )
    writer = await opened(server.url, namespace=listener.namespace)
    heard = asyncio.Event()
    listener.subscribe(heard.set)
    await _subscribed(server, listener)
    server.pause()
    try:
        for _ in range(1000):  # the poll times out: the listener backs off
            if "lost the wake-up channel" in caplog.text:
                break
            await asyncio.sleep(0.01)
        heard.clear()
    finally:
        server.resume()
    assert "lost the wake-up channel" in caplog.text
    await _wait_for(heard)  # back: it says something may have changed
    heard.clear()
    await writer.save(_rec("t", fire_at=5.0))
    await _wait_for(heard)


# -- wake-ups -------------------------------------------------------------------------


async def test_other_instances_hear_when_something_becomes_due_earlier(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    a = await opened(redis_server.url)
    b = await opened(redis_server.url, namespace=a.namespace, poll_interval=30.0)
    heard = asyncio.Event()
    b.subscribe(heard.set)
    await _subscribed(redis_server, b)
    heard.clear()
    await a.save(_rec("t", fire_at=500.0))
    await _wait_for(heard)
    heard.clear()
    await a.add_run("t", fire_at=50.0)
    await _wait_for(heard)
    [claim] = await a.acquire(now=50.0, owner="a", lease_duration=30, limit=1)
    heard.clear()
    assert await a.cancel(claim.run_id, now=60.0)
    assert await b.next_due() == 80.0


async def test_a_lost_message_is_made_up_by_the_poll(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    a = await opened(redis_server.url)
    b = await opened(redis_server.url, namespace=a.namespace, poll_interval=0.1)
    a._channel = "nobody-listens"  # a change whose message never arrives
    heard = asyncio.Event()
    b.subscribe(heard.set)
    await _subscribed(redis_server, b)
    await _wait_for(heard)  # its first poll: nothing is due
    heard.clear()
    await a.save(_rec("t", fire_at=5.0))
    await _wait_for(heard)  # a later poll found it


# -- partitions and Redis Cluster ------------------------------------------------


async def test_partitions_split_records_and_acquire_takes_from_all(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url, partitions=4)
    for i in range(40):
        await store.save(_rec(f"t{i}", fire_at=100.0 + i % 3))
    client = redis_server.client()
    try:
        sizes = [await client.hlen(f"{{{store.namespace}:{p}}}:rec") for p in range(4)]
    finally:
        await client.aclose()
    assert sum(sizes) == 40 and min(sizes) > 0
    seen: list[str] = []
    first = await store.acquire(now=200.0, owner="me", lease_duration=30, limit=10)
    assert [c.fire_at for c in first] == sorted(c.fire_at for c in first)
    assert {store._partition(c.record.key) for c in first} == {0, 1, 2, 3}
    seen += [c.run_id for c in first]
    while claims := await store.acquire(
        now=200.0, owner="me", lease_duration=30, limit=10
    ):
        seen += [c.run_id for c in claims]
    assert len(seen) == len(set(seen)) == 40
    assert await store.next_due() == 230.0


def _keys_by_partition(store: RedisStore, each: int) -> list[list[str]]:
    """*each* record keys of every partition of *store*."""
    found: list[list[str]] = [[] for _ in range(store.partitions)]
    for i in range(10_000):
        key = f"t{i}"
        keys = found[store._partition(key)]
        if len(keys) < each:
            keys.append(key)
        if all(len(keys) == each for keys in found):
            return found
    raise AssertionError("crc32 spreads keys unevenly")  # pragma: no cover


@pytest.mark.parametrize("where", ["server", "cluster"])
async def test_acquires_draw_from_the_partitions_in_turn(
    where: str,
    request: pytest.FixtureRequest,
    opened: Callable[..., Any],
) -> None:
    if where == "server":
        store = await opened(request.getfixturevalue("redis_server").url, partitions=4)
    else:
        url = request.getfixturevalue("redis_cluster").url
        store = await opened(url, cluster=True, partitions=4)
    # partition 0 is busy: its backlog is older than anything of the others
    keys = _keys_by_partition(store, 12)
    for p, part in enumerate(keys):
        for i, key in enumerate(part):
            await store.save(_rec(key, fire_at=(100.0 if p == 0 else 150.0) + i))
    batches = []
    for _ in range(8):
        claims = await store.acquire(now=200.0, owner="me", lease_duration=30, limit=3)
        assert [c.fire_at for c in claims] == sorted(c.fire_at for c in claims)
        batches.append(claims)
    drawn = [sorted(store._partition(c.record.key) for c in b) for b in batches]
    # three partitions a batch, each batch from the one after the previous
    # batch's last: 8 batches of 3 give every partition 6 turns
    assert all(len(set(partitions)) == 3 for partitions in drawn)
    [skipped] = {0, 1, 2, 3} - set(drawn[0])
    rotation = [(skipped + 1 + i) % 4 for i in range(24)]
    assert drawn == [sorted(rotation[3 * b : 3 * b + 3]) for b in range(8)]
    # each partition's share is its earliest runs
    for p in range(4):
        fired = sorted(
            c.fire_at for b in batches for c in b if store._partition(c.record.key) == p
        )
        assert fired == [(100.0 if p == 0 else 150.0) + i for i in range(6)]
    left = await store.acquire(now=200.0, owner="me", lease_duration=30, limit=100)
    assert len(left) == 4 * 6


def test_a_batch_is_dealt_to_the_partitions_with_runs_due_in_turn() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", partitions=4)
    store._turn = 0

    def shares(due: list[int], limit: int) -> dict[int, int]:
        calls = store._plan(due, limit, 0, "o:", 30)
        return {p: args[3] for p, _, _, args, _ in calls}

    # one round to those with runs due, then the next in turn: partition 2
    # has nothing more, so the last run goes to 0
    assert shares([5, 0, 1, 3], 4) == {0: 2, 2: 1, 3: 1}
    assert store._turn == 1  # the next batch starts after partition 0
    assert shares([3, 1, 1, 3], 2) == {1: 1, 2: 1}
    assert shares([3, 1, 1, 3], 1) == {3: 1}
    assert shares([3, 1, 1, 3], 1) == {0: 1}
    assert shares([9, 2, 0, 9], 100) == {0: 9, 1: 2, 3: 9}  # all that is due
    assert shares([0, 0, 0, 0], 10) == {}


async def test_a_namespace_spreads_over_a_redis_cluster(
    redis_cluster: RedisCluster,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_cluster.url, cluster=True, partitions=6)
    other = await opened(
        redis_cluster.url, cluster=True, partitions=6, namespace=store.namespace
    )
    heard = asyncio.Event()
    other.subscribe(heard.set)
    for i in range(30):
        await store.save(_rec(f"t{i}", schedule={"interval": 1.0}))
    client = redis_cluster.client()
    try:
        await client.initialize()
        nodes = {
            client.get_node_from_key(f"{{{store.namespace}:{p}}}:rec").port
            for p in range(6)
        }
        sizes = [await client.hlen(f"{{{store.namespace}:{p}}}:rec") for p in range(6)]
    finally:
        await client.aclose()
    assert len(nodes) >= 2 and sum(sizes) == 30
    claims = await other.acquire(now=100.0, owner="b", lease_duration=30, limit=100)
    assert len(claims) == 30
    assert await other.next_due() == 130.0
    results = await asyncio.gather(
        *(other.commit(c, cursor=Cursor(101.0)) for c in claims)
    )
    assert results == [Lease.HELD] * 30
    assert await store.next_due() == 101.0
    assert len(await store.records()) == 30
    await _wait_for(heard)  # wake-ups travel through the cluster too


# -- server clock, start-up checks, connections ----------------------------------


class _SkewedServer(RedisStore):
    async def server_time(self) -> float | None:
        return time.time() + 100.0  # the server is 100 s ahead of this host


async def test_the_server_clock_follows_the_server() -> None:
    server = RedisServer().start()
    try:
        store = _SkewedServer(
            server.url, namespace=fresh_namespace(), server_clock=True
        )
        async with store:
            clock = store.clock
            assert clock is not None
            assert 99.0 < clock.time() - time.time() < 101.0
            assert clock.now().timestamp() >= clock.time() - 1
            fired = asyncio.Event()
            clock.call_at(clock.time() + 0.01, fired.set)
            await _wait_for(fired)
            assert abs(await RedisStore.server_time(store) - time.time()) < 5  # type: ignore[operator]
    finally:
        server.close()


class _SteppingServer(RedisStore):
    ahead = 100.0

    async def server_time(self) -> float | None:
        return time.time() + self.ahead


async def test_the_server_clock_never_goes_back_when_it_resamples(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    store = _SteppingServer(redis_server.url, namespace=fresh_namespace())
    clock = RedisClock(store)
    async with store:
        await clock.sample()
        before = clock.time()
        store.ahead = 50.0  # the next sample finds the server 50 s behind that
        await clock.sample()
        assert clock.time() >= before
        assert 49.0 < clock.skew < 51.0


class _HeldClock(RedisClock):
    """A server clock that shows what the test sets."""

    now = 1000.0

    def time(self) -> float:
        return self.now


async def test_a_server_clock_timer_fires_in_the_loop_turn_its_time_comes() -> None:
    clock = _HeldClock(RedisStore("redis://127.0.0.1:1/0"))
    fired: list[float] = []
    clock.call_at(1000.001, lambda: fired.append(clock.now))
    cancelled = clock.call_at(1000.001, lambda: fired.append(-1.0))
    cancelled.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert fired == []  # not before its time
    # the last stretch is waited out turn by turn, not with a loop timer that
    # the selector rounds up to whole milliseconds
    clock.now = 1000.001
    for _ in range(3):
        await asyncio.sleep(0)
    assert fired == [1000.001]


async def test_open_warns_when_the_server_may_lose_our_keys(
    redis_factory: Any,  # noqa: F811
    opened: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    safe: RedisServer = redis_factory(appendonly=True)
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.stores"):
        await opened(safe.url)
    assert caplog.records == []
    risky: RedisServer = redis_factory(config={"maxmemory-policy": "allkeys-lru"})
    with caplog.at_level(logging.WARNING, logger="aiohttp_jobs.stores"):
        await opened(risky.url)
    assert "maxmemory-policy is 'allkeys-lru'" in caplog.text
    assert "keeps nothing on disk" in caplog.text


async def test_the_pool_is_bounded_and_callers_wait_for_a_connection(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.url, pool_size=2)
    await store.save(_rec("t"))
    got = await asyncio.gather(*(store.get("t") for _ in range(50)))
    assert got == [_rec("t")] * 50
    client = redis_server.client(decode_responses=True)
    try:
        clients = await client.client_list()
    finally:
        await client.aclose()
    mine = [c for c in clients if c["name"].startswith("aiohttp_jobs.")]
    names = {c["name"] for c in mine}
    assert all(sum(c["name"] == n for c in mine) <= 2 for n in names)


async def test_a_client_of_ones_own_is_used_and_left_open(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    client = redis_server.client()  # bytes replies (decode_responses=False)
    try:
        async with RedisStore(client, namespace=fresh_namespace()) as store:
            await store.save(_rec("t", params={"x": 1}))
            assert await store.get("t") == _rec("t", params={"x": 1})
            assert [r.key for r in await store.records()] == ["t"]
            [claim] = await store.acquire(
                now=100.0, owner="me", lease_duration=30, limit=1
            )
            entry = RunLogEntry(claim.run_id, "t", "me", 0, "succeeded", 100.0, 101.0)
            assert await store.commit(claim, cursor=Cursor(200.0), log=entry)
            assert await store.recent_runs("t") == [entry]
            info = InstanceInfo("i1", "host", 1, "1.0", 100.0, 100.0)
            await store.register_instance(info, ttl=10)
            assert await store.instances(now=105.0) == [info]
            assert await store.instances(now=111.0) == []
        assert await client.ping()  # not closed by the store
    finally:
        await client.aclose()


async def test_a_unix_socket_url(
    redis_server: RedisServer,  # noqa: F811
    opened: Callable[..., Any],
) -> None:
    store = await opened(redis_server.unix_url)
    await store.save(_rec("t"))
    assert await store.get("t") == _rec("t")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"namespace": "{app}"}, "namespace"),
        ({"namespace": ""}, "namespace"),
        ({"partitions": 0}, "partitions"),
        ({"pool_size": 0}, "pool_size"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"server_clock": "yes"}, "server_clock"),
    ],
)
def test_bad_options_are_refused_naming_them(
    options: dict[str, Any], name: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        RedisStore("redis://127.0.0.1:1/0", **options)


async def test_store_options_in_the_url(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    url = f"{redis_server.url}?partitions=2&poll_interval=0.5&server_clock=yes"
    store = from_url(url, namespace=fresh_namespace())
    assert isinstance(store, RedisStore)
    assert (store.partitions, store.clock is not None) == (2, True)
    async with store:  # redis-py got the URL without them
        await store.save(_rec("t"))
        assert await store.get("t") == _rec("t")
    keyword = RedisStore(f"{redis_server.url}?partitions=2", partitions=3)
    assert keyword.partitions == 3  # a keyword given wins
    with pytest.raises(ConfigError, match="partitions"):
        RedisStore(f"{redis_server.url}?partitions=many")
    with pytest.raises(ConfigError, match="partitions"):
        RedisStore(f"{redis_server.url}?partitions=0")
    with pytest.raises(ConfigError, match="cluster"):
        RedisStore(f"{redis_server.url}?cluster=perhaps")


def test_only_redis_urls_or_clients() -> None:
    with pytest.raises(ConfigError, match="url_or_client"):
        RedisStore("http://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="url_or_client"):
        RedisStore(42)


def test_importing_the_module_loads_no_redis_and_a_missing_redis_is_named() -> None:
    code = (
        "import asyncio, sys\n"
        "sys.modules['redis'] = None\n"
        "from aiohttp_jobs.stores.redis import RedisStore\n"
        "store = RedisStore('redis://127.0.0.1:1/0')\n"
        "try:\n"
        "    asyncio.run(store.open())\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=True,
    ).stdout
    assert out.startswith(MissingDependencyError.__name__)
    assert 'pip install "aiohttp-jobs[redis]"' in out

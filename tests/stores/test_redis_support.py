"""The Redis test servers themselves: what fault tests rely on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .redis_support import (
    RedisCluster,
    RedisServer,
    redis_cluster,  # noqa: F401 - fixture
    redis_factory,  # noqa: F401 - fixture
)


async def test_restart_with_aof_keeps_the_data_on_the_same_port(
    redis_factory: Any,  # noqa: F811
) -> None:
    import redis.asyncio.retry
    import redis.backoff
    import redis.exceptions

    server: RedisServer = redis_factory(appendonly=True)
    port = server.port
    # Reconnect after the restart (redis-py retries by default from 6.0 only).
    client = server.client(
        retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 3),
        retry_on_error=[redis.exceptions.ConnectionError],
    )
    try:
        await client.set("k", "v")
        server.restart(kill=True)  # a crash: appendfsync always lost nothing
        assert server.port == port
        assert await client.get("k") == b"v"  # redis-py reconnects
    finally:
        await client.aclose()


async def test_a_paused_server_answers_nothing_until_resumed(
    redis_factory: Any,  # noqa: F811
) -> None:
    server: RedisServer = redis_factory()
    client = server.client(socket_timeout=0.3, retry=None)
    try:
        await client.set("k", "v")
        server.pause()
        with pytest.raises(Exception, match="Timeout"):
            await client.get("k")
        server.resume()
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()


def test_stop_and_close_leave_nothing_behind(redis_factory: Any) -> None:  # noqa: F811
    server: RedisServer = redis_factory()
    assert server.command("PING") == "+PONG"
    pid, directory = server.pid, server.dir
    server.close()
    assert not server.running and not directory.exists()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)  # type: ignore[arg-type]


async def test_the_cluster_spreads_slots_over_three_nodes(
    redis_cluster: RedisCluster,  # noqa: F811
) -> None:
    client = redis_cluster.client()
    try:
        for tag in ("a", "b", "c", "d", "e", "f"):
            await client.set(f"{{{tag}}}k", tag)
        nodes = {client.get_node_from_key(f"{{{t}}}k").port for t in "abcdef"}
        assert len(nodes) >= 2
        assert await client.get("{a}k") == b"a"
    finally:
        await client.aclose()
    await asyncio.sleep(0)

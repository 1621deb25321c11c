"""Shared task stores: once-off throughput across processes, acquire cost
against the number of records stored, idle cross-instance firing lateness and
Redis round trips per run; pyncette's Redis and SQLite repositories measured in
the same run (when pyncette is installed: the ``bench`` extra).

    python benchmarks/stores.py [--n 10000] [--big 1000000] [--processes 4]
                                [--samples 100] [--idle 10] [--quick]

Prints ONE JSON line. It starts its own ``redis-server`` (no persistence) on a
free port of 127.0.0.1, in a temporary directory it removes at the end.

* ``once``: *n* once-off tasks due at the same moment; ``run_per_s`` counts from
  that moment to the last run finishing (every runner process started and idle
  before it; the records are written beforehand with ``TaskStore.save``, whose
  rate is ``seed_per_s``). Redis and SQLite with one and ``--processes`` runner
  processes (``*_multi``; ``--child`` runs of this script); memory in this
  process. ``duplicates``:
  runs beyond one per task, over all processes. pyncette: ``schedule_task`` for
  each, then ``run()`` until all ran (its default 1 s poll), as in
  ``benchmarks/tasks.py`` (at most 500 for its SQLite repository, which
  writes about 100 records/s on the development machine).
* ``acquire``: milliseconds per ``acquire(limit=100)`` of due runs (each batch
  then finished), with ``--big`` and with 1,000 records not due stored beside
  them (Redis and SQLite: cloned inside the server from one saved record, see
  :func:`fill`); the two are measured in turn, 30 rounds, median.
  ``redis_bytes_per_record``: Redis ``used_memory`` grown per record stored.
* ``lateness``: one runner process idle on the store; this process saves a
  once-off record due now (or 200 ms from now) every 50 ms; the runner logs
  (start of the run) - (its fire time).
* ``idle_cpu``: percent of one core that one runner process uses while
  nothing is due over ``--idle`` seconds (subscribed to the store: SQLite's
  look at its WAL index, Redis's pub/sub), SQLite and Redis.
* ``redis_cpu_us_per_run``: CPU time of ``redis-server`` (``INFO cpu``) during
  the run phase, per run; ``shard_ceiling_runs_per_s``: its inverse, the rate
  at which one Redis shard's core would be saturated.
* ``round_trips_per_run``: what the runner processes sent to Redis (counted at
  the client: one send is one round trip) during the Redis run phase, per
  run; ``redis_commands_per_run``: commands the server executed (``INFO
  stats``, commands inside Lua scripts included) per run;
  ``commandstats``: the busiest of those, per run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp_jobs import Context, Scheduler, Tasks
from aiohttp_jobs.stores import TaskRecord, TaskStore, from_url

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
LEASE = 30.0
# Seconds allowed per runner process to start before the tasks fall due, and
# rounds of the acquire measurement (--quick lowers both).
START_MARGIN = 1.0
ROUNDS = 30


# -- a redis-server of our own --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A ``redis://`` URL of a fresh server, or ``None`` without redis-server."""
    if not os.access(REDIS_SERVER, os.X_OK):
        yield None
        return
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    port = _free_port()
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--dir", tmp, "--save", "", "--appendonly", "no", "--logfile", ""]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _redis_memory(url: str) -> int:
    """``used_memory`` of the Redis server (0 for other stores)."""
    if not url.startswith("redis"):
        return 0
    admin = redis_admin(url)
    used = int(admin.info("memory")["used_memory"])
    admin.close()
    return used


def _redis_cpu(admin: Any) -> float:
    info = admin.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_admin(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, decode_responses=True)


# -- records ------------------------------------------------------------------------


def once_record(i: int, at: float, prefix: str = "t") -> TaskRecord:
    """What ``schedule_task(once, f"{prefix}{i}", execute_at=at)`` saves."""
    return TaskRecord(
        key=f"once:{prefix}{i}",
        task="once",
        schedule={"at": at},
        fire_at=at,
        revision=i + 1,
    )


async def seed(store: TaskStore, n: int, at: float, prefix: str = "t") -> float:
    """Save *n* once-off records due at *at*, 200 calls in flight; seconds taken."""
    t0 = time.perf_counter()
    for lo in range(0, n, 200):
        hi = min(n, lo + 200)
        await asyncio.gather(
            *(store.save(once_record(i, at, prefix)) for i in range(lo, hi))
        )
    return time.perf_counter() - t0


# -- a runner process (``--child``) ---------------------------------------------------


async def child(url: str, namespace: str, mode: str) -> None:
    """Run ``once`` tasks from the store until none is left after the go time
    (read from stdin), then print what ran."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    ran: list[str] = []
    late: list[float] = []
    last = 0.0
    tasks = Tasks(store=from_url(url, namespace=namespace), batch_size=100)

    @tasks.dynamic_task(lease_duration=LEASE)
    async def once(ctx: Context) -> None:
        nonlocal last
        last = time.time()
        ran.append(ctx.run_id)
        if mode == "lateness":
            late.append(last - ctx.fire_at)

    sends = (
        _count_round_trips() if url.startswith(("redis", "rediss", "unix")) else None
    )
    loop = asyncio.get_running_loop()
    async with Scheduler(limit=None) as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler) as runtime:
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            line = await loop.run_in_executor(None, sys.stdin.readline)
            go = json.loads(line)
            await asyncio.sleep(max(0.0, go["at"] - time.time()))
            before = sends[0] if sends else 0
            store = runtime.store
            cpu = time.process_time()
            if mode == "idle":  # one sleep: nothing of this loop is counted
                await asyncio.sleep(max(0.0, go["until"] - time.time()))
            while mode != "idle":  # polled: cheap, and the same for every store
                if mode == "lateness":
                    if len(late) >= go["expect"] or time.time() > go["until"]:
                        break
                elif not runtime.in_flight and await store.next_due() is None:
                    break
                await asyncio.sleep(0.05)
            cpu = time.process_time() - cpu
            sent = sends[0] - before if sends else None
    out: dict[str, Any] = {
        "cpu": cpu,
        "ran": len(ran),
        "last": last,
        "late": late,
        "round_trips": sent,
    }
    if mode == "once":
        out["ids"] = ran
    sys.stdout.write(json.dumps(out) + "\n")


def _count_round_trips() -> list[int]:
    """Count what redis-py sends (one send: one round trip, a pipeline
    included) in this process: ``[count]``, updated in place."""
    from redis.asyncio.connection import AbstractConnection

    count = [0]
    send = AbstractConnection.send_packed_command

    async def counted(self: Any, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        await send(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    return count


@contextlib.asynccontextmanager
async def children(
    url: str, namespace: str, count: int, mode: str = "once"
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs = []
    try:
        for _ in range(count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE),
                "--child",
                url,
                namespace,
                mode,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            procs.append(proc)
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line.strip() != b"ready":
                assert proc.stderr is not None
                err = await proc.stderr.read()
                raise RuntimeError(f"runner did not start: {err.decode()[-2000:]}")
        yield procs
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def go(procs: list[asyncio.subprocess.Process], **plan: Any) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(plan) + "\n").encode())
        await proc.stdin.drain()


async def results(
    procs: list[asyncio.subprocess.Process], timeout: float
) -> tuple[list[dict[str, Any]], str]:
    outs, errs = [], []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        errs.append(err.decode(errors="replace"))
        lines = out.decode().splitlines()
        if proc.returncode or not lines:
            raise RuntimeError(f"runner failed: {errs[-1][-2000:]}")
        outs.append(json.loads(lines[-1]))
    return outs, "".join(errs)


# -- once-off throughput ------------------------------------------------------------


async def once_shared(url: str, n: int, procs: int, timeout: float) -> dict[str, Any]:
    """*n* once-offs due at one moment, run by *procs* runner processes started
    after the records were written, idle until that moment."""
    namespace = f"b{uuid.uuid4().hex[:8]}"
    async with from_url(url, namespace=namespace) as store:
        sample = min(n, 1000)
        probe = await seed(store, sample, time.time() + 86_400, "w")
        for i in range(sample):
            await store.delete(f"once:w{i}")
        # generous: the records, then every runner started (each reads them)
        at = time.time() + 2 * probe * n / sample + START_MARGIN * (2 + procs)
        took = await seed(store, n, at)
    async with children(url, namespace, procs) as runners:
        ready = time.time()
        admin = None
        before = 0
        cpu = 0.0
        if url.startswith("redis"):
            admin = redis_admin(url)
            admin.config_resetstat()
            before = int(admin.info("stats")["total_commands_processed"])
            cpu = _redis_cpu(admin)
        await go(runners, at=at)
        outs, errs = await results(runners, timeout)
    last = max((o["last"] for o in outs), default=at)
    ids = [i for o in outs for i in o["ids"]]
    result: dict[str, Any] = {
        "n": n,
        "processes": procs,
        "ran": len(set(ids)),
        "duplicates": len(ids) - len(set(ids)),
        "per_process": sorted(o["ran"] for o in outs),
        "seed_per_s": round(n / took),
        "run_per_s": round(n / max(1e-9, last - at)),
        "started_late": ready > at,
        "locked_errors": errs.count("database is locked"),
    }
    if admin is not None:
        # CPU the server spent (idle ticks of the runners included) per run:
        # what bounds one shard, whatever the number of runner processes
        used = _redis_cpu(admin) - cpu
        result["redis_cpu_us_per_run"] = round(used * 1e6 / n, 1)
        result["shard_ceiling_runs_per_s"] = round(n / used) if used else None
        stats = admin.info("commandstats")
        total = int(admin.info("stats")["total_commands_processed"]) - before
        result["redis_commands_per_run"] = round(total / n, 3)
        trips = sum(o["round_trips"] or 0 for o in outs)
        result["round_trips_per_run"] = round(trips / n, 3)
        busiest = sorted(stats.items(), key=lambda kv: -int(kv[1]["calls"]))[:6]
        result["commandstats"] = {
            k.removeprefix("cmdstat_"): round(int(v["calls"]) / n, 3)
            for k, v in busiest
        }
        admin.close()
    return result


async def once_memory(n: int) -> dict[str, Any]:
    tasks = Tasks(batch_size=100)
    done = 0
    last = 0.0
    finished = asyncio.Event()

    @tasks.dynamic_task(lease_duration=LEASE)
    async def once(ctx: Context) -> None:
        nonlocal done, last
        done += 1
        last = time.time()
        if done == n:
            finished.set()

    async with Scheduler(limit=None) as scheduler:
        async with tasks.runtime(app=None, scheduler=scheduler) as runtime:
            at = time.time() + 0.5 + n / 50_000
            took = await seed(runtime.store, n, at)
            seeded = time.time()
            await asyncio.wait_for(finished.wait(), 120)
    start = max(at, seeded)
    return {
        "n": n,
        "processes": 1,
        "ran": done,
        "duplicates": 0,
        "seed_per_s": round(n / took),
        "run_per_s": round(n / max(1e-9, last - start)),
    }


async def once_pyncette(kind: str, url: str | None, n: int) -> dict[str, Any] | None:
    try:
        from pyncette import Pyncette
    except ImportError:
        return None
    import datetime as dt

    if kind == "redis":
        if url is None:
            return None
        from pyncette.redis import redis_repository

        app = Pyncette(
            repository_factory=redis_repository,
            redis_url=url,
            redis_namespace=f"p{uuid.uuid4().hex[:8]}",
        )
    else:
        tmp = tempfile.mkdtemp(prefix="bench-pyncette-")
        app = Pyncette(sqlite_database=os.path.join(tmp, "p.db"))
    done = 0
    last = 0.0

    @app.dynamic_task()
    async def once(context: Any) -> None:
        nonlocal done, last
        done += 1
        last = time.time()

    async with app.create() as ctx:
        t0 = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        for i in range(n):
            await ctx.schedule_task(once, f"t{i}", execute_at=now)
        took = time.perf_counter() - t0
        start = time.time()
        runner = asyncio.ensure_future(ctx.run())
        deadline = time.monotonic() + max(30.0, n / 200)
        while done < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        ctx.shutdown()
        await runner
    if kind != "redis":
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n": n,
        "processes": 1,
        "ran": done,
        "seed_per_s": round(n / took),
        "run_per_s": round(done / max(1e-9, last - start)),
        "timed_out": done < n,
    }


# -- acquire cost against records stored --------------------------------------------


# Filling a store with a million records through save() takes minutes (one
# script call or transaction each, bound by the client's CPU); the store's
# layout is cloned inside the server instead, from one record that save()
# wrote. Only records that are never due are cloned: acquire() never reads
# them, so only their presence (index sizes) is measured.

_CLONE_LUA = """
local template, prefix, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
for _, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'hash' then
    local v = redis.call('HGET', k, template)
    if v then
      for i = 1, n do redis.call('HSET', k, prefix .. i, v) end
    end
  elseif t == 'zset' then
    local score = redis.call('ZSCORE', k, 'c:' .. template)
    if score then
      for i = 1, n do redis.call('ZADD', k, score, 'c:' .. prefix .. i) end
    end
  end
end
return n
"""


async def fill(url: str, store: TaskStore, namespace: str, n: int) -> str:
    """Store *n* records never due (in a day) beside what is there; how."""
    far = time.time() + 86_400
    if url.startswith("memory"):
        for i in range(n):
            await store.save(once_record(i, far, "far"))
        return "save"
    await store.save(once_record(0, far, "template"))
    template, prefix = "once:template0", "once:far"
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            ]
            for table in tables:
                cols = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                if "key" not in cols or "namespace" not in cols:
                    continue
                select = ", ".join(
                    "? || n" if c == "key" else f'"{c}"'
                    for c in cols
                    if c != "due"  # a generated column
                )
                names = ", ".join(f'"{c}"' for c in cols if c != "due")
                conn.execute(
                    f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
                    f"FROM seq WHERE n < ?) INSERT INTO {table} ({names}) "
                    f"SELECT {select} FROM {table}, seq "
                    f"WHERE namespace = ? AND key = ?",
                    (n, prefix, namespace, template),
                )
        return "sql clone"
    admin = redis_admin(url)
    keys = list(admin.scan_iter(match=f"*{namespace}*", count=1000))
    for lo in range(0, n, 50_000):
        admin.eval(_CLONE_LUA, len(keys), *keys, template, prefix, min(50_000, n - lo))
        prefix = f"once:far{lo // 50_000}-"
    admin.close()
    return "lua clone"


async def stored_count(url: str, namespace: str) -> int | None:
    if url.startswith("redis"):
        admin = redis_admin(url)
        sizes = [
            admin.zcard(k)
            for k in admin.scan_iter(match=f"*{namespace}*", count=1000)
            if admin.type(k) == "zset"
        ]
        admin.close()
        return max(sizes, default=0)
    return None


async def acquire_cost(url: str, sizes: tuple[int, int]) -> list[dict[str, Any]]:
    """ms per ``acquire(limit=100)`` of due runs (and finishing them) with
    ``sizes`` records not due stored beside them, in two namespaces measured in
    turn (so a machine getting busier or quieter weighs on both alike)."""
    stores: list[TaskStore] = []
    namespaces: list[str] = []
    fills: list[tuple[str, float]] = []
    per_record: list[int | None] = []
    try:
        for stored in sizes:
            namespace = f"a{uuid.uuid4().hex[:8]}"
            store = from_url(url, namespace=namespace)
            await store.open()
            stores.append(store)
            namespaces.append(namespace)
            used = _redis_memory(url)
            t0 = time.perf_counter()
            how = await fill(url, store, namespace, stored)
            fills.append((how, time.perf_counter() - t0))
            grown = _redis_memory(url) - used
            per_record.append(round(grown / stored) if used else None)
            await seed(store, 100 * ROUNDS, time.time() - 1)
        now = time.time()
        times: list[list[float]] = [[] for _ in sizes]
        finish: list[list[float]] = [[] for _ in sizes]
        claimed = [0 for _ in sizes]
        for _ in range(ROUNDS):
            for i, store in enumerate(stores):
                t = time.perf_counter()
                claims = await store.acquire(
                    now=now, owner="bench", lease_duration=LEASE, limit=100
                )
                times[i].append(time.perf_counter() - t)
                claimed[i] += len(claims)
                t = time.perf_counter()
                await asyncio.gather(
                    *(store.delete(c.record.key, claim=c) for c in claims)
                )
                finish[i].append(time.perf_counter() - t)
        sized = [await stored_count(url, ns) for ns in namespaces]
    finally:
        for store in stores:
            await store.close()
        if url.startswith("redis"):
            admin = redis_admin(url)
            for namespace in namespaces:
                keys = list(admin.scan_iter(match=f"*{namespace}*", count=10_000))
                if keys:
                    admin.unlink(*keys)
            admin.close()
    return [
        {
            "stored": stored,
            "claimed": claimed[i],
            "acquire_ms": round(statistics.median(times[i]) * 1000, 3),
            "finish_100_ms": round(statistics.median(finish[i]) * 1000, 3),
            "fill": fills[i][0],
            "fill_s": round(fills[i][1], 1),
            "index_size": sized[i],
            "redis_bytes_per_record": per_record[i],
        }
        for i, stored in enumerate(sizes)
    ]


# -- idle cross-instance lateness ---------------------------------------------------


def _pct(samples: list[float]) -> dict[str, float | int]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def lateness(url: str, samples: int) -> dict[str, Any]:
    namespace = f"l{uuid.uuid4().hex[:8]}"
    out: dict[str, Any] = {}
    async with children(url, namespace, 1, "lateness") as runners:
        until = time.time() + 0.2 * samples + 30
        await go(runners, at=time.time(), until=until, expect=samples)
        async with from_url(url, namespace=namespace) as store:
            await asyncio.sleep(0.3)  # the runner sees the go and goes idle
            for i in range(samples):
                ahead = 0.0 if i % 2 == 0 else 0.2
                await store.save(once_record(i, time.time() + ahead, "late"))
                await asyncio.sleep(0.05 + ahead)
            await asyncio.sleep(0.5)
        outs, _ = await results(runners, 60)
    late = outs[0]["late"]
    out["runs"] = len(late)
    out["all"] = _pct(late)
    return out


async def idle_cpu(url: str, seconds: float) -> dict[str, Any]:
    """Percent of one core that an idle runner process uses (nothing due)."""
    namespace = f"i{uuid.uuid4().hex[:8]}"
    async with children(url, namespace, 1, "idle") as runners:
        await asyncio.sleep(0.5)  # the runner settles
        start = time.time()
        await go(runners, at=start, until=start + seconds)
        outs, _ = await results(runners, seconds + 60)
    return {"seconds": seconds, "cpu_pct": round(100 * outs[0]["cpu"] / seconds, 3)}


# -- main ---------------------------------------------------------------------------


async def _safe(measure: Any) -> Any:
    """A measurement's result, or what went wrong (the others still run)."""
    try:
        return await measure
    except Exception as exc:
        return {"error": repr(exc)[:500]}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


async def main(
    n: int, big: int, samples: int, procs: int, idle: float = 10.0
) -> dict[str, Any]:
    logging.disable(logging.WARNING)
    out: dict[str, Any] = {
        "benchmark": "stores",
        "n": n,
        "big": big,
        "processes": procs,
    }
    timeout = max(120.0, n / 100)
    tmp = tempfile.mkdtemp(prefix="bench-stores-")
    sqlite_url = f"sqlite:///{tmp}/tasks.db"
    try:
        with redis_server() as redis_url:
            out["redis_available"] = redis_url is not None
            once: dict[str, Any] = {"memory": await _safe(once_memory(n))}
            once["sqlite_1"] = await _safe(once_shared(sqlite_url, n, 1, timeout))
            once["sqlite_multi"] = await _safe(
                once_shared(sqlite_url, n, procs, timeout)
            )
            if redis_url is not None:
                once["redis_1"] = await _safe(once_shared(redis_url, n, 1, timeout))
                once["redis_multi"] = await _safe(
                    once_shared(redis_url, n, procs, timeout)
                )
            once["pyncette_redis"] = await _safe(once_pyncette("redis", redis_url, n))
            # pyncette's SQLite repository writes about 100 records/s here:
            # a smaller batch keeps the run short (its rate does not need more)
            once["pyncette_sqlite"] = await _safe(
                once_pyncette("sqlite", None, min(n, 500))
            )
            out["pyncette_available"] = once["pyncette_sqlite"] is not None
            out["once"] = once
            acquire: dict[str, Any] = {
                "memory": await _safe(acquire_cost("memory://", (1_000, big))),
                "sqlite": await _safe(acquire_cost(sqlite_url, (1_000, big))),
            }
            if redis_url is not None:
                acquire["redis"] = await _safe(acquire_cost(redis_url, (1_000, big)))
                out["lateness_redis"] = await _safe(lateness(redis_url, samples))
            out["lateness_sqlite"] = await _safe(lateness(sqlite_url, samples))
            # side by side: the same conditions for both
            idlers = {"sqlite": idle_cpu(sqlite_url, idle)}
            if redis_url is not None:
                idlers["redis"] = idle_cpu(redis_url, idle)
            measured = await asyncio.gather(*map(_safe, idlers.values()))
            out["idle_cpu"] = dict(zip(idlers, measured, strict=True))
            out["acquire"] = acquire
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(name: str) -> float | None:
        value = (once.get(name) or {}).get("run_per_s")
        return None if value is None else float(value)

    ratios: dict[str, float | None] = {
        "redis_multi_vs_1_x": _ratio(rate("redis_multi"), rate("redis_1")),
        "sqlite_multi_vs_1_x": _ratio(rate("sqlite_multi"), rate("sqlite_1")),
        "redis_1_vs_pyncette_redis_x": _ratio(rate("redis_1"), rate("pyncette_redis")),
        "sqlite_1_vs_pyncette_sqlite_x": _ratio(
            rate("sqlite_1"), rate("pyncette_sqlite")
        ),
        "redis_1_vs_memory_x": _ratio(rate("redis_1"), rate("memory")),
    }
    for name, pair in acquire.items():
        if isinstance(pair, list):
            ratios[f"acquire_{name}_big_vs_1k_x"] = _ratio(
                pair[1]["acquire_ms"], pair[0]["acquire_ms"]
            )
    idle_pct = {k: (v or {}).get("cpu_pct") for k, v in out["idle_cpu"].items()}
    ratios["idle_cpu_sqlite_vs_redis_x"] = _ratio(
        idle_pct.get("sqlite"), idle_pct.get("redis")
    )
    out["ratios"] = ratios
    late = out.get("lateness_redis", {}).get("all", {})
    multi = once.get("redis_multi") or {}
    out["targets"] = {
        "redis_1_at_least_10000_per_s": (rate("redis_1") or 0) >= 10_000,
        "redis_multi_at_least_1.8x_with_0_duplicates": (
            ratios["redis_multi_vs_1_x"] or 0
        )
        >= 1.8
        and multi.get("duplicates") == 0,
        "sqlite_1_at_least_5000_per_s": (rate("sqlite_1") or 0) >= 5_000,
        "redis_lateness_p99_at_most_20ms": late.get("p99_ms", 1e9) <= 20,
        "sqlite_lateness_p99_at_most_20ms": out.get("lateness_sqlite", {})
        .get("all", {})
        .get("p99_ms", 1e9)
        <= 20,
    }
    out["errors"] = sorted(
        name for name, entry in once.items() if entry and "error" in entry
    )
    out["all_ran"] = all(
        entry.get("ran") == entry.get("n")
        for entry in once.values()
        if entry is not None
    )
    return out


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        asyncio.run(child(*sys.argv[2:5]))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds of the idle CPU measure"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (for a smoke test)"
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.big, args.samples, args.processes = 300, 3_000, 6, 2
        args.idle = 1.0
        START_MARGIN, ROUNDS = 0.3, 5
    result = asyncio.run(
        main(args.n, args.big, args.samples, args.processes, args.idle)
    )
    sys.stdout.write(json.dumps(result) + "\n")

"""The Redis task store: one schedule shared by every instance of an application.

Built on redis-py's ``redis.asyncio`` (``pip install "aiohttp-jobs[redis]"``),
imported when the store opens, so importing this module costs nothing.

How it keeps the contract of :mod:`.base`:

* Every operation is one call of one Lua script (``lua/store.lua``) that reads,
  then writes only what its checks allow: Redis runs it atomically, so no
  WATCH/retry loops and no second round trip. The script is called by SHA
  (EVALSHA) and loaded again when the server answers NOSCRIPT (after a restart
  or a failover the script cache is empty).
* Every key a call touches is passed in ``KEYS`` and carries the hash tag of one
  partition of the namespace, ``{<namespace>:<n>}``: a call touches one slot,
  so the store runs on Redis Cluster, where partitions spread over the shards.
* With several partitions, an acquire counts the runs due in each (ZCOUNT)
  and deals its batch out between them one run at a time, in turn, from the
  partition after the last one the instance's previous batch drew from: every
  partition with runs due gets its turn, however many (or how old) the runs
  waiting in another are. Each partition gives its earliest runs, and the
  batch is sorted earliest first; when a batch takes less than is due,
  "earliest first" holds within each partition, not across them.
* Times are integer milliseconds.
* Commits, heartbeats and once-off deletions made during one event-loop turn
  travel together, as one script call per partition. Each call that changes
  something carries an id: repeated after a lost reply (calls are tried again
  while the server is unreachable, for up to ``retry_for`` seconds), it is not
  applied twice and answers as the first one did. An acquire repeated so
  answers with the claims of the first call that still hold (the server keeps
  their run ids while their lease lasts), instead of leaving them held by
  nobody until their lease ends and claiming others.
* A change that makes something due earlier than before is published on the
  namespace's channel; :meth:`RedisStore.subscribe` listens on one pub/sub
  connection and, since pub/sub loses what is sent while disconnected, also
  asks :meth:`~RedisStore.next_due` every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import itertools
import json
import logging
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._checks import MAX_TIMESTAMP, check_count, check_duration, check_timestamp
from .._errors import ConfigError, ConfigTypeError, MissingDependencyError
from .._timers import DeadlineTimer
from .base import (
    JSON,
    NO_PARAMS,
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

__all__ = ["RedisClock", "RedisStore"]

log = logging.getLogger("aiohttp_jobs.stores.redis")

_KEYS = (
    "rec",
    "st",
    "due",
    "run",
    "kruns",
    "done",
    "donez",
    "fence",
    "inst",
    "instz",
    "lease",
)
_NKEYS = len(_KEYS)
_BATCH = 500  # commits or heartbeats per script call
# partition, operation, call id ("": not remembered), args, more keys
_Call = tuple[int, str, str, list[Any], list[str]]
# operation, partition, args, (key whose run log it touches, where its index
# goes in args) or None, its result
_Pending = tuple[str, int, list[str], "tuple[str, int] | None", "asyncio.Future[int]"]
_MAX_BACKOFF = 5.0
_T = TypeVar("_T")


def _script() -> str:
    return (importlib.resources.files(__package__) / "lua" / "store.lua").read_text(
        encoding="utf-8"
    )


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise MissingDependencyError(
            'RedisStore needs the redis library: pip install "aiohttp-jobs[redis]"'
        ) from exc
    return redis


_DEFAULTS: dict[str, Any] = {
    "namespace": "aiohttp_jobs",
    "partitions": 1,
    "pool_size": 32,
    "pool_timeout": 10.0,
    "socket_timeout": 5.0,
    "retry_for": 10.0,
    "server_clock": False,
    "poll_interval": 1.0,
    "cluster": False,
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _url_options(url: str) -> tuple[str, dict[str, Any]]:
    """Take the store's own options out of *url*'s query
    (``redis://host/0?partitions=4&cluster=true``); the rest is redis-py's."""
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    found: dict[str, Any] = {}
    for name, text in parse_qsl(parts.query, keep_blank_values=True):
        default = _DEFAULTS.get(name)
        if default is None:
            kept.append((name, text))
            continue
        kind = type(default)
        try:
            if kind is bool:
                if text.lower() not in _TRUE + _FALSE:
                    raise ValueError(text)
                found[name] = text.lower() in _TRUE
            else:
                found[name] = kind(text)
        except ValueError:
            raise ConfigError(
                f"{name} in the store URL must be {kind.__name__}, got {text!r}"
            ) from None
    return urlunsplit(parts._replace(query=urlencode(kept))), found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class RedisStore(TaskStore):
    """A :class:`~.base.TaskStore` in Redis, shared by many processes and hosts.

    *url_or_client*: a ``redis://host:port/db``, ``rediss://`` (TLS) or
    ``unix:///path/to/redis.sock?db=0`` URL, or a ``redis.asyncio.Redis`` /
    ``redis.asyncio.RedisCluster`` client (not closed by :meth:`close`).
    *namespace*: several applications share one Redis under different
    namespaces. *partitions*: how many hash tags the namespace's records are
    spread over (a Redis Cluster puts them on different shards).
    *pool_size*: connections at most; callers wait up to *pool_timeout* seconds
    for a free one. *socket_timeout*: seconds a command may take before it
    counts as failed; *retry_for*: seconds a call keeps trying again while
    the server is unreachable (restarting, failing over) before it raises.
    *server_clock*: :attr:`clock` follows the Redis server's clock
    (``TIME``), so hosts with skewed clocks agree.
    *poll_interval*: seconds between checks of :meth:`next_due` while
    subscribed (pub/sub loses messages while disconnected). *cluster*: the URL
    names a node of a Redis Cluster.

    The same options may be given in the URL's query
    (``redis://host:6379/0?partitions=4&cluster=true``); keywords given
    explicitly win.
    """

    def __init__(
        self,
        url_or_client: Any,
        *,
        namespace: str = "aiohttp_jobs",
        partitions: int = 1,
        pool_size: int = 32,
        pool_timeout: float = 10.0,
        socket_timeout: float = 5.0,
        retry_for: float = 10.0,
        server_clock: bool = False,
        poll_interval: float = 1.0,
        cluster: bool = False,
    ) -> None:
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError(
                    "url_or_client must be a redis://, rediss:// or unix:// URL "
                    f"or a redis.asyncio client, got {url_or_client!r}"
                )
            url_or_client, query = _url_options(url_or_client)
            given: dict[str, Any] = {
                "namespace": namespace,
                "partitions": partitions,
                "pool_size": pool_size,
                "pool_timeout": pool_timeout,
                "socket_timeout": socket_timeout,
                "retry_for": retry_for,
                "server_clock": server_clock,
                "poll_interval": poll_interval,
                "cluster": cluster,
            }
            for name, value in query.items():  # keywords other than defaults win
                if given[name] == _DEFAULTS[name]:
                    given[name] = value
            namespace = given["namespace"]
            partitions = given["partitions"]
            pool_size = given["pool_size"]
            pool_timeout = given["pool_timeout"]
            socket_timeout = given["socket_timeout"]
            retry_for = given["retry_for"]
            server_clock = given["server_clock"]
            poll_interval = given["poll_interval"]
            cluster = given["cluster"]
        elif not hasattr(url_or_client, "evalsha"):
            raise ConfigTypeError(
                "url_or_client must be a redis://, rediss:// or unix:// URL or a "
                f"redis.asyncio client, got {url_or_client!r} "
                f"({type(url_or_client).__name__})"
            )
        if not isinstance(namespace, str) or not namespace:
            raise ConfigTypeError(
                f"namespace must be a non-empty string, got {namespace!r}"
            )
        if "{" in namespace or "}" in namespace:
            raise ConfigError(
                f"namespace must not contain braces (hash tags), got {namespace!r}"
            )
        self._url_or_client = url_or_client
        self.namespace = namespace
        self.partitions = check_count("partitions", partitions, minimum=1)
        self._pool_size = check_count("pool_size", pool_size, minimum=1)
        self._pool_timeout = check_duration("pool_timeout", pool_timeout)
        self._socket_timeout = check_duration(
            "socket_timeout", socket_timeout, positive=True
        )
        self._retry_for = check_duration("retry_for", retry_for)
        self._poll_interval = check_duration(
            "poll_interval", poll_interval, positive=True
        )
        if not isinstance(server_clock, bool):
            raise ConfigTypeError(f"server_clock must be a bool, got {server_clock!r}")
        if not isinstance(cluster, bool):
            raise ConfigTypeError(f"cluster must be a bool, got {cluster!r}")
        self._cluster = cluster or type(url_or_client).__name__ == "RedisCluster"
        self._keys = [
            [f"{{{namespace}:{p}}}:{name}" for name in _KEYS]
            for p in range(self.partitions)
        ]
        self._channel = f"{namespace}:wake"
        self._uid = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._turn = int(self._uid[:4], 16) % self.partitions
        self._client: Any = None
        self._unreachable: tuple[type[Exception], ...] = ()
        self._own_client = isinstance(url_or_client, str)
        self._redis: Any = None
        self._sha = ""
        self._source = ""
        self._opened = 0
        self._subscribers = _Subscribers(log)
        self._listener: asyncio.Task[None] | None = None
        self._defs: dict[str, tuple[str, Any, Any]] = {}
        self._pending: list[_Pending] = []
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()
        self.clock: RedisClock | None = RedisClock(self) if server_clock else None
        """A clock following the Redis server's (``server_clock=True``)."""

    def __repr__(self) -> str:
        state = "open" if self._opened else "closed"
        return (
            f"<RedisStore {state} namespace={self.namespace!r} "
            f"partitions={self.partitions}>"
        )

    # -- lifecycle ----------------------------------------------------------------

    @property
    def opened(self) -> bool:
        """Whether an :meth:`open` is not matched by a :meth:`close` yet."""
        return self._opened > 0

    async def open(self) -> None:
        """Connect (first open only), load the script, check the server's
        settings, sample its clock if asked, and start listening if subscribed."""
        self._opened += 1
        if self._opened > 1:
            return
        try:
            await self._connect()
        except BaseException:
            self._opened -= 1
            await self._disconnect()
            raise

    async def _connect(self) -> None:
        redis = self._redis = _import_redis()
        self._unreachable = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
        )
        if not self._source:
            self._source = _script()
        target = self._url_or_client
        if isinstance(target, str):
            # one quick retry replaces a pooled connection the server closed;
            # longer outages are waited out by _retrying()
            retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 1)
            common: dict[str, Any] = {
                "socket_timeout": self._socket_timeout,
                "socket_connect_timeout": self._socket_timeout,
                "retry": retry,
                "decode_responses": True,
                "client_name": f"aiohttp_jobs.{self._uid}",
            }
            if self._cluster:
                self._client = redis.asyncio.RedisCluster.from_url(
                    target, max_connections=self._pool_size, **common
                )
                await self._client.initialize()
            else:
                pool = redis.asyncio.BlockingConnectionPool.from_url(
                    target,
                    max_connections=self._pool_size,
                    timeout=self._pool_timeout,
                    **common,
                )
                self._client = redis.asyncio.Redis.from_pool(pool)
        else:
            self._client = target
        self._sha = await self._retrying(
            partial(self._client.script_load, self._source)
        )
        await self._check_server()
        if self.clock is not None:
            await self.clock.start()
        if self._subscribers:
            self._start_listener()

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened -= 1
        if self._opened:
            return
        await self._disconnect()

    async def _disconnect(self) -> None:
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            # redis-py may swallow a cancellation that arrives inside a read
            # with a timeout: cancel until the task ends.
            while not listener.done():
                listener.cancel()
                await asyncio.wait({listener}, timeout=0.1)
            with contextlib.suppress(BaseException):
                listener.result()
        if self.clock is not None:
            await self.clock.stop()
        client, self._client = self._client, None
        if client is not None and self._own_client:
            await client.aclose()

    async def _check_server(self) -> None:
        """Warn when the server may evict our keys or keeps nothing on disk."""
        client = self._client
        config: dict[str, str] = {}
        try:
            for name in ("maxmemory-policy", "appendonly", "save"):
                reply = await client.config_get(name)
                config.update({_text(k): _text(v) for k, v in reply.items()})
        except Exception as exc:  # CONFIG may be disabled on managed services
            log.debug("cannot read the Redis configuration: %r", exc)
            return
        policy = config.get("maxmemory-policy", "noeviction")
        if policy != "noeviction" and not policy.startswith("volatile-"):
            log.warning(
                "Redis maxmemory-policy is %r: under memory pressure the server may "
                "evict task records and leases (namespace %r); use noeviction",
                policy,
                self.namespace,
            )
        if config.get("appendonly") == "no" and not config.get("save"):
            log.warning(
                "Redis keeps nothing on disk (appendonly no, no save points): a "
                "restart loses every task record and run (namespace %r)",
                self.namespace,
            )

    # -- calling the script ---------------------------------------------------------

    def _partition(self, key: str) -> int:
        if self.partitions == 1:
            return 0
        return zlib.crc32(key.encode()) % self.partitions

    def _require(self) -> Any:
        if self._client is None:
            raise RuntimeError(f"{self!r} is not open: call open() first")
        return self._client

    def _log_key(self, p: int, key: str) -> str:
        return f"{{{self.namespace}:{p}}}:log:{key}"

    def _argv(
        self, p: int, op: str, call: str, args: Sequence[Any], extra: Sequence[str]
    ) -> list[Any]:
        return [
            _NKEYS + len(extra),
            *self._keys[p],
            *extra,
            op,
            self._channel,
            self._uid,
            call,
            *args,
        ]

    def _call_id(self) -> str:
        """Names one script call: repeated after a lost reply, it is answered
        as the first time instead of being applied twice."""
        return f"{self._uid}.{next(self._ids)}"

    async def _retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """``await attempt()``, tried again while the server is unreachable
        (restarting, failing over, paused), for up to ``retry_for`` seconds.

        Every call may be repeated: the ones that change something are
        recognised by their call id, or change the same thing twice.
        """
        errors = self._unreachable
        delay = 0.05
        deadline: float | None = None
        while True:
            try:
                return await attempt()
            except errors as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._retry_for
                if now + delay > deadline:
                    raise
                log.debug("Redis store %r: %r; trying again", self.namespace, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _eval(
        self,
        p: int,
        op: str,
        *args: str | int,
        call: str = "",
        extra: Sequence[str] = (),
    ) -> Any:
        argv = self._argv(p, op, call, args, extra)
        return await self._retrying(lambda: self._evalsha(argv))

    async def _evalsha(self, argv: list[Any]) -> Any:
        client = self._require()
        try:
            return await client.evalsha(self._sha, *argv)
        except self._redis.exceptions.NoScriptError:
            # the server restarted or failed over: its script cache is empty
            log.info("Redis lost the task store's script; loading it again")
            self._sha = await client.script_load(self._source)
            return await client.evalsha(self._sha, *argv)

    async def _eval_many(self, calls: Sequence[_Call]) -> list[Any]:
        """One script call per item; one round trip on a single server."""
        if len(calls) == 1:
            p, op, call, args, extra = calls[0]
            return [await self._eval(p, op, *args, call=call, extra=extra)]
        if self._cluster:
            return list(
                await asyncio.gather(
                    *(
                        self._eval(p, op, *a, call=c, extra=x)
                        for p, op, c, a, x in calls
                    )
                )
            )
        return await self._retrying(lambda: self._pipeline(calls))

    async def _pipeline(self, calls: Sequence[_Call]) -> list[Any]:
        client = self._require()
        pipe = client.pipeline(transaction=False)
        for p, op, call, args, extra in calls:
            pipe.evalsha(self._sha, *self._argv(p, op, call, args, extra))
        results = list(await pipe.execute(raise_on_error=False))
        for i, result in enumerate(results):
            if isinstance(result, self._redis.exceptions.NoScriptError):
                p, op, call, args, extra = calls[i]
                argv = self._argv(p, op, call, args, extra)
                results[i] = await self._evalsha(argv)
            elif isinstance(result, Exception):
                raise result
        return results

    # -- notifications ----------------------------------------------------------------

    def subscribe(self, callback: Callable[[], object]) -> Unsubscribe:
        """Callbacks hear of this store's own changes at once, and of other
        processes' changes through Redis pub/sub (or the fallback poll)."""
        unsubscribe = self._subscribers.add(callback)
        if self._opened and self._listener is None:
            self._start_listener()

        return unsubscribe

    def _start_listener(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(), name=f"RedisStore {self.namespace} listener"
        )

    def _pubsub(self) -> Any:
        if self._cluster:
            node = self._client.get_default_node()
            conn = self._redis.asyncio.Redis(
                host=node.host,
                port=node.port,
                socket_timeout=self._socket_timeout,
                decode_responses=True,
            )
            return conn, conn.pubsub()
        return None, self._client.pubsub()

    async def _listen(self) -> None:
        backoff = 0.1
        last_due: float | str | None = "unknown"
        while self._listener is asyncio.current_task():
            conn, pubsub = self._pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if backoff > 0.1:
                    log.info("Redis store %r: listening again", self.namespace)
                    self._subscribers.notify()  # messages may have been lost meanwhile
                backoff = 0.1
                polled = time.monotonic()
                while self._listener is asyncio.current_task():
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self._poll_interval
                    )
                    if message is not None and _text(message["data"]) != self._uid:
                        self._subscribers.notify()
                    if time.monotonic() - polled >= self._poll_interval:
                        polled = time.monotonic()
                        due = await self.next_due()
                        if due != last_due:
                            last_due = due
                            self._subscribers.notify()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "Redis store %r: lost the wake-up channel (%s: %s); "
                    "reconnecting in %.1f s",
                    self.namespace,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.aclose()

    # -- records ----------------------------------------------------------------------

    def _record(self, key: str, definition: str, state: str) -> TaskRecord:
        cached = self._defs.get(definition)
        if cached is None:
            data = json.loads(definition)
            params = data.get("p")
            cached = (
                data["t"],
                data.get("s"),
                MappingProxyType(params) if params else NO_PARAMS,
            )
            if len(self._defs) > 10000:
                self._defs.clear()
            self._defs[definition] = cached
        task, schedule, params = cached
        enabled, max_running, revision, fire, backlog, _ = state.split("|", 5)
        fire_ms = int(fire)
        return TaskRecord(
            key,
            task,
            dict(schedule) if schedule is not None else None,
            params,
            enabled == "1",
            fire_ms / 1000 if fire_ms >= 0 else None,
            int(backlog),
            int(max_running),
            int(revision),
        )

    async def save(self, record: TaskRecord) -> None:
        if not isinstance(record, TaskRecord):
            raise ConfigTypeError(
                f"record must be a TaskRecord, got {record!r} ({type(record).__name__})"
            )
        definition: dict[str, Any] = {"t": record.task}
        if record.schedule is not None:
            definition["s"] = record.schedule
        if record.params:
            definition["p"] = dict(record.params)
        fire = -1 if record.fire_at is None else _ms(record.fire_at)
        await self._eval(
            self._partition(record.key),
            "save",
            record.key,
            json.dumps(definition, separators=(",", ":"), sort_keys=True),
            1 if record.enabled else 0,
            record.max_running,
            record.revision,
            fire,
            record.backlog,
        )
        if self._subscribers:
            self._subscribers.notify()

    async def get(self, key: str) -> TaskRecord | None:
        definition, state = await self._eval(self._partition(key), "get", key)
        if not definition or not state:
            return None
        return self._record(key, _text(definition), _text(state))

    async def delete(self, key: str, *, claim: Claim | None = None) -> bool:
        if claim is not None:
            if claim.record.key != key:
                return False
            # a once-off run finishing: batched with the commits of this turn
            item = [key, claim.run_id, claim.token, "0"]
            return bool(await self._queue("cdelete", key, item, (key, 3)))
        p = self._partition(key)
        extra = (self._log_key(p, key),)
        return bool(await self._eval(p, "delete", key, extra=extra))

    async def records(self, task: str | None = None) -> list[TaskRecord]:
        """In pieces (HSCAN): a namespace of a million records does not block
        the server for the other clients while it is read."""
        found: dict[str, TaskRecord] = {}
        for keys in self._keys:
            part = await self._retrying(partial(self._scan, keys[0], keys[1]))
            found.update(part)
        return [
            found[key]
            for key in sorted(found)
            if task is None or found[key].task == task
        ]

    async def _scan(self, rec: str, st: str) -> dict[str, TaskRecord]:
        client = self._require()
        found: dict[str, TaskRecord] = {}
        cursor = 0
        while True:
            cursor, chunk = await client.hscan(rec, cursor, count=1000)
            if chunk:
                names = list(chunk)
                states = await client.hmget(st, names)
                for name, state in zip(names, states, strict=True):
                    if state is not None:
                        key = _text(name)
                        found[key] = self._record(key, _text(chunk[name]), _text(state))
            if not int(cursor):
                return found

    async def add_run(
        self, key: str, *, fire_at: float, payload: dict[str, JSON] | None = None
    ) -> str:
        if type(fire_at) is not float or not 0.0 <= fire_at <= MAX_TIMESTAMP:
            fire_at = check_timestamp("fire_at", fire_at)
        data = "" if payload is None else "j" + json.dumps(payload)
        run_id = _text(
            await self._eval(
                self._partition(key),
                "add_run",
                key,
                _ms(fire_at),
                data,
                call=self._call_id(),
            )
        )
        if not run_id:
            raise LookupError(f"no task record {key!r}")
        if self._subscribers:
            self._subscribers.notify()
        return run_id

    # -- claiming ---------------------------------------------------------------------

    async def next_due(self) -> float | None:
        heads = await self._read_dues(
            lambda client, due: client.zrange(due, 0, 0, withscores=True)
        )
        scores = [h[0][1] for h in heads if h]
        return min(scores) / 1000 if scores else None

    async def _read_dues(self, read: Callable[[Any, str], Any]) -> list[Any]:
        """``read(client, due)`` for the due set of every partition, tried
        again while the server is unreachable: in one round trip on a single
        server (a pipeline, where *read* queues its command), as concurrent
        calls on a cluster, whose partitions live on different nodes."""
        client = self._require()
        keys = [k[2] for k in self._keys]

        async def each() -> list[Any]:
            if len(keys) == 1:
                return [await read(client, keys[0])]
            if self._cluster:
                return list(await asyncio.gather(*(read(client, k) for k in keys)))
            pipe = client.pipeline(transaction=False)
            for k in keys:
                read(pipe, k)
            return list(await pipe.execute())

        return await self._retrying(each)

    async def acquire(
        self, *, now: float, owner: str, lease_duration: float, limit: int
    ) -> list[Claim]:
        if type(limit) is not int or limit < 1:
            check_count("limit", limit, minimum=1)
        now_ms = _ms(now)
        lease_ms = _ms(lease_duration)
        prefix = f"{owner}:{self._uid}.{next(self._ids)}:"
        if self.partitions == 1:  # nothing to share: no counting round trip
            args = [now_ms, prefix, lease_ms, limit]
            calls: list[_Call] = [(0, "acquire", self._call_id(), args, [])]
        else:
            calls = self._plan(
                await self._peek(now_ms), limit, now_ms, prefix, lease_ms
            )
        parts = [call[0] for call in calls]
        replies = await self._eval_many(calls) if calls else []
        expires = (now_ms + lease_ms) / 1000
        claims: list[Claim] = []
        dues: list[float] = []
        record = self._record
        n = self.partitions
        for p, reply in zip(parts, replies, strict=True):
            for (
                run_id,
                key,
                fire,
                attempt,
                token,
                fromc,
                payload,
                definition,
                state,
                fence,
                cancelled,
                due,
            ) in json.loads(reply):
                claim = Claim(  # positional: this is the hot path
                    run_id,
                    record(key, definition, state),
                    int(fire) / 1000,
                    int(attempt),
                    token,
                    expires,
                    fromc == "1",
                    json.loads(payload[1:]) if payload else None,
                    # per partition counters, unique in the store (rule 8)
                    int(fence) * n + p,
                    cancelled == "1",
                )
                if len(replies) > 1:
                    dues.append(float(due))
                claims.append(claim)
        if len(replies) > 1:  # earliest first across partitions too
            order = sorted(range(len(claims)), key=dues.__getitem__)
            claims = [claims[i] for i in order]
        return claims

    async def _peek(self, now_ms: int) -> list[int]:
        """How many runs are due in each partition (ZCOUNT: no entries are
        sent back), for sharing a batch between them."""
        counts = await self._read_dues(
            lambda client, due: client.zcount(due, "-inf", now_ms)
        )
        return [int(count) for count in counts]

    def _plan(
        self, due: list[int], limit: int, now_ms: int, prefix: str, lease: int
    ) -> list[_Call]:
        """Share *limit* between the partitions with runs *due*, in turn.

        Dealt one at a time round the partitions, from where the previous
        batch stopped: successive batches draw from every partition in
        rotation, and a partition with more runs due (or older ones) than the
        others takes no more than its turn while they have runs due too.
        Each partition's share is its earliest runs.
        """
        n = self.partitions
        # the partitions with runs due, in turn from where the previous batch
        # stopped; one that has had all its runs dealt leaves the ring
        ring = deque(p for p in ((self._turn + i) % n for i in range(n)) if due[p])
        share = [0] * n
        for _ in range(min(limit, sum(due))):  # as many as the claims to read
            p = ring.popleft()
            share[p] += 1
            if share[p] < due[p]:
                ring.append(p)
            self._turn = (p + 1) % n
        return [
            (
                p,
                "acquire",
                self._call_id(),
                [now_ms, f"{prefix}{p}.", lease, share[p]],
                [],
            )
            for p in range(n)
            if share[p]
        ]

    async def extend(self, claim: Claim, *, until: float) -> Lease:
        lease = await self._queue(
            "extend",
            claim.record.key,
            [claim.run_id, claim.token, str(_ms(until))],
            None,
        )
        if lease and self._subscribers:
            self._subscribers.notify()
        return lease

    async def commit(
        self,
        claim: Claim,
        *,
        cursor: Cursor | None = None,
        retry_at: float | None = None,
        keep_lease: bool = False,
        log: RunLogEntry | None = None,
    ) -> Lease:
        if cursor is None:
            position, backlog = "", "0"
        else:
            position = "-1" if cursor.fire_at is None else str(_ms(cursor.fire_at))
            backlog = str(cursor.backlog)
        key = claim.record.key
        lease = await self._queue(
            "commit",
            key,
            [
                claim.run_id,
                claim.token,
                position,
                backlog,
                "" if retry_at is None else str(_ms(retry_at)),
                "1" if keep_lease else "0",
                "0",  # the index of the log key: set when the batch is sent
                "" if log is None else _encode_entry(log),
            ],
            None if log is None else (key, 6),
        )
        if lease and self._subscribers:
            self._subscribers.notify()
        return lease

    async def cancel(self, run_id: str, *, now: float) -> bool:
        if not isinstance(run_id, str):
            raise ConfigTypeError(f"run_id must be a string, got {run_id!r}")
        if type(now) is not float or not 0.0 <= now <= MAX_TIMESTAMP:
            now = check_timestamp("now", now)
        key = run_id.rpartition("@")[0]
        if not key:
            return False
        found = bool(await self._eval(self._partition(key), "cancel", run_id, _ms(now)))
        if found and self._subscribers:
            self._subscribers.notify()
        return found

    # -- instances and run log ------------------------------------------------------

    async def register_instance(self, info: InstanceInfo, *, ttl: float) -> None:
        if not isinstance(info, InstanceInfo):
            raise ConfigTypeError(
                f"info must be an InstanceInfo, got {info!r} ({type(info).__name__})"
            )
        ttl = check_duration("ttl", ttl, positive=True)
        await self._eval(
            0,
            "register",
            info.instance_id,
            json.dumps(list(info)),
            _ms(info.last_seen + ttl),
        )

    async def deregister_instance(self, instance_id: str) -> None:
        await self._eval(0, "deregister", instance_id)

    async def instances(self, *, now: float) -> list[InstanceInfo]:
        found = [
            InstanceInfo(*json.loads(_text(info)))
            for info in await self._eval(0, "instances", _ms(now))
        ]
        found.sort(key=lambda info: info.instance_id)
        return found

    async def leases(self, *, now: float) -> list[LeaseInfo]:
        """One script call per partition, reading the partition's sorted set
        of lease expiries from *now* on (the runs leased, not the queued)."""
        if type(now) is not float or not 0.0 <= now <= MAX_TIMESTAMP:
            now = check_timestamp("now", now)
        now_ms = _ms(now)
        calls: list[_Call] = [
            (p, "leases", "", [now_ms], []) for p in range(self.partitions)
        ]
        found: list[LeaseInfo] = []
        for reply in await self._eval_many(calls):
            for (
                run_id,
                key,
                task,
                token,
                attempt,
                fire,
                expires,
                cancelled,
            ) in json.loads(reply):
                found.append(
                    LeaseInfo(
                        run_id,
                        key,
                        task,
                        # "<owner>:<store>.<acquire>:[<partition>.]<n>"
                        token.rsplit(":", 2)[0],
                        int(attempt),
                        int(fire) / 1000,
                        int(expires) / 1000,
                        cancelled == "1",
                    )
                )
        found.sort(key=lambda lease: (lease.key, lease.run_id))
        return found

    async def log_run(self, entry: RunLogEntry) -> None:
        if not isinstance(entry, RunLogEntry):
            raise ConfigTypeError(
                f"entry must be a RunLogEntry, got {entry!r} ({type(entry).__name__})"
            )
        p = self._partition(entry.key)
        await self._eval(
            p,
            "log",
            entry.key,
            _encode_entry(entry),
            extra=(self._log_key(p, entry.key),),
        )

    async def recent_runs(
        self, key: str, *, limit: int = RUN_LOG_SIZE
    ) -> list[RunLogEntry]:
        if type(limit) is not int or limit < 1:
            check_count("limit", limit, minimum=1)
        client = self._require()
        log_key = self._log_key(self._partition(key), key)
        entries = await self._retrying(
            partial(client.lrange, log_key, 0, min(limit, RUN_LOG_SIZE) - 1)
        )
        return [RunLogEntry(*json.loads(_text(entry))) for entry in entries]

    async def server_time(self) -> float | None:
        """The Redis server's clock (``TIME``), in POSIX seconds."""
        seconds, micros = await self._retrying(self._require().time)
        return int(seconds) + int(micros) / 1e6

    # -- batching ---------------------------------------------------------------------

    async def _queue(
        self, op: str, key: str, item: list[str], log_of: tuple[str, int] | None
    ) -> Lease:
        """Send *item* with the others of this loop turn; its result."""
        self._require()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((op, self._partition(key), item, log_of, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return Lease(await future)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        task = asyncio.get_running_loop().create_task(self._send(pending))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, pending: list[_Pending]) -> None:
        groups: dict[tuple[str, int], list[_Pending]] = {}
        for entry in pending:
            groups.setdefault((entry[0], entry[1]), []).append(entry)
        calls: list[_Call] = []
        waiting: list[list[asyncio.Future[int]]] = []
        for (op, p), items in groups.items():
            for start in range(0, len(items), _BATCH):
                batch: list[list[str]] = []
                extra: list[str] = []
                for _, _, item, log_of, _ in items[start : start + _BATCH]:
                    if log_of is not None:
                        extra.append(self._log_key(p, log_of[0]))
                        item[log_of[1]] = str(_NKEYS + len(extra))
                    batch.append(item)
                call = "" if op == "extend" else self._call_id()
                args = [json.dumps(batch, separators=(",", ":"))]
                calls.append((p, op, call, args, extra))
                waiting.append([f for *_, f in items[start : start + _BATCH]])
        try:
            replies = await self._eval_many(calls)
        except BaseException as exc:
            for futures in waiting:
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for futures, reply in zip(waiting, replies, strict=True):
            for future, result in zip(futures, json.loads(reply), strict=True):
                if not future.done():
                    future.set_result(int(result))


def _encode_entry(entry: RunLogEntry) -> str:
    return json.dumps(list(entry), separators=(",", ":"))


class RedisClock:
    """A :class:`~aiohttp_jobs.Clock` that follows the Redis server's clock.

    It samples ``TIME`` (corrected by half the round trip, the best of a few
    samples) when the store opens and every *resync* seconds, and interpolates
    with the monotonic clock in between, so instances on hosts whose clocks
    disagree agree on what is due. Its time never goes backwards.
    """

    def __init__(self, store: RedisStore, *, resync: float = 30.0) -> None:
        self._store = store
        self._resync = resync
        self._offset = time.time() - time.monotonic()
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RedisClock skew={self.skew:+.4f}s>"

    @property
    def skew(self) -> float:
        """Seconds the server's clock is ahead of this host's (negative: behind)."""
        return self._offset - (time.time() - time.monotonic())

    async def sample(self, samples: int = 3) -> None:
        """Measure the server's clock now (the sample with the least round trip)."""
        best: tuple[float, float] | None = None
        for _ in range(samples):
            sent = time.monotonic()
            server = await self._store.server_time()
            received = time.monotonic()
            assert server is not None
            rtt = received - sent
            offset = server + rtt / 2 - received
            if best is None or rtt < best[0]:
                best = (rtt, offset)
        assert best is not None
        self._offset = best[1]

    async def start(self) -> None:
        await self.sample()
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._resync)
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot sample the Redis server's clock: %s", exc)

    def time(self) -> float:
        now = time.monotonic() + self._offset
        if now < self._last:
            return self._last
        self._last = now
        return now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def call_at(self, when: float, callback: Callable[[], object]) -> DeadlineTimer:
        if type(when) is not float or not 0.0 <= when <= MAX_TIMESTAMP:
            when = check_timestamp("when", when)
        return DeadlineTimer(self.time, when, callback)

"""Real Redis servers for tests: one ``redis-server`` per need, never the system's.

* :class:`RedisServer`: a ``redis-server`` on a free port of 127.0.0.1 (and a
  unix socket) in its own temporary directory, with ``stop()``, ``kill()``,
  ``restart()`` (same port and directory: an AOF or RDB file is read again),
  ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT: the server is unreachable
  but keeps its data) and ``close()`` (kill and remove the directory).
* :class:`RedisCluster`: three such servers with ``cluster-enabled yes``, the
  16,384 slots split between them (``redis-cli --cluster create``).
* Fixtures (import them into a test module or a ``conftest.py``):
  ``redis_server`` (one per test process, i.e. per xdist worker, shared with
  the contract suite's ``redis`` backend; share it through a fresh namespace
  per test, see :func:`fresh_namespace`), ``redis_factory``
  (``redis_factory(appendonly=True, config={...})``: servers of one test, for
  faults), ``redis_cluster`` (one per test process, started on first use,
  shared with the ``redis-cluster`` backend).

A test's own server stops with the test (fixture finalizer); the shared ones
at interpreter exit (``atexit``); and every one, on Linux, when the process
that started it dies (``PR_SET_PDEATHSIG``), so a crashed or killed test run
leaves no server behind. With ``CI`` set in the environment a missing
``redis-server`` fails the test; otherwise it skips it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = os.environ.get("REDIS_CLI", "/usr/bin/redis-cli")

_live: set[RedisServer] = set()
_names = itertools.count()


def require_redis() -> None:
    """Skip the test when no ``redis-server`` is installed (fail it under CI)."""
    if os.path.exists(REDIS_SERVER) and os.access(REDIS_SERVER, os.X_OK):
        return
    message = f"{REDIS_SERVER} not found (install redis-server)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fresh_namespace(prefix: str = "t") -> str:
    """A namespace no other test uses, so tests can share one server."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RedisServerError(RuntimeError):
    """The server did not start (its log is in the message)."""


class RedisServer:
    """One ``redis-server`` process of a test. ``start()`` before use.

    *appendonly*: write an AOF (with ``appendfsync always`` unless *config* says
    otherwise, so a ``kill()`` loses nothing acknowledged). *config*: more
    ``redis.conf`` directives (name -> value). RDB snapshots are off unless
    *config* sets ``save``.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        config: Mapping[str, str] | None = None,
        port: int | None = None,
        directory: Path | None = None,
    ) -> None:
        self.appendonly = appendonly
        self.config = dict(config or {})
        self.port = port or 0
        self._own_dir = directory is None
        self.dir = Path(
            directory
            if directory is not None
            else tempfile.mkdtemp(prefix=f"ajredis{next(_names)}-")
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {state} 127.0.0.1:{self.port} dir={self.dir}>"

    # -- addresses ------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.dir / "redis.sock"

    @property
    def unix_url(self) -> str:
        """``unix://<dir>/redis.sock?db=0``."""
        return f"unix://{self.socket_path}?db=0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle --------------------------------------------------------------

    def _conf(self) -> str:
        lines = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(self.dir),
            "unixsocket": str(self.socket_path),
            "unixsocketperm": "700",
            "save": '""',
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": "always",
            "protected-mode": "no",
            "daemonize": "no",
            "logfile": '""',
            "loglevel": "notice",
            "databases": "16",
        }
        lines.update(self.config)
        return "".join(f"{k} {v}\n" for k, v in lines.items())

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server (on a free port unless one was given); ``self``."""
        if self.running:
            return self
        require_redis()
        chosen = self.port
        for _ in range(5):
            if not chosen:
                self.port = free_port()
            if self._spawn(timeout):
                return self
            if chosen:  # a fixed port (restart): no second try elsewhere
                break
        log = self.log_path.read_text(errors="replace")[-2000:]
        raise RedisServerError(f"redis-server did not start on {self.port}:\n{log}")

    def _spawn(self, timeout: float) -> bool:
        conf = self.dir / "redis.conf"
        conf.write_text(self._conf())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                preexec_fn=_die_with_parent,
            )
        _live.add(self)
        self.paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._ready():
                return True
            time.sleep(0.02)
        self.kill()
        return False

    def _ready(self) -> bool:
        try:
            reply = self.command("PING", timeout=0.5)
        except OSError:
            return False
        # while loading an AOF the server answers -LOADING
        return reply == "+PONG"

    def command(self, *args: str, timeout: float = 5.0) -> str:
        """Send one command over a new connection; its raw reply's first line
        (``+OK``, ``-ERR ...``, ``:1``, ``$5``...) -- for admin steps only."""
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(("127.0.0.1", self.port), timeout) as sock:
            sock.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return reply.decode(errors="replace").split("\r\n", 1)[0]

    def client(self, **kwargs: Any) -> Any:
        """A new ``redis.asyncio.Redis`` client of this server (close it)."""
        import redis.asyncio

        return redis.asyncio.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (SIGTERM: the AOF is flushed, a configured RDB
        saved); SIGKILL if it takes longer than *timeout*."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self.proc = None
            return
        if self.paused:
            self.resume()
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash. What was not written to disk is gone."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.proc = None
        self.paused = False

    def restart(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop (or *kill*) and start again on the same port and directory."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP: connections hang, nothing answers, nothing is lost."""
        if self.proc is not None and not self.paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.proc is not None and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def close(self) -> None:
        """Kill the server and remove its directory (if this object made it)."""
        if self.paused and self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
        self.kill()
        _live.discard(self)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisCluster:
    """A Redis Cluster of *nodes* primaries (no replicas) on 127.0.0.1."""

    def __init__(self, nodes: int = 3, *, config: Mapping[str, str] | None = None):
        self.nodes = [
            RedisServer(
                config={
                    "cluster-enabled": "yes",
                    "cluster-config-file": "nodes.conf",
                    "cluster-node-timeout": "5000",
                    "cluster-require-full-coverage": "yes",
                    **(config or {}),
                }
            )
            for _ in range(nodes)
        ]

    @property
    def url(self) -> str:
        """``redis://`` URL of the first node (a cluster client finds the rest)."""
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.nodes]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        for node in self.nodes:
            # the cluster bus listens on port + 10000: pick ports where both are free
            for _ in range(20):
                node.port = free_port()
                if node.port + 10000 < 65536 and _is_free(node.port + 10000):
                    break
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._state_ok(n) for n in self.nodes):
                return self
            time.sleep(0.05)
        raise RedisServerError("the cluster did not reach cluster_state:ok")

    @staticmethod
    def _state_ok(node: RedisServer) -> bool:
        out = subprocess.run(
            [REDIS_CLI, "-p", str(node.port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        return "cluster_state:ok" in out

    def client(self, **kwargs: Any) -> Any:
        """A new ``redis.asyncio.RedisCluster`` client (close it)."""
        import redis.asyncio

        return redis.asyncio.RedisCluster(
            host="127.0.0.1", port=self.nodes[0].port, **kwargs
        )

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@atexit.register
def _close_all() -> None:  # pragma: no cover - only when a test run is cut short
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.close()


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> RedisServer:
    """One ``redis-server`` per test process (per xdist worker), no persistence,
    shared with the contract suite's backend. Tests share it: give each its
    own namespace (:func:`fresh_namespace`). Stopped at exit."""
    return session_server()


@pytest.fixture
def redis_factory() -> Iterator[Any]:
    """``redis_factory(appendonly=..., config=...) -> RedisServer`` (started):
    servers of this test alone, for faults; closed at its end."""
    require_redis()
    servers: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> RedisCluster:
    """A three-node Redis Cluster per test process, started on first use and
    shared with the contract suite's backend; stopped at exit."""
    return session_cluster()


def redis_store_factory(server: RedisServer | RedisCluster, **options: Any) -> Any:
    """``async (tmp_path) -> RedisStore`` (unopened), a fresh namespace each call:
    the shape of the contract suite's BACKENDS factories."""
    from aiohttp_jobs.stores.redis import RedisStore

    async def factory(tmp_path: Path | None = None) -> RedisStore:
        if isinstance(server, RedisCluster):
            options.setdefault("cluster", True)
            if server.nodes[0].running is False:  # pragma: no cover
                raise RedisServerError("the cluster was closed")
        return RedisStore(server.url, namespace=fresh_namespace(), **options)

    return factory


_session: RedisServer | None = None
_session_cluster: RedisCluster | None = None


def session_server() -> RedisServer:
    """This process's shared server (started on first use, stopped at exit)."""
    global _session
    require_redis()
    if _session is None or not _session.running:
        _session = RedisServer().start()
    return _session


def session_cluster() -> RedisCluster:
    """This process's shared three-node cluster (started on first use)."""
    global _session_cluster
    require_redis()
    if _session_cluster is None:
        _session_cluster = RedisCluster(3).start()
    return _session_cluster


async def redis_backend(tmp_path: Path) -> Any:
    """The contract suite's ``BACKENDS["redis"]``: a RedisStore (unopened) in a
    fresh namespace of this process's shared server."""
    return await redis_store_factory(session_server())(tmp_path)


class ReplyDropper:
    """A TCP proxy in front of a server that can lose one reply: armed with
    :meth:`drop_next_reply`, it swallows the next bytes the server sends and
    closes that connection, as a network failure after the server acted would;
    armed with :meth:`drop_reply_to`, the reply to the next request that
    names a command.
    ``async with ReplyDropper(port) as proxy: proxy.url``."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = 0
        self.dropped = 0
        self._armed = False
        self._command = b""
        self._server: Any = None
        self._tasks: set[Any] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def drop_next_reply(self) -> None:
        self._armed = True

    def drop_reply_to(self, command: str) -> None:
        """Lose the reply to the next request (or pipeline) that sends *command*."""
        self._command = command.upper().encode()

    async def __aenter__(self) -> ReplyDropper:
        import asyncio

        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: Any, writer: Any) -> None:
        import asyncio

        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        doomed = False  # the reply on its way on this connection is to be lost

        async def pump(src: Any, dst: Any, replies: bool) -> None:
            nonlocal doomed
            try:
                while data := await src.read(65536):
                    if not replies and self._command and self._command in data.upper():
                        self._command = b""
                        doomed = True
                    if replies and (self._armed or doomed):
                        self._armed = doomed = False
                        self.dropped += 1
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                for w in (writer, up_writer):
                    w.close()

        tasks = [
            asyncio.ensure_future(pump(reader, up_writer, False)),
            asyncio.ensure_future(pump(up_reader, writer, True)),
        ]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.difference_update(tasks)


async def redis_cluster_backend(tmp_path: Path) -> Any:
    """``BACKENDS["redis-cluster"]``: a RedisStore with three partitions on
    this process's three-node Redis Cluster, so the partitions' hash tags land
    on different nodes; a fresh namespace per call."""
    return await redis_store_factory(session_cluster(), partitions=3)(tmp_path)

"""Choosing a store by URL, and keeping the optional libraries optional."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aiohttp_jobs import ConfigError, MissingDependencyError
from aiohttp_jobs.stores import MemoryStore, _url, from_url


def test_memory_urls_give_a_memory_store() -> None:
    assert isinstance(from_url("memory://"), MemoryStore)
    assert isinstance(from_url("MEMORY://", namespace="other"), MemoryStore)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgres://localhost/db", "url='postgres://localhost/db'"),
        ("localhost:6379", "url='localhost:6379'"),
        ("", "url=''"),
        ("memory://x", "takes no path"),
        ("sqlite://", "sqlite:///relative"),
        ("sqlite:///", "sqlite:///relative"),
        ("sqlite://host/file.db", "sqlite:///relative"),
        ("sqlite:///file.db?mode=ro", "sqlite:///relative"),
    ],
)
def test_urls_no_store_understands_are_refused_naming_them(
    url: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match="url") as info:
        from_url(url)
    assert fragment in str(info.value)


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(ConfigError, match="url=b'memory://'"):
        from_url(b"memory://")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="namespace"):
        from_url("memory://", namespace="")
    with pytest.raises(ConfigError, match=r"no options, got \['pool'\]"):
        from_url("memory://", pool=3)


class _Fake:
    def __init__(self, target: str, *, namespace: str, **options: object) -> None:
        self.args = (target, namespace, options)


@pytest.mark.parametrize(
    ("url", "module", "target"),
    [
        ("sqlite:///jobs.db", "aiohttp_jobs.stores.sqlite", "jobs.db"),
        ("sqlite:///data/jobs.db", "aiohttp_jobs.stores.sqlite", "data/jobs.db"),
        (
            "sqlite:////var/lib/jobs.db",
            "aiohttp_jobs.stores.sqlite",
            "/var/lib/jobs.db",
        ),
        ("redis://localhost:6379/2", "aiohttp_jobs.stores.redis", None),
        ("rediss://:pw@cache:6380/0", "aiohttp_jobs.stores.redis", None),
        ("unix:///run/redis.sock?db=3", "aiohttp_jobs.stores.redis", None),
    ],
)
def test_backends_get_their_target_namespace_and_options(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, target: str | None
) -> None:
    imported: list[str] = []

    class FakeModule:
        SQLiteStore = _Fake
        RedisStore = _Fake

    def import_module(name: str) -> type[FakeModule]:
        imported.append(name)
        return FakeModule

    monkeypatch.setattr(_url.importlib, "import_module", import_module)
    store = from_url(url, namespace="app", pool_size=5)
    assert imported == [module]
    assert store.args == (target or url, "app", {"pool_size": 5})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "extra"), [("redis://localhost", "redis"), ("sqlite:///x.db", "sqlite")]
)
def test_a_missing_library_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, extra: str
) -> None:
    monkeypatch.setattr(_url.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=rf"aiohttp-jobs\[{extra}\]"):
        from_url(url)
    with pytest.raises(ImportError):  # catchable as the builtin too
        from_url(url)


def test_importing_the_package_loads_neither_redis_nor_aiosqlite() -> None:
    code = (
        "import sys, aiohttp_jobs, aiohttp_jobs.stores, aiohttp_jobs.web\n"
        "aiohttp_jobs.stores.from_url('memory://')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('redis', 'aiosqlite'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_tasks_take_a_store_or_a_store_url() -> None:
    from aiohttp_jobs import Tasks

    assert isinstance(Tasks(store="memory://").store, MemoryStore)
    store = MemoryStore()
    assert Tasks(store=store).store is store
    assert Tasks().store is None
    with pytest.raises(ConfigError, match="url='mongo://x'"):
        Tasks(store="mongo://x")
    with pytest.raises(ConfigError, match="store must be a TaskStore"):
        Tasks(store=42)  # type: ignore[arg-type]


def test_the_real_backends_are_built_from_their_urls(tmp_path: Path) -> None:
    from aiohttp_jobs.stores.redis import RedisStore
    from aiohttp_jobs.stores.sqlite import SQLiteStore

    assert isinstance(from_url(f"sqlite:///{tmp_path}/jobs.db"), SQLiteStore)
    assert isinstance(from_url("redis://127.0.0.1:1/0", namespace="app"), RedisStore)
    assert isinstance(from_url("unix:///run/app/redis.sock?db=2"), RedisStore)

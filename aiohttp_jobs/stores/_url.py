"""Choosing a store by URL: ``from_url("redis://host:6379/0")``.

Backends are imported only when their scheme is asked for, and the library they
need is looked up first, so a missing one fails here with the extra to install
instead of deep inside a connection attempt.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any
from urllib.parse import urlsplit

from .._checks import check_name
from .._errors import ConfigError, MissingDependencyError
from .base import TaskStore
from .memory import MemoryStore

__all__ = ["SCHEMES", "from_url"]

SCHEMES = ("memory", "sqlite", "redis", "rediss", "unix")
"""The URL schemes :func:`from_url` understands."""

# scheme -> (module, class, library it needs, extra that installs it)
_BACKENDS = {
    "sqlite": ("aiohttp_jobs.stores.sqlite", "SQLiteStore", "aiosqlite", "sqlite"),
    "redis": ("aiohttp_jobs.stores.redis", "RedisStore", "redis", "redis"),
}


def require(library: str, extra: str) -> None:
    """Raise :class:`MissingDependencyError` naming *extra* unless *library*
    can be imported."""
    if importlib.util.find_spec(library) is None:
        raise MissingDependencyError(
            f"this store needs the {library!r} library, which is not installed: "
            f'pip install "aiohttp-jobs[{extra}]"'
        )


def from_url(url: str, *, namespace: str = "aiohttp_jobs", **options: Any) -> TaskStore:
    """A new, unopened store for *url*.

    * ``memory://``: a :class:`~aiohttp_jobs.stores.MemoryStore` (one process).
    * ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db``: a
      ``SQLiteStore`` on that file (created if missing).
    * ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS),
      ``unix:///path/to/redis.sock?db=N``: a ``RedisStore``.

    *namespace* separates applications sharing one database or Redis (ignored
    by the memory store); *options* go to the store's constructor. Raises
    :class:`~aiohttp_jobs.ConfigError` for a URL no store understands and
    :class:`~aiohttp_jobs.MissingDependencyError` (naming the extra to install)
    when the store's library is missing.
    """
    if not isinstance(url, str):
        raise ConfigError(
            f"store URL must be a string, got url={url!r} ({type(url).__name__})"
        )
    namespace = check_name("namespace", namespace) or namespace
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ConfigError(
            f"unknown store URL url={url!r}: expected one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    if scheme == "memory":
        if url[len("memory://") :] not in ("", "/"):
            raise ConfigError(f"store URL url={url!r}: memory:// takes no path")
        if options:
            raise ConfigError(
                f"store URL url={url!r}: the memory store takes no options, "
                f"got {sorted(options)}"
            )
        return MemoryStore()
    if scheme == "sqlite":
        parts = urlsplit(url)
        if parts.netloc or parts.query or parts.fragment or len(parts.path) < 2:
            raise ConfigError(
                f"store URL url={url!r}: expected sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db"
            )
        target: str = parts.path[1:]
        module, name, library, extra = _BACKENDS["sqlite"]
    else:
        target = url
        module, name, library, extra = _BACKENDS["redis"]
    require(library, extra)
    cls = getattr(importlib.import_module(module), name)
    store: TaskStore = cls(target, namespace=namespace, **options)
    return store

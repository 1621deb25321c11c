"""Fixtures of the multi-process tests: stores shared by real processes, and
the fault summary printed at the end of the run (from each test's
``record_property("fault", ...)``, so it also works under xdist)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stores.redis_support import RedisServer, require_redis

Figures = Callable[..., dict[str, Any]]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A ``redis-server`` of this test alone, with an AOF fsynced on every write
    (a restart loses nothing acknowledged)."""
    require_redis()
    server = RedisServer(appendonly=True)
    with server:
        yield server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def figures(request: pytest.FixtureRequest, record_property: Any) -> Figures:
    """``figures(fault, **numbers)``: print them and keep them for the summary."""

    def note(fault: str, **numbers: Any) -> dict[str, Any]:
        line = {"fault": fault, **numbers}
        record_property("fault", json.dumps(line))
        print("FAULT", json.dumps(line))  # noqa: T201 - shown with -s / on failure
        return line

    return note


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = []
    for key in ("passed", "failed"):
        for report in terminalreporter.stats.get(key, []):
            for name, value in getattr(report, "user_properties", ()):
                if name == "fault":
                    lines.append(f"{key:6} {value}")
    if lines:
        terminalreporter.section("shared stores under faults")
        for line in lines:
            terminalreporter.write_line(line)

"""CHANGES.md has released sections, newest first, under an Unreleased one, and
the package's version is a development release of the version after the newest
released one."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp_jobs

CHANGES = (Path(__file__).resolve().parents[2] / "CHANGES.md").read_text()
SECTIONS = re.findall(r"^## (.+)$", CHANGES, flags=re.M)
RELEASED = [
    re.fullmatch(r"(\d+)\.(\d+)\.(\d+) \((\d{4}-\d\d-\d\d)\)", title)
    for title in SECTIONS[1:]
]


def test_unreleased_first_then_released_versions_newest_first() -> None:
    assert SECTIONS[0] == "Unreleased"
    assert RELEASED and all(RELEASED), SECTIONS
    versions = [tuple(int(m.group(i)) for i in (1, 2, 3)) for m in RELEASED if m]
    dates = [m.group(4) for m in RELEASED if m]
    assert versions == sorted(versions, reverse=True)
    assert dates == sorted(dates, reverse=True)


def test_version_is_the_next_release_in_development() -> None:
    newest = RELEASED[0]
    assert newest is not None
    major, minor = int(newest.group(1)), int(newest.group(2))
    assert re.fullmatch(rf"{major}\.{minor + 1}\.0\.dev\d+", aiohttp_jobs.__version__)


def test_no_benchmark_figures_in_the_changelog() -> None:
    """Measured figures belong on docs/benchmarks.md, where they are kept current."""
    assert not re.search(r"\d+(\.\d+)?x\b|µs|\bp99\b|/s\b", CHANGES)

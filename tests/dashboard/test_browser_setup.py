"""A fresh machine gets the browser tests' tools from the project's own files."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from tests.dashboard.browser_support import CHROMIUM


def test_the_projects_own_files_install_chromium_and_playwright() -> None:
    """A fresh machine gets both from the project: Playwright from the test
    extra, Debian's Chromium from .ci/run (and the README says so)."""
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert any(
        dependency.startswith("playwright")
        for dependency in project["optional-dependencies"]["test"]
    )
    ci = (root / ".ci" / "run").read_text()
    step = ci.split("if [ ! -x /usr/bin/chromium ]", 1)[1].split("\nfi\n", 1)[0]
    assert "apt-get install -y -qq chromium" in step
    assert ci.index("apt-get install") < ci.index(".venv/bin/nox")  # before the tests
    readme = (root / "README.md").read_text()
    assert "sudo apt-get install -y chromium" in readme.split("## Running the tests")[1]
    assert str(CHROMIUM) == os.environ.get("AIOHTTP_JOBS_CHROMIUM", "/usr/bin/chromium")

"""The README's first command installs the package and starts the example
application, whose dashboard is where the README says it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from example_app.__main__ import command_line
from example_app.app import DASHBOARD_PREFIX

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_first_command_installs_and_starts_the_example_app() -> None:
    first = re.findall(r"^```sh\n(.*?)\n```$", README, flags=re.S | re.M)[0]
    assert first == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e . "
        "&& .venv/bin/python -m example_app"
    )
    before = README.split(first, 1)[0]
    assert "```python" not in before  # nothing to run before it
    assert "fresh machine" in before


def test_it_says_where_the_dashboard_is_and_the_app_serves_it_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    section = README.split("## Try it", 1)[1].split("\n## ", 1)[0]
    assert "http://127.0.0.1:8080/jobs" in section
    for name in ("EXAMPLE_APP_HOST", "EXAMPLE_APP_PORT", "EXAMPLE_APP_STORE"):
        monkeypatch.delenv(name, raising=False)
    args = command_line().parse_args([])
    assert (args.host, args.port, args.store, args.demo) == (
        "127.0.0.1",
        8080,
        "memory://",
        True,
    )
    assert DASHBOARD_PREFIX == "/jobs"

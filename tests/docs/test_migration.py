"""The examples of the migration guides (docs/migration/*.md) run, and do what
the guides say."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs.examples import run_example

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "migration"


def _printed(page: str) -> list[str]:
    """The lines of the page's "It prints" block."""
    text = (GUIDES / page).read_text()
    block = re.search(r"It prints:\n\n```text\n(.*?)```", text, re.S)
    assert block is not None
    return block.group(1).splitlines()


def test_aiojobs_code_runs_with_the_import_changed() -> None:
    assert run_example("migration_aiojobs") == [
        "limit=2 active=2 pending=1",
        "sent 4 mails; closed=True",
        "ordered",
        "limit=100 closed=False",
        "after shutdown: ['receipt']",
    ]


def test_pyncette_declarations_run_as_tasks() -> None:
    lines = run_example("migration_pyncette")
    assert lines[0] == "db opened" and lines[-1] == "db closed"
    assert "noon 11:00 UTC" in lines  # 12:00 in Dublin, summer time
    assert [line for line in lines if line.startswith("sweep 0")] == ["sweep 06:00"]
    assert "hello ann 08:00" in lines and "hello bill 10:00" in lines
    assert [line for line in lines if line.startswith("flaky")] == [
        "flaky attempt 0 failed: upstream down",
        "flaky attempt 1 failed: upstream down",
    ]


def test_apscheduler_options_map_to_misfire_and_overlap() -> None:
    lines = run_example("migration_apscheduler")
    assert lines == _printed("apscheduler.md")
    assert lines == [
        "first hour: {'coalesced (missed=0)': 1, 'every_one': 1, "
        "'on_time_only': 1, 'parallel': 6, 'single': 2}",
        "after 3 hours down: {'coalesced (missed=2)': 1, 'every_one': 3}",
    ]


def test_asynciojobs_scenario_runs_as_a_workflow() -> None:
    lines = run_example("migration_asynciojobs")
    assert lines[:2] == ["ok: True", "boot-c: c up | monitor ticked: True"]
    listing = "\n".join(lines[2:8])
    assert "succeeded boot-c  -> 'c up'" in listing
    assert "cancelled monitor" in listing
    assert lines[8:] == [
        "failed: workflow 'broken' aborted: critical step 'format-disk' failed: "
        "RuntimeError('disk full')",
        "lenient ok: False",
    ]

"""The FakeClock example of docs/testing.md prints what the page says.

(The page's pytest example runs in tests/docs/test_pytest_plugin.py.)
"""

from __future__ import annotations

from tests.docs.examples import run_example


def test_fake_clock_example() -> None:
    lines = run_example("testing_fake_clock")
    logs = [line for line in lines if line.startswith("log")]
    assert [line for line in lines if line not in logs] == [
        "poll     08:10, ran at 08:10",
        "report   at 08:15",
        "poll     08:20, ran at 08:20",
        "now      08:20",
        "poll     08:30, ran at 08:55",
        "now      08:55",
    ]
    assert len(logs) == 1
    assert "task 'poll': skipped 2 occurrence(s)" in logs[0]

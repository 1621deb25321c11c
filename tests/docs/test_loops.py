"""The example of the "Isolated event loops" section of docs/scheduler.md runs
and prints what the page says."""

from __future__ import annotations

from tests.docs.examples import run_example


def test_isolated_loops_example() -> None:
    assert run_example("isolated_loops") == [
        "result: ['A', 'B', 'C']",
        "progress: Progress(done=3.0, total=3.0, message='c')",
        "main loop kept ticking: True",
        "ran on: aiohttp-jobs loop 'legacy'",
        "loop closed: True",
    ]

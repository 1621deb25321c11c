"""The example of the "Resizing" and "Delayed spawns" sections of
docs/scheduler.md runs and prints what the page says."""

from __future__ import annotations

from tests.docs.examples import run_example


def test_resize_and_delay_example() -> None:
    assert run_example("scheduler_resize_delay") == [
        "reconfigured: {'limit': (1, 2)}",
        "running: ['a', 'c'] pending: 1",
        "report: scheduled scheduled: 1",
        "report after 60 s: pending",
        "report result: report",
    ]

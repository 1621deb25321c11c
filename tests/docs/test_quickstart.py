"""The scheduler example of docs/quickstart.md prints what the page says.

(The page's aiohttp example is docs/examples/aiohttp_quickstart.py, run by
tests/docs/test_web.py.)
"""

from __future__ import annotations

from tests.docs.examples import run_example


def test_scheduler_example() -> None:
    assert run_example("quickstart_scheduler") == [
        "send-mail succeeded mail sent to ada",
        "finished: send-mail",
    ]

"""The scheduler example of docs/quickstart.md prints what the page says.

(The page's aiohttp example is docs/examples/aiohttp_quickstart.py, run by
tests/docs/test_web.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs.examples import run_example

PAGE = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"


def test_scheduler_example_prints_what_the_page_shows() -> None:
    block = re.search(r"It prints:\n\n```text\n(.*?)```", PAGE.read_text(), re.S)
    assert block is not None
    assert (
        run_example("quickstart_scheduler")
        == block.group(1).splitlines()
        == [
            "send-mail succeeded mail sent to ada",
            "finished: send-mail",
        ]
    )

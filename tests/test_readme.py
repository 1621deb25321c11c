"""The README's examples run as written, print what it says, and its links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.S | re.M)


def test_readme_has_the_examples_these_tests_run() -> None:
    assert len(_blocks("python")) == 2
    assert len(_blocks("text")) == 1


def test_scheduler_quickstart_prints_what_the_readme_shows(tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(_blocks("python")[0])
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout == _blocks("text")[0]
    assert out.stderr == ""


async def test_aiohttp_quickstart_answers_and_sends_the_receipt(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    source = _blocks("python")[1]
    namespace: dict[str, Any] = {"__name__": "shop"}  # not "__main__": no server
    exec(compile(source, str(tmp_path / "shop.py"), "exec"), namespace)
    app: web.Application = namespace["app"]
    client = await aiohttp_client(app)
    response = await client.post("/pay", json={"id": 1})
    assert response.status == 201
    assert await response.json() == {"paid": 1}
    await client.close()  # the shutdown drains the scheduler: the receipt is sent
    assert app[namespace["OUTBOX"]] == [1]


@pytest.mark.parametrize(
    "target", sorted(set(re.findall(r"\]\(((?!https?:)[^)#]+)", README)))
)
def test_readme_links_point_at_files_that_exist(target: str) -> None:
    assert (ROOT / target).is_file(), target

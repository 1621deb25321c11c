"""The documentation pages keep their promises: the benchmarks page shows every
benchmark script with a command whose options exist, and every page of docs/ is
in the site (Sphinx -W fails on one left out; this says which one quickly)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = (ROOT / "docs" / "benchmarks.md").read_text()
SCRIPTS = sorted(path.stem for path in (ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_has_a_section_and_a_command(name: str) -> None:
    commands = re.findall(rf"^python benchmarks/{name}\.py(.*)$", BENCHMARKS, re.M)
    assert commands, f"docs/benchmarks.md shows no command for benchmarks/{name}.py"
    source = (ROOT / "benchmarks" / f"{name}.py").read_text()
    for option in re.findall(r"--[\w-]+", commands[0]):
        assert f'"{option}"' in source, f"benchmarks/{name}.py has no {option}"


def test_every_page_is_in_a_table_of_contents() -> None:
    docs = ROOT / "docs"
    listed: set[str] = set()
    for page in docs.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for block in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), re.S):
            base = page.parent.relative_to(docs)
            for line in block.splitlines():
                if line.strip() and not line.startswith(":"):
                    listed.add(str(base / line.strip()))
    pages = {
        str(page.relative_to(docs).with_suffix(""))
        for page in docs.rglob("*.md")
        if "_build" not in page.parts
    }
    assert pages - listed == {"index"}

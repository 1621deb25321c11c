"""Import boundaries of the core: no web, template or database library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import aiohttp_jobs

PACKAGE = Path(aiohttp_jobs.__file__).parent
CORE = ["_errors", "_events", "_history", "_job", "_pools", "_priority", "_scheduler"]
FORBIDDEN = {"aiohttp", "jinja2", "aiohttp_jinja2", "redis", "aiosqlite"}


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_web_or_database_library(module: str) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


def test_importing_the_package_loads_no_database_client() -> None:
    code = (
        "import sys, aiohttp_jobs, aiohttp_jobs.testing;"
        "print(sorted({'redis', 'aiosqlite'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

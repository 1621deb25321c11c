"""Import boundaries: the engine never imports a web, template or database library.

Every module of the core, the tasks, the workflows and the stores is checked, found by
walking the package, so a new module is covered the day it is added.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import aiohttp_jobs

PACKAGE = Path(aiohttp_jobs.__file__).parent
ENGINE = ["_core", "_tasks", "_workflows", "stores"]
LEAVES = ["_errors.py", "_checks.py", "_timers.py", "testing.py"]
FORBIDDEN = {"aiohttp", "jinja2", "aiohttp_jinja2", "redis", "aiosqlite"}
_LAZY_BACKENDS = {"stores/redis.py", "stores/sqlite.py"}


def _engine_modules() -> list[str]:
    found = [
        str(path.relative_to(PACKAGE))
        for sub in ENGINE
        for path in sorted((PACKAGE / sub).rglob("*.py"))
    ]
    found += [leaf for leaf in LEAVES if (PACKAGE / leaf).exists()]
    return found


def _top_level_imports(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    return imported


def test_every_engine_package_is_checked() -> None:
    modules = _engine_modules()
    for sub in ENGINE:
        assert any(module.startswith(sub + "/") for module in modules), sub


@pytest.mark.parametrize("module", _engine_modules())
def test_engine_module_imports_no_web_or_database_library(module: str) -> None:
    path = PACKAGE / module
    # Stores import their own client library lazily, inside the backend module.
    allowed = {"redis", "aiosqlite"} if module in _LAZY_BACKENDS else set()
    assert not (_top_level_imports(path) - allowed) & FORBIDDEN


def test_importing_the_package_loads_no_database_client() -> None:
    code = (
        "import sys, aiohttp_jobs, aiohttp_jobs.testing, aiohttp_jobs.stores;"
        "print(sorted({'redis', 'aiosqlite'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

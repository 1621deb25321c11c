"""The core's import graph: no cycles (not even under TYPE_CHECKING), and no
import of another subpackage; only the leaf modules _errors and _checks."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "aiohttp_jobs" / "_core"
LEAVES = {"_errors", "_checks", "_timers"}


def _imports(path: Path) -> set[str]:
    """Every module *path* imports, as a dotted name inside the package
    (``_core.events``, ``_errors``), also inside ``if TYPE_CHECKING:``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found.add(f"_core.{node.module}")
            elif node.level == 2:
                found.add((node.module or "").split(".")[0])
            elif node.module and node.module.startswith("aiohttp_jobs"):
                found.add(node.module.removeprefix("aiohttp_jobs.").split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aiohttp_jobs"):
                    found.add(alias.name.removeprefix("aiohttp_jobs.").split(".")[0])
    return found


GRAPH = {f"_core.{p.stem}": _imports(p) for p in CORE.glob("*.py")}


def test_the_core_imports_only_itself_and_the_leaf_modules() -> None:
    for module, imports in GRAPH.items():
        outside = {name for name in imports if not name.startswith("_core.")}
        assert outside <= LEAVES, f"{module} imports {outside - LEAVES}"


def test_the_core_has_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in GRAPH.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in GRAPH:
        visit(module, ())


def test_job_does_not_import_events() -> None:
    # Events name jobs; jobs report progress through their owner instead.
    assert "_core.events" not in GRAPH["_core.job"]

"""How the workflow modules depend on one another and on the rest of the package.

Every import counts, also those made inside functions or under ``TYPE_CHECKING``:
a dependency hidden that way is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import aiohttp_jobs

PACKAGE = Path(aiohttp_jobs.__file__).parent
WORKFLOWS = PACKAGE / "_workflows"
#: What the workflow modules may import from the rest of the package.
ALLOWED = ("aiohttp_jobs._core", "aiohttp_jobs._errors", "aiohttp_jobs._checks")


def _imports(path: Path) -> set[str]:
    """The package modules *path* imports, as absolute dotted names."""
    package = "aiohttp_jobs._workflows"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            if node.module:
                found.add(f"{base}.{node.module}")
            else:  # "from . import render"
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("aiohttp_jobs")}


def _graph() -> dict[str, set[str]]:
    return {
        f"aiohttp_jobs._workflows.{path.stem}": _imports(path)
        for path in sorted(WORKFLOWS.glob("*.py"))
        if path.stem != "__init__"
    }


def test_the_modules_are_all_seen() -> None:
    assert set(_graph()) >= {
        f"aiohttp_jobs._workflows.{name}"
        for name in ("model", "step", "body", "plan", "run", "render", "svg")
    }


def test_workflow_modules_import_only_the_core_errors_and_checks() -> None:
    for module, imported in _graph().items():
        for name in imported:
            assert name.startswith(("aiohttp_jobs._workflows.", *ALLOWED)), (
                f"{module} imports {name}"
            )


def test_workflow_modules_form_no_import_cycle() -> None:
    graph = _graph()
    inside = {m: {n for n in deps if n in graph} for m, deps in graph.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in inside[node]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = [m for m in inside if reaches(m, m)]
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_no_workflow_module_writes_private_fields_of_other_objects() -> None:
    """State changes go through methods: ``step._state = ...`` only on ``self``."""
    for path in sorted(WORKFLOWS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if (
                        isinstance(sub, ast.Attribute)
                        and sub.attr.startswith("_")
                        and not sub.attr.startswith("__")
                    ):
                        owner = sub.value
                        assert isinstance(owner, ast.Name) and owner.id == "self", (
                            f"{path.name}:{node.lineno} writes {ast.unparse(sub)}"
                        )

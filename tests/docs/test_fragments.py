"""The short ```python fragments of the guides stay true to the API.

Complete examples live in docs/examples/ and run in the tests; the fragments in
the pages (a call with its options, a few lines of a handler) cannot run alone.
They must still parse (top-level ``await`` allowed), name only what the package
exports, and pass only keyword arguments that the function or method they call
accepts: a renamed parameter fails here instead of rotting in the docs.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aiohttp_jobs
import aiohttp_jobs.dashboard
import aiohttp_jobs.metrics
import aiohttp_jobs.stores
import aiohttp_jobs.testing
from aiohttp_jobs import Scheduler, TaskRuntime, Tasks, Workflow
from aiohttp_jobs.testing import FakeClock

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
FRAGMENTS = [
    pytest.param(block, id=f"{page.relative_to(DOCS)}:{n}")
    for page in PAGES
    for n, block in enumerate(
        re.findall(r"^```python\n(.*?)^```$", page.read_text(), flags=re.S | re.M)
    )
]

MODULES = {
    "aiohttp_jobs": aiohttp_jobs,
    "aiohttp_jobs.dashboard": aiohttp_jobs.dashboard,
    "aiohttp_jobs.metrics": aiohttp_jobs.metrics,
    "aiohttp_jobs.stores": aiohttp_jobs.stores,
    "aiohttp_jobs.testing": aiohttp_jobs.testing,
}
# Functions called by name, and methods called on an object of ours, whose
# keyword arguments are checked. A callable taking **kwargs is checked against
# what it passes them to, or not at all (task parameters are free).
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "Scheduler": Scheduler,
    "Tasks": Tasks,
    "Workflow": Workflow,
    "Step": aiohttp_jobs.Step,
    "FakeClock": FakeClock,
    "from_url": aiohttp_jobs.stores.from_url,
}
METHODS: dict[str, Callable[..., Any]] = {
    "spawn_nowait": Scheduler.spawn_nowait,
    "spawn_in_thread": Scheduler.spawn_in_thread,
    "spawn_in_process": Scheduler.spawn_in_process,
    "wait_and_close": Scheduler.wait_and_close,
    "schedule_task": TaskRuntime.schedule_task,
    "run": Workflow.run,
    "set_progress": aiohttp_jobs.Job.set_progress,
    "advance": FakeClock.advance,
}


def _accepts(func: Callable[..., Any], keyword: str) -> bool:
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return True
    param = params.get(keyword)
    return param is not None and param.kind is not param.POSITIONAL_ONLY


def _target(node: ast.Call) -> tuple[str, Callable[..., Any]] | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id in FUNCTIONS:
        return func.id, FUNCTIONS[func.id]
    if isinstance(func, ast.Attribute):
        owner = func.value
        modules = {"aiohttp_jobs": aiohttp_jobs, "metrics": aiohttp_jobs.metrics}
        if isinstance(owner, ast.Name) and owner.id in modules:
            module = modules[owner.id]
            found = getattr(module, func.attr, None)
            if callable(found):
                if found is aiohttp_jobs.setup:  # options go to Scheduler
                    return "setup", _setup_and_scheduler
                return f"{owner.id}.{func.attr}", found
        if func.attr in FUNCTIONS:
            return func.attr, FUNCTIONS[func.attr]
        if func.attr in METHODS:
            return func.attr, METHODS[func.attr]
    return None


def _setup_and_scheduler(**kwargs: Any) -> None:
    """Stands for setup(): its own parameters, then the Scheduler's."""


def _setup_accepts(keyword: str) -> bool:
    own = inspect.signature(aiohttp_jobs.setup).parameters
    named = {n for n, p in own.items() if p.kind is not p.VAR_KEYWORD}
    return keyword in named or _accepts(Scheduler, keyword)


def test_the_pages_have_fragments() -> None:
    assert len(FRAGMENTS) >= 10


@pytest.mark.parametrize("source", FRAGMENTS)
def test_fragment_parses_and_calls_what_exists(source: str) -> None:
    tree = ast.parse(source)
    compile(source, "<fragment>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in MODULES:
            for alias in node.names:
                assert hasattr(MODULES[node.module], alias.name), alias.name
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "aiohttp_jobs":
                assert hasattr(aiohttp_jobs, node.attr), f"aiohttp_jobs.{node.attr}"
        if not isinstance(node, ast.Call):
            continue
        target = _target(node)
        if target is None:
            continue
        name, func = target
        for keyword in node.keywords:
            if keyword.arg is None:
                continue
            ok = (
                _setup_accepts(keyword.arg)
                if func is _setup_and_scheduler
                else _accepts(func, keyword.arg)
            )
            assert ok, f"{name}() takes no argument {keyword.arg}="

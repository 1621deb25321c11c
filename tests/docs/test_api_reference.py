"""The API reference (docs/api/*.md) covers every public name.

A public module is a module of the package whose dotted name has no part
starting with an underscore. Every name in its ``__all__`` must be the target
of a directive in docs/api/ (``.. autoclass:: aiohttp_jobs.stores.MemoryStore``,
``.. py:data:: ...``, or a name in an ``automodule``'s ``:members:`` list), or
be the same object under the same name as a documented name of an enclosing
public package (``aiohttp_jobs.stores.base.Claim`` is documented as
``aiohttp_jobs.stores.Claim``). So a new export without documentation fails.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import aiohttp_jobs

API = Path(__file__).resolve().parents[2] / "docs" / "api"

_DIRECTIVE = re.compile(
    r"^\s*\.\. (?:py:|auto)?(?P<kind>module|currentmodule|class|exception|function"
    r"|decorator|method|attribute|property|data|type):: +(?P<target>[\w.]+)"
    r"(?P<options>(?:\n\s+:[^\n]*)*)",
    re.M,
)
_MEMBERS = re.compile(r":members: *([\w, ]+)")


def _public_modules() -> list[ModuleType]:
    names = ["aiohttp_jobs"] + [
        info.name
        for info in pkgutil.walk_packages(aiohttp_jobs.__path__, "aiohttp_jobs.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    return [importlib.import_module(name) for name in sorted(names)]


def _documented() -> set[str]:
    """Every dotted name a directive of docs/api/ documents."""
    names: set[str] = set()
    for page in sorted(API.glob("*.md")):
        current = ""  # set by ".. module::" / ".. currentmodule::"
        for match in _DIRECTIVE.finditer(page.read_text()):
            kind, target = match["kind"], match["target"]
            if kind in ("module", "currentmodule"):
                current = target
            elif "." not in target and current:
                target = f"{current}.{target}"
            names.add(target)
            members = _MEMBERS.search(match.group("options"))
            if kind == "module" and members:
                names.update(
                    f"{target}.{member.strip()}"
                    for member in members.group(1).split(",")
                    if member.strip()
                )
    return names


DOCUMENTED = _documented()
PUBLIC = {module.__name__: module for module in _public_modules()}


def _covered(module: ModuleType, name: str) -> bool:
    if f"{module.__name__}.{name}" in DOCUMENTED:
        return True
    obj = getattr(module, name)
    parts = module.__name__.split(".")
    for end in range(len(parts) - 1, 0, -1):
        parent = PUBLIC.get(".".join(parts[:end]))
        if (
            parent is not None
            and getattr(parent, name, None) is obj
            and f"{parent.__name__}.{name}" in DOCUMENTED
        ):
            return True
    return False


def test_plain_directives_name_objects_relative_to_the_current_module() -> None:
    """``.. py:data:: aiohttp_jobs.x.NAME`` after ``.. automodule:: aiohttp_jobs.x``
    is indexed as ``aiohttp_jobs.x.aiohttp_jobs.x.NAME``: references miss it."""
    plain = re.compile(r"^\s*\.\. (py:)?(?P<kind>\w+):: +(?P<target>[\w.]+)", re.M)
    for page in sorted(API.glob("*.md")):
        current = ""
        for match in plain.finditer(page.read_text()):
            kind, target = match["kind"], match["target"]
            if kind in ("module", "currentmodule", "automodule"):
                current = target
            elif not kind.startswith("auto") and current:
                assert not target.startswith("aiohttp_jobs."), (
                    f"{page.name}: '.. {kind}:: {target}' under module {current}: "
                    "name it relative to the module (or set py:currentmodule first)"
                )


def test_the_public_modules_include_the_documented_ones() -> None:
    assert {
        "aiohttp_jobs",
        "aiohttp_jobs.aiohttp",
        "aiohttp_jobs.pytest_plugin",
        "aiohttp_jobs.stores",
        "aiohttp_jobs.testing",
        "aiohttp_jobs.web",
    } <= set(PUBLIC)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_exported_name_is_in_the_api_reference(module_name: str) -> None:
    module = PUBLIC[module_name]
    exported = getattr(module, "__all__", ())
    missing = [name for name in exported if not _covered(module, name)]
    assert not missing, (
        f"{module_name} exports names docs/api/ does not document: {missing}; "
        f"add a directive such as '.. autoclass:: {module_name}.{missing[0]}' "
        "(inside an eval-rst block) to the module's page in docs/api/"
    )


def test_the_api_reference_documents_only_what_exists() -> None:
    for dotted in sorted(DOCUMENTED):
        module_name, _, name = dotted.rpartition(".")
        if dotted in PUBLIC or not dotted.startswith("aiohttp_jobs"):
            continue  # a module, or pytest.mark.jobs_clock
        assert module_name in PUBLIC, dotted
        assert hasattr(PUBLIC[module_name], name), dotted


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_every_exported_class_and_function_has_a_docstring(module_name: str) -> None:
    module = PUBLIC[module_name]
    undocumented = [
        name
        for name in getattr(module, "__all__", ())
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not inspect.getdoc(obj)
    ]
    assert not undocumented, f"{module_name}: no docstring on {undocumented}"

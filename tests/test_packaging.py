"""Packaging tells the truth: supported Pythons, extras, license, what the wheel
ships, the CI command, and an import contract that catches what it claims to."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Callable
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PACKAGE = ROOT / "aiohttp_jobs"


def _noxfile_pythons() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "PYTHONS"
            for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(version) for version in value]
    raise AssertionError("noxfile.py defines no PYTHONS")


def test_supported_pythons_agree_everywhere() -> None:
    pythons = _noxfile_pythons()
    lowest = pythons[0]
    assert PROJECT["requires-python"] == f">={lowest}"
    classified = [
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classified == pythons
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + lowest.replace(".", "")
    assert PYPROJECT["tool"]["mypy"]["python_version"] == lowest
    assert sys.version_info >= tuple(int(part) for part in lowest.split("."))


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running the tests", 1)[1]
    (command,) = re.findall(r"^```sh\n(.*?)\n```$", section, flags=re.S | re.M)[:1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines
    assert ci_lines[-1] == command


def test_every_extra_has_code_behind_it() -> None:
    extras = set(PROJECT["optional-dependencies"])
    # A store backend's extra arrives with its module.
    backends = {
        path.stem
        for path in (PACKAGE / "stores").glob("*.py")
        if path.stem not in {"__init__", "base"}
    }
    # The other extras and the code that needs them.
    needed_by = {
        "docs": ROOT / "docs" / "conf.py",
        "metrics": PACKAGE / "metrics.py",
        "otel": PACKAGE / "_core" / "tracing.py",
    }
    for name, path in needed_by.items():
        assert name not in extras or path.is_file(), f"extra {name!r}: no {path}"
    assert extras - {"test", "lint", "dev", "bench", *needed_by} <= backends
    assert (ROOT / "benchmarks").is_dir()
    for name, requirements in PROJECT["optional-dependencies"].items():
        assert requirements, f"extra {name!r} is empty"


def test_every_runtime_dependency_is_imported_by_the_package() -> None:
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    for requirement in PROJECT["dependencies"]:
        name = re.split(r"[ ;<>=!~\[]", requirement, maxsplit=1)[0]
        if name == "tzdata":  # zoneinfo's data on Windows, read by the stdlib
            assert "zoneinfo" in imported
            continue
        assert name.replace("-", "_").lower() in imported, requirement


def test_license_file_is_the_apache_license_the_metadata_declares() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    # All nine sections of the terms.
    for number in range(1, 10):
        assert re.search(rf"^\s+{number}\. \w", text, flags=re.M), number


def _uv() -> str | None:
    return os.environ.get("UV") or shutil.which(
        "uv", path=str(Path(sys.executable).parent)
    )


@pytest.mark.skipif(_uv() is None, reason="needs uv to build the package")
def test_sdist_and_wheel_ship_the_package_typed_and_licensed(tmp_path: Path) -> None:
    uv = _uv()
    assert uv is not None
    # The wheel is built from the sdist, so a file missing from the sdist shows.
    subprocess.run(
        [uv, "build", "--quiet", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert "aiohttp_jobs/py.typed" in names
    assert "aiohttp_jobs/stores/memory.py" in names
    # The dashboard's templates and static files (no build step, no CDN).
    for shipped in (
        "aiohttp_jobs/dashboard/templates/base.html",
        "aiohttp_jobs/dashboard/templates/jobs.html",
        "aiohttp_jobs/dashboard/static/dashboard.js",
        "aiohttp_jobs/dashboard/static/dashboard.css",
    ):
        assert shipped in names, shipped
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "notes/", "example_app/")) for n in names)
    assert metadata["Requires-Python"] == PROJECT["requires-python"]
    assert metadata["License-Expression"] == "Apache-2.0"
    assert set(metadata.get_all("Provides-Extra") or ()) == set(
        PROJECT["optional-dependencies"]
    )
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "aiohttp_jobs/py.typed", "noxfile.py"} <= members


# --- the import contract -------------------------------------------------------


def _lint_imports() -> Path | None:
    script = Path(sys.executable).parent / "lint-imports"
    return script if script.exists() else None


def _skeleton(tmp_path: Path) -> Path:
    """A package with the real one's top-level layout, empty modules, and the
    project's pyproject.toml, so that each planted import is the only one."""
    root = tmp_path / "project"
    package = root / "aiohttp_jobs"
    for path in PACKAGE.rglob("*.py"):
        target = package / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text('"""Empty."""\n')
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _check(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    script = _lint_imports()
    assert script is not None
    return subprocess.run(
        [str(script), "--no-cache", "--contract", contract],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _plant(module: str, code: str) -> Callable[[Path], None]:
    def plant(root: Path) -> None:
        path = root / "aiohttp_jobs" / module
        with path.open("a") as file:
            file.write(code)

    return plant


TYPE_ONLY = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    {}\n"

PLANTED = {
    "core-imports-web-for-types-only": (
        "layers",
        [_plant("_core/job.py", TYPE_ONLY.format("from ..web import setup"))],
    ),
    "tasks-import-workflows-for-types-only": (
        "layers",
        [_plant("_tasks/runtime.py", TYPE_ONLY.format("from .._workflows import run"))],
    ),
    "store-imports-the-scheduler": (
        "layers",
        [_plant("stores/memory.py", "from .._core import scheduler\n")],
    ),
    "errors-import-checks": (
        "layers",
        [_plant("_errors.py", "from . import _checks\n")],
    ),
    "new-top-level-module-without-a-layer": (
        "layers",
        [_plant("extra.py", "")],
    ),
    "cycle-hidden-under-type-checking": (
        "acyclic",
        [
            _plant("_core/scheduler.py", "from . import job\n"),
            _plant("_core/job.py", TYPE_ONLY.format("from . import scheduler")),
        ],
    ),
    "core-imports-aiohttp-inside-a-function": (
        "engine-libraries",
        [_plant("_core/clock.py", "def f():\n    import aiohttp\n")],
    ),
    "store-imports-jinja2": (
        "engine-libraries",
        [_plant("stores/base.py", "import jinja2\n")],
    ),
    "web-imports-redis": (
        "database-clients",
        [_plant("web/_state.py", "import redis\n")],
    ),
    "package-reaches-aiosqlite-through-a-module": (
        "database-clients",
        [
            _plant("stores/memory.py", "from . import base\n"),
            _plant("stores/base.py", "def f():\n    import aiosqlite\n"),
        ],
    ),
}


@pytest.mark.skipif(_lint_imports() is None, reason="needs import-linter")
@pytest.mark.parametrize(
    "contract", ["layers", "acyclic", "engine-libraries", "database-clients"]
)
def test_import_contract_holds_for_a_package_without_imports(
    tmp_path: Path, contract: str
) -> None:
    result = _check(_skeleton(tmp_path), contract)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(_lint_imports() is None, reason="needs import-linter")
@pytest.mark.parametrize("case", sorted(PLANTED))
def test_import_contract_catches_a_planted_import(tmp_path: Path, case: str) -> None:
    contract, plants = PLANTED[case]
    root = _skeleton(tmp_path)
    for plant in plants:
        plant(root)
    result = _check(root, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout


def test_database_store_backends_may_import_their_client(tmp_path: Path) -> None:
    if _lint_imports() is None:
        pytest.skip("needs import-linter")
    root = _skeleton(tmp_path)
    _plant("stores/redis.py", "def connect():\n    import redis\n")(root)
    _plant("stores/sqlite.py", "def connect():\n    import aiosqlite\n")(root)
    result = _check(root, "database-clients")
    assert result.returncode == 0, result.stdout + result.stderr

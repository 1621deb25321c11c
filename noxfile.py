"""Every gate CI runs, on every supported Python: ``nox`` (what ``.ci/run`` runs).

Sessions:

- ``check-3.11``, ``check-3.12``, ``check-3.13``: ruff (lint and format), mypy
  (strict, for that Python), import-linter (the layer contract in pyproject.toml)
  and the whole test suite.
- ``floors``: the test suite against the oldest release of each dependency that
  pyproject.toml allows (uv's ``--resolution lowest-direct``), so the floors stay
  true.
- ``docs``: the documentation site (Sphinx), built with warnings as errors and
  every cross-reference checked (``-W -n``), into ``docs/_build/html``.
- ``example``: the example application on http://127.0.0.1:8080, its dashboard
  at http://127.0.0.1:8080/jobs (not run by default).

The dashboard's browser tests drive the system's Chromium (``/usr/bin/chromium``,
Debian's ``chromium`` package; ``AIOHTTP_JOBS_CHROMIUM`` names another binary)
through Playwright, which never downloads a browser here; ``.ci/run`` installs
it when it is missing. Without it they are skipped, or fail with ``CI`` set.

Interpreters are looked up on ``PATH`` under their usual names (``python3.12``).
Where pyenv is installed, its interpreters are put on ``PATH`` first, so a machine
with pyenv needs no shims or ``pyenv global``. With ``CI`` set, a Python that
cannot be found fails the run instead of being skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.10.14"  # download_python, uv backends

PYTHONS = ["3.11", "3.12", "3.13"]
LOWEST = PYTHONS[0]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["check", "floors", "docs"]
nox.options.reuse_venv = "yes"
nox.options.download_python = "never"
if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name))


def _put_pyenv_interpreters_on_path() -> None:
    """Prepend the newest pyenv build of each Python in PYTHONS to PATH."""
    root = os.environ.get("PYENV_ROOT")
    if not root:
        pyenv = shutil.which("pyenv")
        if pyenv is None:
            return
        found = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, check=False
        )
        root = found.stdout.strip()
    versions = Path(root, "versions") if root else None
    if versions is None or not versions.is_dir():
        return
    bins: list[str] = []
    for python in PYTHONS:
        builds = [
            build
            for build in versions.glob(f"{python}.*")
            if re.fullmatch(rf"{re.escape(python)}\.\d+", build.name)
            and (build / "bin" / f"python{python}").exists()
        ]
        if builds:
            bins.append(str(max(builds, key=_version_key) / "bin"))
    if bins:
        os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])


_put_pyenv_interpreters_on_path()


@nox.session(python=PYTHONS, tags=["ci"])
def check(session: nox.Session) -> None:
    """Lint, format check, type check, import contract and tests on one Python."""
    session.install("-e", ".[test,lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "--python-version", session.python or LOWEST)
    session.run("lint-imports")
    # The packaging tests build the sdist and the wheel with uv, nox's own.
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    env = {"UV": uv} if uv else {}
    session.run("python", "-m", "pytest", "-n", "2", *session.posargs, env=env)


@nox.session(python=LOWEST, venv_backend="uv", tags=["ci"])
def floors(session: nox.Session) -> None:
    """The test suite with every direct dependency at its lowest allowed version."""
    session.install("--resolution", "lowest-direct", "-e", ".[test]")
    session.run("uv", "pip", "list", external=True)
    session.run("python", "-m", "pytest", "-n", "2", *session.posargs)


@nox.session(python=LOWEST, tags=["ci"])
def docs(session: nox.Session) -> None:
    """Build the documentation site; a warning or a broken reference fails."""
    # pytest: the API reference documents the pytest plugin's fixtures.
    session.install("-e", ".[docs]", "pytest")
    session.run(
        "sphinx-build",
        *("-W", "--keep-going", "-n", "-E", "-q", "-b", "html"),
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session(python=LOWEST)
def example(session: nox.Session) -> None:
    """Serve the example application on http://127.0.0.1:8080."""
    session.install("-e", ".")
    session.run("python", "-m", "example_app")

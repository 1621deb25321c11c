"""Loading and running the runnable examples under docs/examples/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` as a module (its ``__main__`` block
    does not run)."""
    spec = importlib.util.spec_from_file_location(
        f"docs_{name}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(name: str) -> list[str]:
    """Run ``docs/examples/<name>.py`` as a script; its output lines (it must
    write nothing to stderr)."""
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stderr == ""
    return out.stdout.splitlines()

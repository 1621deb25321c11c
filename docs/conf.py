"""Sphinx configuration of the aiohttp-jobs documentation.

Build it as CI does: ``nox -s docs``, or
``sphinx-build -W --keep-going -n -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp_jobs  # noqa: E402

project = "aiohttp-jobs"
author = "aiohttp-jobs developers"
copyright = "aiohttp-jobs developers"
release = aiohttp_jobs.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"aiohttp-jobs {release}"
html_static_path = ["_static"]
html_css_files = ["tables.css"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = True

# Nitpicky: every cross-reference to a name of this package must resolve. Names
# of the standard library and of third-party packages are not linked (the build
# must not need the network for intersphinx inventories), so they are allowed.
nitpicky = True
_EXTERNAL = (
    "_asyncio",
    "aiohttp",
    "aiosqlite",
    "asyncio",
    "collections",
    "concurrent",
    "contextlib",
    "contextvars",
    "datetime",
    "enum",
    "logging",
    "multiprocessing",
    "opentelemetry",
    "os",
    "pathlib",
    "prometheus_client",
    "pytest",
    "redis",
    "time",
    "types",
    "typing",
    "typing_extensions",
    "weakref",
    "web",
    "yarl",
    "zoneinfo",
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({'|'.join(_EXTERNAL)})(\..*)?"),
    # The type variables of generic signatures, and the types of other
    # libraries that annotations name without their module.
    (r"py:.*", r"_[A-Z]\w*"),
    (r"py:.*", r"(CollectorRegistry|Metric|TestClient)"),
    (r"py:.*", r"aiohttp_jobs(\.\w+)*\._[A-Z]\w*"),
    # Private helper types that public signatures name; users never build them.
    (
        r"py:.*",
        r"(aiohttp_jobs\.[\w.]+\.)?"
        r"(TimerHandle|JobOwner|Hop|TaskControl|Declared|Requirements|JobLabel)",
    ),
]

# Where a reference to a name of this package may be documented.
_PUBLIC_MODULES = (
    "aiohttp_jobs",
    "aiohttp_jobs.stores",
    "aiohttp_jobs.testing",
    "aiohttp_jobs.web",
    "aiohttp_jobs.dashboard",
    "aiohttp_jobs.metrics",
    "aiohttp_jobs.pytest_plugin",
)


def _public_target(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve what type hints and docstrings name by its defining module
    (``aiohttp_jobs._core.job.Job.wait``) or relatively (``Scheduler.spawn``)
    to the documented public object (``aiohttp_jobs.Job.wait``)."""
    if node.get("refdomain") != "py":
        return None
    parts = node.get("reftarget", "").lstrip("~.").split(".")
    if parts[0] == "aiohttp_jobs":
        parts = parts[1:]
    domain = env.get_domain("py")
    for start in range(len(parts)):
        suffix = ".".join(parts[start:])
        for module in _PUBLIC_MODULES:
            candidate = f"{module}.{suffix}"
            if candidate in domain.objects:
                node["reftarget"] = candidate
                return domain.resolve_xref(
                    env,
                    node["refdoc"],
                    app.builder,
                    node["reftype"],
                    candidate,
                    node,
                    contnode,
                )
    return None


def setup(app: Any) -> None:
    app.connect("missing-reference", _public_target)

"""The public API, pinned: every module users import from, with the exact names it
exports. Adding, renaming or removing a public name is a change users see: it
changes this file, the docs and CHANGES.md together.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pickle
import subprocess
import sys
import typing
from enum import Enum
from types import ModuleType

import pytest

PUBLIC: dict[str, frozenset[str]] = {
    "aiohttp_jobs": frozenset(
        {
            "SCHEDULER_KEY",
            "TASKS_KEY",
            "BaseStep",
            "Clock",
            "ConfigError",
            "ConfigTypeError",
            "Context",
            "CronSchedule",
            "EventBus",
            "EventKind",
            "EventStream",
            "ExceptionHandler",
            "ExecutionMode",
            "FailureMode",
            "History",
            "IntervalSchedule",
            "IsolatedLoop",
            "IsolatedLoops",
            "Job",
            "JobEvent",
            "JobNotFinishedError",
            "JobNotFoundError",
            "JobState",
            "JobsError",
            "LeaseLostError",
            "Misfire",
            "MissingDependencyError",
            "NoCurrentJobError",
            "NotAwaitableError",
            "NotPicklableError",
            "OnceSchedule",
            "Overlap",
            "Priority",
            "Progress",
            "RunInfo",
            "Schedule",
            "Scheduler",
            "SchedulerClosedError",
            "SchedulerEvent",
            "SchedulerFullError",
            "SchedulerOptions",
            "Sequence",
            "SetupError",
            "StartTimeoutHandler",
            "Step",
            "StepFailedError",
            "StepState",
            "SystemClock",
            "Task",
            "TaskDefinitionError",
            "TaskInfo",
            "TaskNotFoundError",
            "TaskRuntime",
            "Tasks",
            "UnknownPriorityError",
            "Workflow",
            "WorkflowCycleError",
            "WorkflowDefinitionError",
            "WorkflowStateError",
            "WorkflowTimeoutError",
            "__version__",
            "atomic",
            "create_scheduler",
            "current_job",
            "get_scheduler",
            "get_scheduler_from_app",
            "get_scheduler_from_request",
            "get_tasks",
            "setup",
            "shield",
            "spawn",
        }
    ),
    "aiohttp_jobs.web": frozenset(
        {
            "SCHEDULER_KEY",
            "TASKS_KEY",
            "SchedulerOptions",
            "atomic",
            "get_scheduler",
            "get_scheduler_from_app",
            "get_scheduler_from_request",
            "get_tasks",
            "setup",
            "shield",
            "spawn",
        }
    ),
    "aiohttp_jobs.aiohttp": frozenset(
        {
            "AIOJOBS_SCHEDULER",
            "atomic",
            "get_scheduler",
            "get_scheduler_from_app",
            "get_scheduler_from_request",
            "setup",
            "shield",
            "spawn",
        }
    ),
    "aiohttp_jobs.stores": frozenset(
        {
            "JSON",
            "RUN_LOG_SIZE",
            "SCHEMES",
            "Claim",
            "Cursor",
            "InstanceInfo",
            "Lease",
            "LeaseInfo",
            "MemoryStore",
            "Outcome",
            "RunLogEntry",
            "TaskRecord",
            "TaskStore",
            "from_url",
        }
    ),
    "aiohttp_jobs.stores.sqlite": frozenset({"SCHEMA_VERSION", "SQLiteStore"}),
    "aiohttp_jobs.stores.redis": frozenset({"RedisClock", "RedisStore"}),
    "aiohttp_jobs.testing": frozenset({"FakeClock", "settle"}),
    "aiohttp_jobs.metrics": frozenset(
        {
            "METRICS_KEY",
            "Metrics",
            "dashboard_streams_changed",
            "handler",
            "instrument",
            "is_enabled",
            "setup",
        }
    ),
    "aiohttp_jobs.dashboard": frozenset(
        {
            "ACTIONS",
            "AuditEntry",
            "Authorize",
            "FormatError",
            "FormatResult",
            "Identify",
            "audit_log",
            "setup",
        }
    ),
}

# Public names that are values rather than classes or functions: keys, type
# aliases and the version. They cannot carry a docstring of their own; the
# module's documentation describes them.
VALUES = frozenset(
    {
        "SCHEDULER_KEY",
        "TASKS_KEY",
        "AIOJOBS_SCHEDULER",
        "METRICS_KEY",
        "ExceptionHandler",
        "StartTimeoutHandler",
        "JSON",
        "Outcome",
        "RUN_LOG_SIZE",
        "SCHEMES",
        "SCHEMA_VERSION",
        "__version__",
        "ACTIONS",
        "Authorize",
        "FormatError",
        "FormatResult",
        "Identify",
    }
)

EXPORTS = sorted((module, name) for module, names in PUBLIC.items() for name in names)


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _python(code: str) -> str:
    """What *code* prints, run in a fresh interpreter (nothing imported yet)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def _public_classes() -> list[tuple[str, str]]:
    return [
        (module, name)
        for module, name in EXPORTS
        if isinstance(getattr(_module(module), name), type)
    ]


def _exception_classes() -> list[str]:
    package = _module("aiohttp_jobs")
    return sorted(
        name
        for name in PUBLIC["aiohttp_jobs"]
        if isinstance(getattr(package, name), type)
        and issubclass(getattr(package, name), BaseException)
    )


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_module_exports_exactly_the_pinned_names(module: str) -> None:
    exported = _module(module).__all__
    assert len(exported) == len(set(exported)), "a name is listed twice"
    assert set(exported) == PUBLIC[module]


@pytest.mark.parametrize(("module", "name"), EXPORTS)
def test_public_name_is_importable(module: str, name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module} import {name}", namespace)
    assert namespace[name] is getattr(_module(module), name)


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_module_has_a_docstring(module: str) -> None:
    assert (_module(module).__doc__ or "").strip()


@pytest.mark.parametrize(("module", "name"), EXPORTS)
def test_public_class_and_function_has_its_own_docstring(
    module: str, name: str
) -> None:
    obj = getattr(_module(module), name)
    if name in VALUES:
        assert not inspect.isclass(obj) and not inspect.isfunction(obj)
        return
    assert inspect.isclass(obj) or callable(obj), name
    doc = (obj.__doc__ or "").strip()
    assert doc, f"{module}.{name} has no docstring"
    # Dataclasses, named tuples and enums get a generated __doc__ when they
    # have none: "Name(field, ...)" or "An enumeration.".
    assert not doc.startswith(f"{name}(") and doc != "An enumeration.", doc


def test_names_shared_between_modules_are_the_same_objects() -> None:
    package = _module("aiohttp_jobs")
    for module in ("aiohttp_jobs.web", "aiohttp_jobs.aiohttp"):
        for name in PUBLIC[module] & PUBLIC["aiohttp_jobs"]:
            assert getattr(_module(module), name) is getattr(package, name), name
    aiohttp_alias = _module("aiohttp_jobs.aiohttp")
    assert aiohttp_alias.AIOJOBS_SCHEDULER is package.SCHEDULER_KEY


@pytest.mark.parametrize(("module", "name"), _public_classes())
def test_public_class_lives_where_its_module_says(module: str, name: str) -> None:
    # __module__ names the defining file (see docs/contributing.md): tools that
    # read the source or resolve annotations through it keep working.
    cls = getattr(_module(module), name)
    assert getattr(sys.modules[cls.__module__], cls.__qualname__) is cls
    assert f"class {name}" in inspect.getsource(cls)


@pytest.mark.parametrize(("module", "name"), _public_classes())
def test_public_class_annotations_resolve(module: str, name: str) -> None:
    typing.get_type_hints(getattr(_module(module), name))


@pytest.mark.parametrize("name", _exception_classes())
def test_public_exception_survives_pickling(name: str) -> None:
    # A job in a process pool sends its exception back pickled.
    cls = getattr(_module("aiohttp_jobs"), name)
    init = cls.__init__
    # Parameters after (self, message) of an __init__ written in Python.
    extra = (
        list(inspect.signature(init).parameters)[2:] if inspect.isfunction(init) else []
    )
    samples: dict[str, object] = {"step_label": "fetch", "cycle": ["a", "b", "a"]}
    error = cls("what went wrong", *(samples[param] for param in extra))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name in PUBLIC["aiohttp_jobs"]
        if isinstance(getattr(_module("aiohttp_jobs"), name), type)
        and issubclass(getattr(_module("aiohttp_jobs"), name), Enum)
    ),
)
def test_public_enum_members_survive_pickling(name: str) -> None:
    enum_class = getattr(_module("aiohttp_jobs"), name)
    for member in enum_class:
        assert pickle.loads(pickle.dumps(member)) is member


def test_importing_every_public_module_loads_no_database_client_or_templates() -> None:
    code = (
        "import sys\n"
        f"for name in {sorted(PUBLIC)!r}: __import__(name)\n"
        "print(sorted({'redis', 'aiosqlite', 'jinja2', 'aiohttp_jinja2', "
        "'prometheus_client', 'opentelemetry'} & "
        "set(sys.modules)))"
    )
    out = _python(code)
    assert out.strip() == "[]"


def test_the_packages_lazy_table_names_what_its_type_checking_imports_name() -> None:
    """``aiohttp_jobs/__init__.py`` lists its names three times: ``__all__``,
    the imports type checkers read, and the table ``__getattr__`` imports
    from. The three agree, name for name and module for module; and the
    submodules it imports on first use are the public ones."""
    package = _module("aiohttp_jobs")
    assert package.__file__ is not None
    with open(package.__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    [checked] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    imported = {
        alias.name: "." * node.level + (node.module or "")
        for node in checked.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = package._LAZY
    assert imported == lazy
    assert set(lazy) | {"__version__"} == set(package.__all__)
    # The submodules it imports on first use: the public ones, and the plugin.
    submodules = {name.split(".")[1] for name in PUBLIC if name.count(".") == 1}
    assert package._SUBMODULES == submodules | {"pytest_plugin"}


def test_the_package_imports_its_names_when_first_used() -> None:
    """``import aiohttp_jobs`` imports nothing heavy; each public name and
    public submodule is imported when first used, as the same object its
    module exports, and appears in ``dir()``."""
    code = (
        "import sys, aiohttp_jobs as p\n"
        "light = not {'aiohttp', 'croniter'} & set(sys.modules)\n"
        "from aiohttp_jobs import Scheduler\n"
        "from aiohttp_jobs._core.scheduler import Scheduler as S\n"
        "import aiohttp_jobs.web as w\n"
        "print(light, Scheduler is S, p.setup is w.setup,\n"
        "      p.metrics.__name__, p.dashboard.__name__,\n"
        "      set(p.__all__) <= set(dir(p)))\n"
        "try:\n"
        "    p.no_such_name\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    out = _python(code)
    assert out.splitlines() == [
        "True True True aiohttp_jobs.metrics aiohttp_jobs.dashboard True",
        "module 'aiohttp_jobs' has no attribute 'no_such_name'",
    ]

"""aiohttp-jobs: background jobs for aiohttp applications.

The core :class:`Scheduler` and :class:`Job` are a drop-in superset of aiojobs 1.x.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._core.clock import Clock, SystemClock
    from ._core.events import (
        EventBus,
        EventKind,
        EventStream,
        JobEvent,
        SchedulerEvent,
    )
    from ._core.history import History
    from ._core.job import Job, JobState, Progress, current_job
    from ._core.loops import IsolatedLoop, IsolatedLoops
    from ._core.priority import Priority
    from ._core.scheduler import (
        ExceptionHandler,
        Scheduler,
        StartTimeoutHandler,
        create_scheduler,
    )
    from ._errors import (
        ConfigError,
        ConfigTypeError,
        JobNotFinishedError,
        JobNotFoundError,
        JobsError,
        LeaseLostError,
        MissingDependencyError,
        NoCurrentJobError,
        NotAwaitableError,
        NotPicklableError,
        SchedulerClosedError,
        SchedulerFullError,
        SetupError,
        StepFailedError,
        TaskDefinitionError,
        TaskNotFoundError,
        UnknownPriorityError,
        WorkflowCycleError,
        WorkflowDefinitionError,
        WorkflowStateError,
        WorkflowTimeoutError,
    )
    from ._tasks.context import Context, RunInfo, TaskInfo
    from ._tasks.declarations import Tasks
    from ._tasks.options import ExecutionMode, FailureMode, Misfire, Overlap, Task
    from ._tasks.runtime import TaskRuntime
    from ._tasks.schedules import CronSchedule, IntervalSchedule, OnceSchedule, Schedule
    from ._workflows.model import BaseStep, Sequence, Step, StepState, Workflow
    from .web import (
        SCHEDULER_KEY,
        TASKS_KEY,
        SchedulerOptions,
        atomic,
        get_scheduler,
        get_scheduler_from_app,
        get_scheduler_from_request,
        get_tasks,
        setup,
        shield,
        spawn,
    )

__version__ = "0.3.0.dev0"

__all__ = [
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
]

#: Where each public name lives. Importing the package imports none of them:
#: a name is imported on first use (PEP 562), so ``import aiohttp_jobs`` (and
#: pytest loading the package's plugin in every test run of a project that has
#: it installed) costs nothing until the package is used.
_LAZY: dict[str, str] = {
    "Clock": "._core.clock",
    "SystemClock": "._core.clock",
    "EventBus": "._core.events",
    "EventKind": "._core.events",
    "EventStream": "._core.events",
    "JobEvent": "._core.events",
    "SchedulerEvent": "._core.events",
    "History": "._core.history",
    "Job": "._core.job",
    "JobState": "._core.job",
    "Progress": "._core.job",
    "current_job": "._core.job",
    "IsolatedLoop": "._core.loops",
    "IsolatedLoops": "._core.loops",
    "Priority": "._core.priority",
    "ExceptionHandler": "._core.scheduler",
    "Scheduler": "._core.scheduler",
    "StartTimeoutHandler": "._core.scheduler",
    "create_scheduler": "._core.scheduler",
    "ConfigError": "._errors",
    "ConfigTypeError": "._errors",
    "JobNotFinishedError": "._errors",
    "JobNotFoundError": "._errors",
    "JobsError": "._errors",
    "LeaseLostError": "._errors",
    "MissingDependencyError": "._errors",
    "NoCurrentJobError": "._errors",
    "NotAwaitableError": "._errors",
    "NotPicklableError": "._errors",
    "SchedulerClosedError": "._errors",
    "SchedulerFullError": "._errors",
    "SetupError": "._errors",
    "StepFailedError": "._errors",
    "TaskDefinitionError": "._errors",
    "TaskNotFoundError": "._errors",
    "UnknownPriorityError": "._errors",
    "WorkflowCycleError": "._errors",
    "WorkflowDefinitionError": "._errors",
    "WorkflowStateError": "._errors",
    "WorkflowTimeoutError": "._errors",
    "Context": "._tasks.context",
    "RunInfo": "._tasks.context",
    "TaskInfo": "._tasks.context",
    "Tasks": "._tasks.declarations",
    "ExecutionMode": "._tasks.options",
    "FailureMode": "._tasks.options",
    "Misfire": "._tasks.options",
    "Overlap": "._tasks.options",
    "Task": "._tasks.options",
    "TaskRuntime": "._tasks.runtime",
    "CronSchedule": "._tasks.schedules",
    "IntervalSchedule": "._tasks.schedules",
    "OnceSchedule": "._tasks.schedules",
    "Schedule": "._tasks.schedules",
    "BaseStep": "._workflows.model",
    "Sequence": "._workflows.model",
    "Step": "._workflows.model",
    "StepState": "._workflows.model",
    "Workflow": "._workflows.model",
    "SCHEDULER_KEY": ".web",
    "TASKS_KEY": ".web",
    "SchedulerOptions": ".web",
    "atomic": ".web",
    "get_scheduler": ".web",
    "get_scheduler_from_app": ".web",
    "get_scheduler_from_request": ".web",
    "get_tasks": ".web",
    "setup": ".web",
    "shield": ".web",
    "spawn": ".web",
}


#: The public submodules, also imported on first use as attributes
#: (``aiohttp_jobs.metrics.setup(app)`` after a bare ``import aiohttp_jobs``).
_SUBMODULES = frozenset(
    {"aiohttp", "dashboard", "metrics", "stores", "testing", "web", "pytest_plugin"}
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

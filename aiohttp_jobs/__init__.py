"""aiohttp-jobs: background jobs for aiohttp applications.

The core :class:`Scheduler` and :class:`Job` are a drop-in superset of aiojobs 1.x.
"""

from __future__ import annotations

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
from ._core.scheduler import ExceptionHandler, Scheduler, StartTimeoutHandler
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
    "current_job",
    "get_scheduler",
    "get_scheduler_from_app",
    "get_scheduler_from_request",
    "get_tasks",
    "setup",
    "shield",
    "spawn",
]

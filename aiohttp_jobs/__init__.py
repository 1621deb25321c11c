"""aiohttp-jobs: background jobs for aiohttp applications.

The core :class:`Scheduler` and :class:`Job` are a drop-in superset of aiojobs 1.x.
"""

from __future__ import annotations

from ._errors import (
    ConfigError,
    JobNotFinishedError,
    JobNotFoundError,
    JobsError,
    NoCurrentJobError,
    NotAwaitableError,
    NotPicklableError,
    SchedulerClosedError,
    SetupError,
    UnknownPriorityError,
)
from ._events import EventBus, EventKind, EventStream, JobEvent
from ._history import History
from ._job import Job, JobState, Progress, current_job
from ._priority import Priority
from ._scheduler import ExceptionHandler, Scheduler, StartTimeoutHandler
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

__version__ = "0.1.0.dev0"

__all__ = [
    "SCHEDULER_KEY",
    "TASKS_KEY",
    "ConfigError",
    "EventBus",
    "EventKind",
    "EventStream",
    "ExceptionHandler",
    "History",
    "Job",
    "JobEvent",
    "JobNotFinishedError",
    "JobNotFoundError",
    "JobState",
    "JobsError",
    "NoCurrentJobError",
    "NotAwaitableError",
    "NotPicklableError",
    "Priority",
    "Progress",
    "Scheduler",
    "SchedulerClosedError",
    "SchedulerOptions",
    "SetupError",
    "StartTimeoutHandler",
    "UnknownPriorityError",
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

"""The whole exception hierarchy of aiohttp-jobs.

Every error subclasses :class:`JobsError` *and* the builtin it is closest to, so
code written for aiojobs (which raises bare ``RuntimeError``) keeps catching them.
"""

from __future__ import annotations

import asyncio

__all__ = [
    "ConfigError",
    "ConfigTypeError",
    "JobNotFinishedError",
    "JobNotFoundError",
    "JobsError",
    "LeaseLostError",
    "MissingDependencyError",
    "NoCurrentJobError",
    "NotAwaitableError",
    "NotPicklableError",
    "SchedulerClosedError",
    "SchedulerFullError",
    "SetupError",
    "StepFailedError",
    "TaskDefinitionError",
    "TaskNotFoundError",
    "UnknownPriorityError",
    "WorkflowCycleError",
    "WorkflowDefinitionError",
    "WorkflowStateError",
    "WorkflowTimeoutError",
]


class JobsError(Exception):
    """Base class of every error raised by aiohttp-jobs."""


class SchedulerClosedError(JobsError, RuntimeError):
    """A job was spawned on a scheduler that is closed (or closing)."""


class SchedulerFullError(JobsError, RuntimeError):
    """``spawn_nowait()`` would have had to wait for a pending place."""


class NotAwaitableError(JobsError, TypeError):
    """Something that cannot be awaited was given where a coroutine was expected."""


class NotPicklableError(JobsError, TypeError):
    """A function or its arguments cannot be sent to a worker process."""


class ConfigError(JobsError, ValueError):
    """An argument or setting has a value that cannot work."""


class ConfigTypeError(ConfigError, TypeError):
    """An argument has the wrong type (a string where a number belongs, say).

    It is a :class:`ConfigError` and a ``TypeError``, so either ``except`` catches it.
    """


class UnknownPriorityError(ConfigError):
    """A priority that is not one of LOW, NORMAL, HIGH, CRITICAL."""


class JobNotFinishedError(JobsError, asyncio.InvalidStateError):
    """``result()`` or ``exception()`` was called on a job that has not finished."""


class JobNotFoundError(JobsError, LookupError):
    """No job with the given id is known (active, pending or in the history)."""


class NoCurrentJobError(JobsError, LookupError):
    """``current_job()`` was called outside of a job."""


class SetupError(JobsError, RuntimeError):
    """The aiohttp integration is missing (``setup()`` not called) or set up twice."""


# -- workflows (aiohttp_jobs._workflows) ------------------------------------------


class WorkflowDefinitionError(JobsError, ValueError):
    """A workflow is built wrongly: a requirement outside the workflow, a step in
    two workflows, a forever step that others require, a window too small."""


class WorkflowCycleError(WorkflowDefinitionError):
    """The requirements of a workflow's steps form a cycle.

    ``cycle`` holds the labels of the steps in it, the first repeated at the end.
    """

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle

    def __reduce__(self) -> tuple[type[WorkflowCycleError], tuple[str, list[str]]]:
        # Crosses process boundaries (a worker's failure, a pickled report) intact.
        return (type(self), (str(self), self.cycle))


class WorkflowStateError(JobsError, RuntimeError):
    """A workflow was run twice, or changed while running or after its run."""


class StepFailedError(JobsError, RuntimeError):
    """A critical step of a critical workflow failed; the run was aborted.

    ``step_label`` names the step and ``__cause__`` is its own exception.
    """

    def __init__(self, message: str, step_label: str) -> None:
        super().__init__(message)
        self.step_label = step_label

    def __reduce__(self) -> tuple[type[StepFailedError], tuple[str, str]]:
        return (type(self), (str(self), self.step_label))


class WorkflowTimeoutError(JobsError, asyncio.TimeoutError):
    """A critical workflow did not finish within its ``timeout``."""


class TaskDefinitionError(ConfigError):
    """A scheduled task, fixture or middleware was declared with unusable arguments."""


class TaskNotFoundError(JobsError, LookupError):
    """No scheduled task (or dynamic task instance) has the given name."""


class LeaseLostError(JobsError, RuntimeError):
    """A task run's lease expired or was taken over: another run may be executing.

    Raised by ``context.heartbeat()``; stop the work and let the exception propagate.
    """


class MissingDependencyError(JobsError, ImportError):
    """An optional library is not installed; the message names the extra to
    install (``pip install "aiohttp-jobs[redis]"``)."""

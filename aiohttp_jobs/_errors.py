"""The whole exception hierarchy of aiohttp-jobs.

Every error subclasses :class:`JobsError` *and* the builtin it is closest to, so
code written for aiojobs (which raises bare ``RuntimeError``) keeps catching them.
"""

from __future__ import annotations

import asyncio

__all__ = [
    "ConfigError",
    "JobNotFinishedError",
    "JobNotFoundError",
    "JobsError",
    "NoCurrentJobError",
    "NotAwaitableError",
    "SchedulerClosedError",
    "SetupError",
    "UnknownPriorityError",
]


class JobsError(Exception):
    """Base class of every error raised by aiohttp-jobs."""


class SchedulerClosedError(JobsError, RuntimeError):
    """A job was spawned on a scheduler that is closed (or closing)."""


class NotAwaitableError(JobsError, TypeError):
    """Something that cannot be awaited was given where a coroutine was expected."""


class ConfigError(JobsError, ValueError):
    """An argument or setting has a value that cannot work."""


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

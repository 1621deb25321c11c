"""The package's logger tree and the structured context on its records.

Every logger is a child of ``aiohttp_jobs`` (one line of logging configuration
covers them all); docs/observability.md lists them. A record about a job or a
task run carries ``job_id``, ``job_name``, ``task``, ``run_id`` and ``attempt``
as attributes (the ``extra=`` mechanism), so JSON formatters pick them up:

* a record logged with ``extra=job_extra(job)`` names that job;
* a record logged by one of the package's loggers from inside a job (or a task
  run) gets the running job's (and run's) fields added by a filter, unless the
  call gave them already.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Final, Protocol

from .job import Job, running_job

__all__ = [
    "LOGGER_NAMES",
    "RunFields",
    "enter_run",
    "job_extra",
    "jobs_logger",
    "run_extra",
]

#: Every logger of the package, parent first.
LOGGER_NAMES: Final = (
    "aiohttp_jobs",
    "aiohttp_jobs.scheduler",
    "aiohttp_jobs.jobs",
    "aiohttp_jobs.tasks",
    "aiohttp_jobs.stores",
    "aiohttp_jobs.workflows",
    "aiohttp_jobs.web",
    "aiohttp_jobs.dashboard",
    "aiohttp_jobs.metrics",
)

#: The fields a record about a job or a task run carries.
FIELDS: Final = ("job_id", "job_name", "task", "run_id", "attempt")


class RunFields(Protocol):
    """What :func:`enter_run` reads from a task run's context."""

    @property
    def run_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...


#: ``(task name, run id, attempt)`` of the task run the current context executes.
_run: ContextVar[tuple[str, str, int] | None] = ContextVar(
    "aiohttp_jobs.task_run", default=None
)


def enter_run(task: str, run: RunFields) -> None:
    """Mark the current context (a run's job) as executing *run* of *task*:
    the package's records logged from it carry ``task``, ``run_id`` and
    ``attempt``. Set inside the job's own context, it ends with the job."""
    _run.set((task, run.run_id, run.attempt))


def run_extra(task: str, run: RunFields) -> dict[str, object]:
    """``extra=`` for a record about *run* of *task* logged outside the run's
    own job (where the filter cannot find it)."""
    return {"task": task, "run_id": run.run_id, "attempt": run.attempt}


def job_extra(job: Job[Any] | None) -> dict[str, object]:
    """``extra=`` for a record about *job* (and the run it executes, if any)."""
    if job is None:
        return {}
    return {"job_id": job.id, "job_name": job.name}


class _ContextFilter(logging.Filter):
    """Adds the running job's and task run's fields to a record that lacks them."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if "job_id" not in fields:
            job = running_job()
            if job is not None:
                fields["job_id"] = job.id
                fields["job_name"] = job.name
        if "run_id" not in fields:
            run = _run.get()
            if run is not None:
                fields["task"], fields["run_id"], fields["attempt"] = run
        return True


_FILTER: Final = _ContextFilter()
for _name in LOGGER_NAMES:
    # A filter acts on the records of the logger it is attached to (not on
    # those its children propagate): each logger of the tree gets it.
    logging.getLogger(_name).addFilter(_FILTER)

#: Failures of jobs nobody awaited, start timeouts: records about one job.
jobs_logger: Final = logging.getLogger("aiohttp_jobs.jobs")

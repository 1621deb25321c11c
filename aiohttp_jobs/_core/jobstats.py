"""Per-job statistics cheap enough to keep for every job: what metrics read.

A :class:`JobStats` is a scheduler observer (``Scheduler.add_observer``) whose
``job_finished`` runs on the path of every job. It only bumps plain numbers in
lists: finished jobs by label and state, and histograms of run time (by label)
and of wait time (by priority) kept as counts per bucket. Readers
(``aiohttp_jobs.metrics``) turn them into series when scraped. It lives in the
core, beside :class:`Job`, because it reads a job's fields directly: the public
properties cost about twice as much on this path (``benchmarks/spawn.py``
prints the rate with metrics on over the rate without).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Final

from .job import Job, JobState
from .priority import Priority

__all__ = ["OTHER", "JobStats"]

#: The label for job names beyond ``max_names``.
OTHER: Final = "_other"

_SUCCEEDED, _FAILED = JobState.SUCCEEDED, JobState.FAILED

JobLabel = Callable[[Job[Any]], str]

logger = logging.getLogger("aiohttp_jobs.metrics")


def _safe(job_label: JobLabel) -> JobLabel:
    """*job_label*, made unable to break the scheduler: it runs as each job
    finishes, so a failure or a non-string answer counts the job under
    :data:`OTHER` (and is logged once)."""
    warned = False

    def label(job: Job[Any]) -> str:
        nonlocal warned
        try:
            value = job_label(job)
        except Exception:
            value = None
            if not warned:
                logger.exception("metrics: job_label(%r) failed", job)
                warned = True
        if type(value) is str and value:
            return value
        if not warned:
            logger.warning(
                "metrics: job_label(%r) returned %r, not a non-empty string; "
                "such jobs are counted as %r",
                job,
                value,
                OTHER,
            )
            warned = True
        return OTHER

    return label


class JobStats:
    """Finished jobs by label and state, with run-time and wait-time histograms.

    ``rows[label]`` (at most ``max_names`` labels, then :data:`OTHER`): jobs
    that succeeded, failed and were cancelled, then the
    run-time histogram (a count per bucket of *bounds*, one more for above
    them all), then the sum of run times. ``waits[priority]``: the wait-time
    histogram (counts per bucket, the extra one, the sum).
    """

    def __init__(
        self, *, bounds: Sequence[float], max_names: int, job_label: JobLabel | None
    ) -> None:
        self.bounds = tuple(bounds)
        self.buckets = len(self.bounds) + 1
        self.run_at = 3
        self.row_size = self.run_at + self.buckets + 1
        self.max_names = max_names
        self.job_label = None if job_label is None else _safe(job_label)
        self.rows: dict[str, list[float]] = {}
        self.waits = [[0.0] * (self.buckets + 1) for _ in Priority]
        # The scheduler calls this attribute: the closure itself.
        self.job_finished: Callable[[Job[Any]], None] = self._hot_path()

    def __repr__(self) -> str:
        return f"<JobStats labels={len(self.rows)}>"

    def label(self, job: Job[Any]) -> str:
        """The label *job* is counted under (its name, or ``job_label(job)``;
        :data:`OTHER` once ``max_names`` labels exist)."""
        name = job.name if self.job_label is None else self.job_label(job)
        if name in self.rows or len(self.rows) < self.max_names:
            return name
        return OTHER

    def _row(self, name: str) -> list[float]:
        """The row of a name not seen yet (of :data:`OTHER` beyond the cap)."""
        if len(self.rows) >= self.max_names:
            name = OTHER
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = [0.0] * self.row_size
        return row

    def _hot_path(self) -> Callable[[Job[Any]], None]:
        # Locals, not attributes; identity tests for the state (an enum as a
        # dict key hashes in Python code); the job's slots, not its properties;
        # a bisection only for times above the first bound.
        rows = self.rows
        waits = self.waits
        new_row = self._row
        job_label = self.job_label
        bounds = self.bounds
        first = bounds[0]
        run_at = self.run_at

        def job_finished(job: Job[Any]) -> None:
            if job_label is None:
                name = job._name
                if name is None:
                    name = job._label or job.name
            else:
                name = job_label(job)
            row = rows.get(name) or new_row(name)
            state = job._state
            row[0 if state is _SUCCEEDED else 1 if state is _FAILED else 2] += 1
            begun = job._started_at
            if begun is None:
                return  # dropped before it started
            ran = job._finished_at - begun  # type: ignore[operator]
            row[run_at if ran <= first else run_at + bisect_left(bounds, ran)] += 1
            row[-1] += ran
            waited = begun - job._created_at
            wait = waits[job._priority]
            wait[0 if waited <= first else bisect_left(bounds, waited)] += 1
            wait[-1] += waited

        return job_finished

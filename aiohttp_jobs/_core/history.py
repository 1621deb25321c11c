"""A bounded, queryable record of finished jobs."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from .._checks import MAX_COUNT, check_count, check_text
from .._errors import ConfigError
from .job import JobState

if TYPE_CHECKING:
    from .job import Job

_STATES = tuple(state.value for state in JobState)

__all__ = ["History"]


class History:
    """The last ``maxlen`` finished jobs, oldest first when iterated.

    ``maxlen=0`` keeps nothing. Lookups scan the record, so they cost O(maxlen):
    fine for inspection, not meant for hot paths.
    """

    __slots__ = ("_jobs", "append")

    def __init__(self, *, maxlen: int) -> None:
        maxlen = check_count("maxlen", maxlen, minimum=0, maximum=MAX_COUNT)
        self._jobs: deque[Job[object]] = deque(maxlen=maxlen)
        #: Record a finished job (the deque's own method: called once per job).
        self.append: Callable[[Job[object]], None] = self._jobs.append

    def __repr__(self) -> str:
        return f"<History {len(self._jobs)}/{self.maxlen}>"

    @property
    def maxlen(self) -> int:
        maxlen = self._jobs.maxlen
        assert maxlen is not None
        return maxlen

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job[object]]:
        return iter(self._jobs)

    def clear(self) -> None:
        self._jobs.clear()

    def query(
        self,
        *,
        state: JobState | str | None = None,
        name: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> list[Job[object]]:
        """Finished jobs matching every given filter, newest first.

        *state* is a :class:`JobState` or its value (``"failed"``); *name* matches
        the job name exactly; *tag* keeps jobs carrying that tag; *limit* (an
        integer >= 0) caps how many are returned.
        """
        if state is not None and state not in _STATES:
            raise ConfigError(
                f"state must be a JobState or one of {', '.join(_STATES)}, "
                f"got {state!r}"
            )
        check_text("name", name, optional=True)
        check_text("tag", tag, optional=True)
        if limit is not None:
            check_count("limit", limit, minimum=0)
        found: list[Job[object]] = []
        if limit == 0:
            return found
        for job in reversed(self._jobs):
            if state is not None and job.state != state:
                continue
            if name is not None and job.name != name:
                continue
            if tag is not None and tag not in job.tags:
                continue
            found.append(job)
            if limit is not None and len(found) >= limit:
                break
        return found

    def get(self, job_id: str) -> Job[object] | None:
        """The remembered job with this id, else ``None``."""
        check_text("job_id", job_id)
        for job in reversed(self._jobs):
            if job.id == job_id:
                return job
        return None

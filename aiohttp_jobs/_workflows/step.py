"""The pieces of a workflow: steps, their states and requirements, sequences.

:class:`BaseStep` is what a plain :class:`Step` and a nested
:class:`~aiohttp_jobs.Workflow` share; the workflow itself lives in ``model``,
which imports this module (and ``run``, ``render``, ``svg``), never the reverse:
what the lower modules need of a workflow is the :class:`Group` protocol.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from types import CoroutineType
from typing import TYPE_CHECKING, Generic, Protocol, TypeAlias, TypeVar

from .._checks import check_flag, check_name
from .._core.ids import IdSpace
from .._core.job import JobState
from .._core.priority import Priority, parse_priority
from .._errors import (
    ConfigError,
    ConfigTypeError,
    JobNotFinishedError,
    WorkflowCycleError,
    WorkflowDefinitionError,
    WorkflowStateError,
)
from .body import body_name, make_coroutine
from .plan import Plan

if TYPE_CHECKING:
    from .._core.job import Job
    from .._core.scheduler import Scheduler

__all__ = ["BaseStep", "Group", "Requirements", "Sequence", "Step", "StepState"]

_T = TypeVar("_T", covariant=True)

#: Step and workflow ids: a random prefix per process (a new one in each forked
#: child) and a process-wide counter.
_IDS = IdSpace(prefix_bytes=3)


#: Shared by every step without requirements (most of them); never mutated.
_NO_REQUIREMENTS: dict[BaseStep, None] = {}


class StepState(str, enum.Enum):
    """Where a step (or a nested workflow) is in its run. The last three are final."""

    IDLE = "idle"  #: its requirements have not all finished
    READY = "ready"  #: may start; waits for a window slot or a scheduler slot
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  #: a forever step at the end, or stopped by an abort

    def __str__(self) -> str:
        return self.value

    @property
    def final(self) -> bool:
        return self is not _IDLE and self is not _READY and self is not _RUNNING


_IDLE = StepState.IDLE
_READY = StepState.READY
_RUNNING = StepState.RUNNING
_SUCCEEDED = StepState.SUCCEEDED
_FAILED = StepState.FAILED
_CANCELLED = StepState.CANCELLED

#: What a requirement may name: a step, a nested workflow, or a sequence (its last).
Requirement: TypeAlias = "BaseStep | Sequence"
Requirements: TypeAlias = "BaseStep | Sequence | Iterable[BaseStep | Sequence]"


def _flatten(requires: Requirements) -> list[BaseStep]:
    given: object = requires  # checked, whatever the annotation says
    items: Iterable[object]
    if type(given) is tuple or type(given) is list:  # the common cases, fast
        items = given
    elif isinstance(given, (BaseStep, Sequence)):
        items = (given,)
    elif isinstance(given, Iterable) and not isinstance(given, str | bytes):
        items = given
    else:
        raise ConfigTypeError(
            f"requires must be a Step, a Workflow, a Sequence or a collection of "
            f"them, got {requires!r} ({type(requires).__name__})"
        )
    out: list[BaseStep] = []
    for item in items:
        if isinstance(item, Sequence):
            out.append(item.last)
        elif isinstance(item, BaseStep):
            out.append(item)
        else:
            raise ConfigTypeError(
                f"requires must hold Steps, Workflows or Sequences, got {item!r} "
                f"({type(item).__name__})"
            )
    return out


class Group(Protocol):
    """A workflow, as its steps, the runner and the renderers see it.

    :class:`~aiohttp_jobs.Workflow` implements it; this module names only what it
    uses, so that the workflow's module imports this one and never the reverse.
    """

    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def state(self) -> StepState: ...
    @property
    def critical(self) -> bool: ...
    @property
    def forever(self) -> bool: ...
    @property
    def priority(self) -> Priority | None: ...
    @property
    def requires(self) -> tuple[BaseStep, ...]: ...
    @property
    def steps(self) -> tuple[BaseStep, ...]: ...
    @property
    def window(self) -> int | None: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def failed_step(self) -> BaseStep | None: ...

    def exception(self) -> BaseException | None: ...
    def topological(self) -> list[BaseStep]: ...
    def _prepare(self) -> Plan: ...
    def _begin(self, scheduler: Scheduler) -> None: ...
    def _conclude(
        self, error: Exception | None, failed: BaseStep | None, timed_out: bool
    ) -> None: ...
    def _finish(self, state: StepState, exception: BaseException | None) -> None: ...
    def _discard(self) -> None: ...


def _check_step(
    label: object,
    critical: object,
    forever: object,
    priority: Priority | int | str | None,
    body: object,
) -> Priority | None:
    """Check the arguments every step and workflow takes (a ConfigError names the
    wrong one; a coroutine *body* refused with it is closed, so that it does not
    warn that it was never awaited) and return the priority parsed."""
    try:
        check_name("label", label, optional=True)
        check_flag("critical", critical)
        check_flag("forever", forever)
        return None if priority is None else parse_priority(priority)
    except Exception:
        if inspect.iscoroutine(body):
            body.close()
        raise


class BaseStep:
    """What steps and nested workflows share: a label, requirements, flags, state.

    The runner moves a step from state to state through the methods whose names
    start with an underscore (``_mark_ready``, ``_finish``, ``_discard``, ...);
    nothing outside this module writes a step's fields.
    """

    __slots__ = (
        "__weakref__",
        "_critical",
        "_exception",
        "_finished_at",
        "_forever",
        "_label",
        "_owner",
        "_priority",
        "_requires",
        "_seq",
        "_started_at",
        "_state",
    )

    def __init__(
        self,
        label: str,
        requires: Requirements,
        critical: bool,
        forever: bool,
        priority: Priority | int | str | None,
    ) -> None:
        # Positional and flat: building 10,000 steps should cost little.
        self._seq = _IDS.next_seq()
        self._label = label
        self._critical = critical
        self._forever = forever
        self._priority = _check_step(label, critical, forever, priority, None)
        self._requires: dict[BaseStep, None] = _NO_REQUIREMENTS  # copied on write
        self._owner: BaseStep | None = None
        self._state = StepState.IDLE
        self._exception: BaseException | None = None
        self._started_at: float | None = None
        self._finished_at: float | None = None
        if type(requires) is not tuple or requires:  # skip the common ()
            self.require(requires)

    @property
    def id(self) -> str:
        """Unique, URL-safe identifier (used in job tags and drawings)."""
        return _IDS.format(self._seq)

    @property
    def label(self) -> str:
        return self._label

    @property
    def critical(self) -> bool:
        """A failure of a critical step aborts its workflow."""
        return self._critical

    @property
    def forever(self) -> bool:
        """A forever step is not waited for: it is cancelled once the others end."""
        return self._forever

    @property
    def priority(self) -> Priority | None:
        """The job priority; ``None`` takes the workflow's."""
        return self._priority

    @property
    def requires(self) -> tuple[BaseStep, ...]:
        """The steps that must finish before this one starts."""
        return tuple(self._requires)

    @property
    def workflow(self) -> BaseStep | None:
        """The :class:`~aiohttp_jobs.Workflow` this step was added to."""
        return self._owner

    @property
    def state(self) -> StepState:
        return self._state

    @property
    def done(self) -> bool:
        return self._state.final

    @property
    def started_at(self) -> float | None:
        """When it started (``time.time()`` seconds), ``None`` if it never did."""
        return self._started_at

    @property
    def finished_at(self) -> float | None:
        return self._finished_at

    def exception(self) -> BaseException | None:
        """Why the step failed, ``None`` if it did not (or has not finished)."""
        return self._exception

    def require(self, *requires: Requirements) -> None:
        """Add requirements: steps (or the last step of sequences) of the same
        workflow that must finish, successfully or not, before this one starts."""
        owner = self._owner
        if owner is not None:
            owner._check_editable()
        for group in requires:
            for step in _flatten(group):
                if step is self:
                    raise WorkflowCycleError(
                        f"step {self.label!r} cannot require itself",
                        [self.label, self.label],
                    )
                if owner is not None and step._owner not in (None, owner):
                    raise WorkflowDefinitionError(
                        f"step {self.label!r} (in {owner!r}) cannot require "
                        f"{step.label!r}, which belongs to {step._owner!r}: a step "
                        "may only require steps of its own workflow"
                    )
                if self._requires is _NO_REQUIREMENTS:
                    self._requires = {}
                self._requires[step] = None
        if owner is not None:
            owner._requirements_changed()

    def _required(self) -> Iterable[BaseStep]:
        """The requirements without copying them (for the workflow's plan)."""
        return self._requires

    # -- what a holder of steps (a workflow) overrides ------------------------------

    def _check_editable(self) -> None:
        """Raise if the steps this one holds may no longer change."""

    def _requirements_changed(self) -> None:
        """A step held by this one gained requirements."""

    def _as_group(self) -> Group | None:
        """This step as a workflow holding steps, ``None`` for a plain step."""
        return None

    # -- moves of a run (called by the workflow's runner) ---------------------------

    def _join(self, owner: BaseStep) -> None:
        """Become a step of *owner* (a workflow checked that it may)."""
        self._owner = owner

    def _mark_ready(self) -> None:
        """Every requirement has finished: the step may start."""
        self._state = _READY

    def _mark_running(self) -> None:
        """The step starts now."""
        self._state = _RUNNING
        self._started_at = time.time()

    def _finish(self, state: StepState, exception: BaseException | None) -> None:
        """End in the final *state*, with the *exception* that caused it."""
        self._state = state
        self._exception = exception
        self._finished_at = time.time()

    def _discard(self) -> None:
        """The step will never start (or its start was interrupted): release what
        it holds, and end as cancelled if it was starting."""
        if self._state is _RUNNING:
            self._state = StepState.CANCELLED


class Step(BaseStep, Generic[_T]):
    """One coroutine to run as a job of a workflow.

    *body* is a coroutine (``fetch(url)``), or a coroutine function taking no
    argument (``fetch`` or ``functools.partial(fetch, url)``), called when the
    step starts.
    """

    __slots__ = ("_body", "_job", "_result")

    def __init__(
        self,
        body: Awaitable[_T] | Callable[[], Awaitable[_T]],
        *,
        label: str | None = None,
        requires: Requirements = (),
        critical: bool = True,
        forever: bool = False,
        priority: Priority | int | str | None = None,
    ) -> None:
        given = label
        if type(body) is CoroutineType and label is not None:
            pass  # the common case with a label: nothing to look at
        elif label is None:
            label = body_name(body)
        else:
            body_name(body)  # raises for what cannot be awaited
        if (
            (given is not None and (type(given) is not str or not given.strip()))
            or type(critical) is not bool
            or type(forever) is not bool
            or (priority is not None and type(priority) is not Priority)
        ):  # one test on the common path; the details only when something is off
            priority = _check_step(given, critical, forever, priority, body)
        # BaseStep.__init__, inlined: a workflow of 10,000 steps builds 10,000.
        self._seq = _IDS.next_seq()
        self._label = label
        self._critical = critical
        self._forever = forever
        self._priority = priority
        self._requires = _NO_REQUIREMENTS
        self._owner = None
        self._state = _IDLE
        self._exception = None
        self._started_at = None
        self._finished_at = None
        self._body: Awaitable[_T] | Callable[[], Awaitable[_T]] | None = body
        self._job: Job[_T] | None = None
        self._result: _T | None = None
        if type(requires) is not tuple or requires:  # skip the common ()
            self.require(requires)

    def __repr__(self) -> str:
        return f"<Step {self.label!r} {self.state.value}>"

    @property
    def job(self) -> Job[_T] | None:
        """The scheduler job that runs (or ran) this step."""
        return self._job

    @property
    def started_at(self) -> float | None:
        """When its job started (``time.time()`` seconds), ``None`` if it never did."""
        job = self._job
        return self._started_at if job is None else job.started_at

    @property
    def finished_at(self) -> float | None:
        job = self._job
        return self._finished_at if job is None else job.finished_at

    @property
    def state(self) -> StepState:
        job = self._job
        if self._state is StepState.RUNNING and job is not None:
            if job.pending:
                return StepState.READY  # spawned, but the scheduler has no slot yet
            if job.done:  # e.g. it ignored the cancellation of an aborted run
                self._record(job)
        return self._state

    def result(self) -> _T:
        """The value the step returned; raises its exception, or ``CancelledError``.

        Raises :class:`JobNotFinishedError` before the step finished.
        """
        self._check_finished()
        if self._state is StepState.CANCELLED:
            raise asyncio.CancelledError(f"step {self.label!r} was cancelled")
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[return-value]

    def exception(self) -> BaseException | None:
        """The exception the step raised; ``None`` if it succeeded or was cancelled."""
        self._check_finished()
        return self._exception

    def _check_finished(self) -> None:
        if not self.state.final:
            raise JobNotFinishedError(
                f"step {self.label!r} is {self.state.value}: await the workflow's "
                "run() before reading the step's result"
            )

    # -- moves of a run (called by the workflow's runner) ---------------------------

    def _start(self) -> Coroutine[object, object, _T]:
        """The step is starting: the coroutine its job runs (made from the body)."""
        self._state = _RUNNING
        body = self._body
        self._body = None
        if body is None:
            raise WorkflowStateError(f"step {self.label!r} has already run")
        if type(body) is CoroutineType:
            return body
        return make_coroutine(body, self._label)

    def _started(self, job: Job[_T]) -> None:
        """The scheduler took the step's coroutine as *job*."""
        self._job = job

    def _record(self, job: Job[_T]) -> StepState:
        """Copy the outcome of the finished *job*; return the step's new state."""
        state = job.state
        if state is JobState.SUCCEEDED:
            self._result = job.result()
            self._state = _SUCCEEDED
        elif state is JobState.FAILED:
            self._exception = job.exception()
            self._state = _FAILED
        else:
            self._state = _CANCELLED
        return self._state

    def _discard(self) -> None:
        body = self._body
        self._body = None
        if inspect.iscoroutine(body):
            body.close()
        if self._state is _RUNNING:  # its start was interrupted
            self._state = _CANCELLED


class Sequence:
    """Steps that run one after the other: each requires the one before.

    A sequence is added to a workflow as a whole; requiring a sequence means
    requiring its last step, and *requires* applies to its first.
    """

    __slots__ = ("_steps",)
    _steps: list[BaseStep]

    def __init__(
        self, *steps: BaseStep | Sequence, requires: Requirements = ()
    ) -> None:
        flat: list[BaseStep] = []
        previous: BaseStep | None = None
        for item in steps:
            chunk = item._steps if isinstance(item, Sequence) else [item]
            if not isinstance(item, (Sequence, BaseStep)):
                raise ConfigTypeError(
                    f"a Sequence holds Steps, Workflows or Sequences, got {item!r} "
                    f"({type(item).__name__})"
                )
            if previous is not None and chunk:
                chunk[0].require(previous)
            flat.extend(chunk)
            if chunk:
                previous = chunk[-1]
        if not flat:
            raise ConfigError("a Sequence needs at least one step")
        flat[0].require(requires)
        self._steps = flat

    def __repr__(self) -> str:
        return f"<Sequence of {len(self._steps)} steps>"

    @property
    def steps(self) -> tuple[BaseStep, ...]:
        return tuple(self._steps)

    @property
    def first(self) -> BaseStep:
        return self._steps[0]

    @property
    def last(self) -> BaseStep:
        return self._steps[-1]

    def require(self, *requires: Requirements) -> None:
        """Add requirements to the first step of the sequence."""
        self._steps[0].require(*requires)

    def __iter__(self) -> Iterator[BaseStep]:
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

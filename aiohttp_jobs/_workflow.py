"""Workflows: graphs of steps with requirements, run as jobs on a scheduler.

This module holds the model (:class:`Step`, :class:`Workflow`, :class:`Sequence`)
and its validation; running lives in ``_workflow_run``, listings and drawings in
``_workflow_render``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import itertools
import secrets
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar, Union

from ._errors import (
    ConfigError,
    JobNotFinishedError,
    NotAwaitableError,
    WorkflowCycleError,
    WorkflowDefinitionError,
    WorkflowStateError,
)
from ._priority import Priority, parse_priority

if TYPE_CHECKING:
    from ._job import Job
    from ._scheduler import Scheduler

__all__ = ["BaseStep", "Sequence", "Step", "StepState", "Workflow"]

_T = TypeVar("_T", covariant=True)

_ID_PREFIX = secrets.token_hex(3)
_next_seq = itertools.count(1).__next__

#: Workflows that have started running, by id (the dashboard looks them up).
_registry: weakref.WeakValueDictionary[str, Workflow] = weakref.WeakValueDictionary()


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
        return self in _FINAL


_FINAL = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.CANCELLED})

#: What a requirement may name: a step, a nested workflow, or a sequence (its last).
Requirement = Union["BaseStep", "Sequence"]
Requirements = Union[Requirement, Iterable[Requirement]]


def _flatten(requires: Requirements) -> list[BaseStep]:
    items: Iterable[Requirement]
    if isinstance(requires, (BaseStep, Sequence)):
        items = (requires,)
    else:
        items = requires
    out: list[BaseStep] = []
    for item in items:
        if isinstance(item, Sequence):
            out.append(item.last)
        elif isinstance(item, BaseStep):
            out.append(item)
        else:
            raise TypeError(
                f"a requirement must be a Step, a Workflow or a Sequence, "
                f"not {type(item).__name__}"
            )
    return out


class BaseStep:
    """What steps and nested workflows share: a label, requirements, flags, state."""

    __slots__ = (
        "__weakref__",
        "_critical",
        "_exception",
        "_finished_at",
        "_forever",
        "_id",
        "_index",
        "_label",
        "_owner",
        "_priority",
        "_requires",
        "_started_at",
        "_state",
    )

    def __init__(
        self,
        *,
        label: str,
        requires: Requirements,
        critical: bool,
        forever: bool,
        priority: Priority | int | str | None,
    ) -> None:
        self._id = f"{_ID_PREFIX}-{_next_seq():x}"
        self._label = label
        self._critical = bool(critical)
        self._forever = bool(forever)
        self._priority = None if priority is None else parse_priority(priority)
        self._requires: dict[BaseStep, None] = {}
        self._owner: Workflow | None = None
        self._index = -1
        self._state = StepState.IDLE
        self._exception: BaseException | None = None
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self.require(requires)

    @property
    def id(self) -> str:
        """Unique, URL-safe identifier (used in job tags and drawings)."""
        return self._id

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
    def workflow(self) -> Workflow | None:
        """The workflow this step was added to."""
        return self._owner

    @property
    def state(self) -> StepState:
        return self._state

    @property
    def done(self) -> bool:
        return self._state.final

    @property
    def started_at(self) -> float | None:
        """When it started (``loop.time()`` seconds), ``None`` if it never did."""
        return self._started_at

    @property
    def finished_at(self) -> float | None:
        return self._finished_at

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
                self._requires[step] = None
        if owner is not None:
            owner._plan = None

    def _outcome(self) -> str:
        raise NotImplementedError

    def _discard(self) -> None:
        """Release what a step that will never run holds (its coroutine)."""


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
        if not (inspect.isawaitable(body) or _is_async_callable(body)):
            raise NotAwaitableError(
                f"a step needs a coroutine or an async function, got "
                f"{body!r}: write 'async def', or wrap blocking code with "
                "asyncio.to_thread()"
            )
        if label is None:
            label = _name_of(body)
        super().__init__(
            label=label,
            requires=requires,
            critical=critical,
            forever=forever,
            priority=priority,
        )
        self._body: Awaitable[_T] | Callable[[], Awaitable[_T]] | None = body
        self._job: Job[_T] | None = None
        self._result: _T | None = None

    def __repr__(self) -> str:
        return f"<Step {self.label!r} {self.state.value}>"

    @property
    def job(self) -> Job[_T] | None:
        """The scheduler job that runs (or ran) this step."""
        return self._job

    @property
    def state(self) -> StepState:
        job = self._job
        if self._state is StepState.RUNNING and job is not None and job.pending:
            return StepState.READY  # spawned, but the scheduler has no slot yet
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
        if not self._state.final:
            raise JobNotFinishedError(
                f"step {self.label!r} is {self.state.value}: await the workflow's "
                "run() before reading the step's result"
            )

    def _coroutine(self) -> Coroutine[object, object, _T]:
        body = self._body
        self._body = None
        if body is None:
            raise WorkflowStateError(f"step {self.label!r} has already run")
        if inspect.iscoroutine(body):
            return body
        if inspect.isawaitable(body):
            return _await(body)
        return _call(body, self.label)

    def _discard(self) -> None:
        body = self._body
        self._body = None
        if inspect.iscoroutine(body):
            body.close()


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


async def _call(function: Callable[[], Awaitable[_T]], label: str) -> _T:
    awaitable = function()
    if not inspect.isawaitable(awaitable):
        raise NotAwaitableError(
            f"step {label!r}: {function!r} returned {awaitable!r}, which cannot "
            "be awaited"
        )
    return await awaitable


def _is_async_callable(obj: object) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - async __call__ of an instance
    )


def _name_of(body: object) -> str:
    while isinstance(body, functools.partial):
        body = body.func
    name = getattr(body, "__qualname__", None) or getattr(body, "__name__", None)
    return name if isinstance(name, str) else type(body).__name__


class Sequence:
    """Steps that run one after the other: each requires the one before.

    A sequence is added to a workflow as a whole; requiring a sequence means
    requiring its last step, and *requires* applies to its first.
    """

    __slots__ = ("_steps",)

    def __init__(
        self, *steps: BaseStep | Sequence, requires: Requirements = ()
    ) -> None:
        flat: list[BaseStep] = []
        previous: BaseStep | None = None
        for item in steps:
            chunk = item._steps if isinstance(item, Sequence) else [item]
            if not isinstance(item, (Sequence, BaseStep)):
                raise TypeError(
                    f"a Sequence holds Steps, Workflows or Sequences, "
                    f"not {type(item).__name__}"
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


class _Plan:
    """A validated workflow: steps in topological order, and who waits on whom."""

    __slots__ = ("dependents", "indegree", "order", "steps")

    def __init__(
        self,
        steps: list[BaseStep],
        order: list[BaseStep],
        dependents: list[list[int]],
        indegree: list[int],
    ) -> None:
        self.steps = steps
        self.order = order
        self.dependents = dependents
        self.indegree = indegree


class Workflow(BaseStep):
    """A graph of steps run as jobs on a scheduler; itself usable as a step.

    ``await workflow.run()`` returns ``True`` when every step other than the
    forever ones finished within *timeout* and no critical step failed. Otherwise
    a critical workflow raises (:class:`StepFailedError` or
    :class:`WorkflowTimeoutError`) and a non-critical one returns ``False``.
    *window* caps how many of its steps run at once.
    """

    __slots__ = (
        "_phase",
        "_plan",
        "_reason",
        "_result",
        "_scheduler",
        "_steps",
        "_timed_out",
        "_timeout",
        "_window",
    )

    def __init__(
        self,
        *steps: BaseStep | Sequence,
        label: str | None = None,
        timeout: float | None = None,
        window: int | None = None,
        critical: bool = True,
        forever: bool = False,
        requires: Requirements = (),
        priority: Priority | int | str | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise ConfigError(
                f"invalid workflow timeout {timeout!r}: give seconds > 0, or None "
                "for no limit"
            )
        if window is not None and (isinstance(window, bool) or window < 1):
            raise ConfigError(
                f"invalid workflow window {window!r}: give the maximum number of "
                "steps running at once (>= 1), or None for no limit"
            )
        super().__init__(
            label=label or "workflow",
            requires=requires,
            critical=critical,
            forever=forever,
            priority=priority,
        )
        self._timeout = None if timeout is None else float(timeout)
        self._window = window
        self._scheduler = scheduler
        self._steps: dict[BaseStep, None] = {}
        self._plan: _Plan | None = None
        self._phase = "new"  # "new", "running", "done"
        self._result = False
        self._timed_out = False
        self._reason: BaseStep | None = None
        self.add(*steps)

    def __repr__(self) -> str:
        return f"<Workflow {self.label!r} {self.state.value} steps={len(self._steps)}>"

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[BaseStep]:
        return iter(self._steps)

    def __contains__(self, step: object) -> bool:
        return step in self._steps

    @property
    def steps(self) -> tuple[BaseStep, ...]:
        """The steps, in the order they were added."""
        return tuple(self._steps)

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @property
    def window(self) -> int | None:
        return self._window

    @property
    def timed_out(self) -> bool:
        """Whether the last run stopped because of the timeout."""
        return self._timed_out

    @property
    def failed_step(self) -> BaseStep | None:
        """The critical step whose failure aborted the run, if any."""
        return self._reason

    @classmethod
    def find(cls, workflow_id: str) -> Workflow | None:
        """The workflow with this id, if it has started and is still referenced."""
        return _registry.get(workflow_id)

    def add(self, *steps: BaseStep | Sequence) -> None:
        """Add steps, nested workflows or sequences (each step to one workflow only)."""
        self._check_editable()
        for item in steps:
            if isinstance(item, Sequence):
                self.add(*item._steps)
                continue
            if not isinstance(item, BaseStep):
                raise TypeError(
                    f"a workflow holds Steps, Workflows or Sequences, not "
                    f"{type(item).__name__}; wrap a coroutine with Step(...)"
                )
            if item._owner is self:
                continue
            if item._owner is not None:
                raise WorkflowDefinitionError(
                    f"step {item.label!r} already belongs to {item._owner!r}: a step "
                    f"runs in one workflow only; create another Step for {self!r}"
                )
            if item is self or (isinstance(item, Workflow) and item._encloses(self)):
                raise WorkflowDefinitionError(
                    f"{item!r} cannot be nested inside itself"
                )
            item._owner = self
            self._steps[item] = None
        self._plan = None

    def _encloses(self, other: Workflow) -> bool:
        node: Workflow | None = other
        while node is not None:
            if node is self:
                return True
            node = node._owner
        return False

    def _check_editable(self) -> None:
        if self._phase != "new":
            raise WorkflowStateError(
                f"{self!r} has {'run' if self._phase == 'done' else 'started'}: "
                "its steps and requirements can no longer change"
            )

    # -- validation -------------------------------------------------------------

    def check_cycles(self) -> bool:
        """Return ``True`` when the requirements (nested ones too) have no cycle;
        raise :class:`WorkflowCycleError` naming the steps of a cycle otherwise."""
        self._prepare()
        for step in self._steps:
            if isinstance(step, Workflow):
                step.check_cycles()
        return True

    def validate(self) -> None:
        """Raise a clear error for any mistake that would break a run."""
        self.check_cycles()

    def topological(self) -> list[BaseStep]:
        """The steps in an order where each comes after its requirements."""
        return list(self._prepare().order)

    def _prepare(self) -> _Plan:
        plan = self._plan
        if plan is not None:
            return plan
        steps = list(self._steps)
        for index, step in enumerate(steps):
            step._index = index
        dependents: list[list[int]] = [[] for _ in steps]
        indegree = [0] * len(steps)
        forever = 0
        for index, step in enumerate(steps):
            forever += step._forever
            for required in step._requires:
                if required._owner is not self:
                    where = (
                        "is in no workflow"
                        if required._owner is None
                        else f"belongs to {required._owner!r}"
                    )
                    raise WorkflowDefinitionError(
                        f"step {step.label!r} requires {required.label!r}, which "
                        f"{where}: add it to {self!r} or drop the requirement"
                    )
                if required._forever:
                    raise WorkflowDefinitionError(
                        f"step {step.label!r} requires the forever step "
                        f"{required.label!r}, which is only cancelled at the end: "
                        "it would never start"
                    )
                dependents[required._index].append(index)
                indegree[index] += 1
        if self._window is not None and forever >= self._window:
            raise WorkflowDefinitionError(
                f"{self!r} has window={self._window} and {forever} forever steps, "
                "which could hold every slot: raise the window"
            )
        remaining = indegree.copy()
        order = [step for step, n in zip(steps, remaining) if n == 0]
        for step in order:  # grows while iterating: Kahn's algorithm
            for index in dependents[step._index]:
                remaining[index] -= 1
                if remaining[index] == 0:
                    order.append(steps[index])
        if len(order) != len(steps):
            cycle = _find_cycle([s for s, n in zip(steps, remaining) if n > 0])
            labels = [s.label for s in cycle]
            raise WorkflowCycleError(
                f"the requirements of {self!r} form a cycle: "
                f"{' -> '.join(labels)}; drop one of these requirements",
                labels,
            )
        plan = self._plan = _Plan(steps, order, dependents, indegree)
        return plan

    # -- outcome ----------------------------------------------------------------

    def result(self) -> bool:
        """What the run returned: ``True`` for a full success."""
        if not self._state.final:
            raise JobNotFinishedError(
                f"{self!r} has not finished: await its run() first"
            )
        return self._result

    def exception(self) -> BaseException | None:
        """Why the run failed (:class:`StepFailedError`, :class:`WorkflowTimeoutError`,
        ...), also for a non-critical workflow that returned ``False``."""
        if not self._state.final:
            raise JobNotFinishedError(
                f"{self!r} has not finished: await its run() first"
            )
        return self._exception

    async def run(self, *, scheduler: Scheduler | None = None) -> bool:
        """Run every step as a job of *scheduler* (else the one given to the
        constructor, else a private scheduler) and wait for the outcome."""
        from ._workflow_run import run_workflow

        return await run_workflow(self, scheduler or self._scheduler)

    # -- inspection ---------------------------------------------------------------

    def listing(self) -> str:
        """One line per step in topological order: rank, flags, state, label,
        result or exception, and the ranks it requires."""
        from ._workflow_render import listing

        return listing(self)

    def debrief(self) -> str:
        """The listing, counts per state, why the run failed, and tracebacks."""
        from ._workflow_render import debrief

        return debrief(self)

    def why(self) -> str:
        """One sentence saying how the run ended."""
        from ._workflow_render import why

        return why(self)

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language (nested workflows as clusters)."""
        from ._workflow_render import to_dot

        return to_dot(self)

    def to_svg(self) -> str:
        """A standalone SVG drawing with the steps' current states."""
        from ._workflow_svg import to_svg

        return to_svg(self)

    def describe(self) -> dict[str, object]:
        """A JSON-ready snapshot: ids, labels, flags, states and requirements."""
        from ._workflow_render import describe

        return describe(self)


def _find_cycle(candidates: list[BaseStep]) -> list[BaseStep]:
    """A cycle among *candidates* (steps left over by Kahn's algorithm, each of
    which has a requirement among them); the first step is repeated at the end."""
    left = set(candidates)
    step = candidates[0]
    seen: dict[BaseStep, int] = {}
    path: list[BaseStep] = []
    while step not in seen:
        seen[step] = len(path)
        path.append(step)
        step = next(r for r in step._requires if r in left)
    cycle = path[seen[step] :]
    cycle.reverse()  # read as "a -> b": b requires a
    return [*cycle, cycle[0]]

"""Workflows: graphs of steps with requirements, run as jobs on a scheduler.

This module holds :class:`Workflow` and its validation; steps and sequences live
in ``_workflow_step``, running in ``_workflow_run``, listings in
``_workflow_render`` and the drawing in ``_workflow_svg``.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._core.priority import Priority
from .._errors import (
    ConfigError,
    JobNotFinishedError,
    WorkflowCycleError,
    WorkflowDefinitionError,
    WorkflowStateError,
)
from .step import BaseStep, Requirements, Sequence, Step, StepState

if TYPE_CHECKING:
    from .._core.job import Job
    from .._core.scheduler import Scheduler

__all__ = ["BaseStep", "Sequence", "Step", "StepState", "Workflow"]

#: Workflows that have started running, by id (the dashboard looks them up).
_registry: weakref.WeakValueDictionary[str, Workflow] = weakref.WeakValueDictionary()


class _Plan:
    """A validated workflow: steps in topological order, and who waits on whom.

    The dependents of step ``i`` are ``targets[first[i]:first[i + 1]]`` (indexes
    into ``steps``): two flat lists rather than one list per step, so that a big
    running workflow gives the garbage collector few objects to scan.
    """

    __slots__ = ("first", "forever", "indegree", "order", "roots", "steps", "targets")

    def __init__(
        self,
        steps: list[BaseStep],
        order: list[BaseStep],
        first: list[int],
        targets: list[int],
        indegree: list[int],
        roots: list[int],
        forever: int,
    ) -> None:
        self.steps = steps
        self.order = order
        self.first = first
        self.targets = targets
        self.indegree = indegree
        self.roots = roots  #: indexes of the steps that require nothing
        self.forever = forever  #: how many steps are forever steps


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
        super().__init__(label or "workflow", requires, critical, forever, priority)
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

    @classmethod
    def of_job(cls, job: Job[object]) -> Workflow | None:
        """The outermost workflow that *job* is a step of (from its first
        ``workflow:<id>`` tag), if that workflow is still referenced."""
        for tag in job.tags:
            if tag.startswith("workflow:"):
                return _registry.get(tag[len("workflow:") :])
        return None

    def add(self, *steps: BaseStep | Sequence) -> None:
        """Add steps, nested workflows or sequences (each step to one workflow only)."""
        self._check_editable()
        added = self._steps
        for item in steps:
            if type(item) is Step and item._owner is None:  # the common case
                item._owner = self
                added[item] = None
                continue
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
        count = len(steps)
        roots: list[int] = []
        dependents: list[BaseStep] = []
        forever = 0
        for index, step in enumerate(steps):
            step._index = index
            forever += step._forever
            if step._requires:
                dependents.append(step)
            else:
                roots.append(index)
        outdegree = [0] * (count + 1)
        indegree = [0] * count
        for step in dependents:
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
                outdegree[required._index] += 1
                indegree[step._index] += 1
        if self._window is not None and forever >= self._window:
            raise WorkflowDefinitionError(
                f"{self!r} has window={self._window} and {forever} forever steps, "
                "which could hold every slot: raise the window"
            )
        first = list(itertools.accumulate(outdegree, initial=0))[:-1]
        if not dependents:  # no requirements at all: any order is topological
            plan = self._plan = _Plan(
                steps, steps.copy(), first, [], indegree, roots, forever
            )
            return plan
        cursor = first.copy()
        targets = [0] * first[-1]
        for step in dependents:
            for required in step._requires:
                slot = cursor[required._index]
                targets[slot] = step._index
                cursor[required._index] = slot + 1
        remaining = indegree.copy()
        order = [steps[index] for index in roots]
        for step in order:  # grows while iterating: Kahn's algorithm
            i = step._index
            for k in range(first[i], first[i + 1]):
                index = targets[k]
                remaining[index] -= 1
                if remaining[index] == 0:
                    order.append(steps[index])
        if len(order) != len(steps):
            cycle = _find_cycle(
                [s for s, n in zip(steps, remaining, strict=True) if n > 0]
            )
            labels = [s.label for s in cycle]
            raise WorkflowCycleError(
                f"the requirements of {self!r} form a cycle: "
                f"{' -> '.join(labels)}; drop one of these requirements",
                labels,
            )
        plan = self._plan = _Plan(
            steps, order, first, targets, indegree, roots, forever
        )
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
        from .run import run_workflow

        if scheduler is None:  # not "or": an idle Scheduler is falsy (empty)
            scheduler = self._scheduler
        return await run_workflow(self, scheduler)

    # -- inspection ---------------------------------------------------------------

    def listing(self) -> str:
        """One line per step in topological order: rank, flags, state, label,
        result or exception, and the ranks it requires."""
        from .render import listing

        return listing(self)

    def debrief(self) -> str:
        """The listing, counts per state, why the run failed, and tracebacks."""
        from .render import debrief

        return debrief(self)

    def why(self) -> str:
        """One sentence saying how the run ended."""
        from .render import why

        return why(self)

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language (nested workflows as clusters)."""
        from .render import to_dot

        return to_dot(self)

    def to_svg(self) -> str:
        """A standalone SVG drawing with the steps' current states."""
        from .svg import to_svg

        return to_svg(self)

    def describe(self) -> dict[str, object]:
        """A JSON-ready snapshot: ids, labels, flags, states and requirements."""
        from .render import describe

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

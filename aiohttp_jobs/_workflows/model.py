"""Workflows: graphs of steps with requirements, run as jobs on a scheduler.

This module holds :class:`Workflow`, its validation and the registry of the
workflows each scheduler has run. It sits at the top of the package's workflow
modules: it imports ``step`` (steps, sequences, states), ``plan`` (the graph
order), ``run`` (the runner) and ``render``/``svg`` (the views), and none of them
imports it; they see a workflow through the :class:`~.step.Group` protocol.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from .._checks import check_count, check_duration, check_instance, check_name
from .._core.job import Job
from .._core.priority import Priority
from .._core.scheduler import Scheduler
from .._errors import (
    ConfigTypeError,
    JobNotFinishedError,
    WorkflowCycleError,
    WorkflowDefinitionError,
    WorkflowStateError,
)
from . import render, svg
from .plan import Plan, make_plan
from .run import run_workflow
from .step import BaseStep, Group, Requirements, Sequence, Step, StepState

__all__ = ["BaseStep", "Sequence", "Step", "StepState", "Workflow"]

#: The workflows each scheduler has started, by id, while they are referenced
#: (see :meth:`Workflow.of_scheduler`). Both sides are weak: a closed scheduler
#: that nothing references leaves, and so does a workflow nobody keeps.
_registries: weakref.WeakKeyDictionary[
    Scheduler, weakref.WeakValueDictionary[str, Workflow]
] = weakref.WeakKeyDictionary()


def _check_scheduler(scheduler: object, *, optional: bool = True) -> Scheduler | None:
    what = "an aiohttp_jobs.Scheduler"
    return check_instance("scheduler", scheduler, Scheduler, what, optional=optional)


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
        if label is not None:
            check_name("label", label)
        if timeout is not None:
            timeout = check_duration("timeout", timeout, positive=True)
        if window is not None:
            window = check_count("window", window, minimum=1)
        super().__init__(label or "workflow", requires, critical, forever, priority)
        self._timeout = timeout
        self._window = window
        #: The scheduler given to the constructor, then the one the run used.
        self._scheduler = _check_scheduler(scheduler)
        self._steps: dict[BaseStep, int] = {}  # each step's index: 0, 1, 2, ...
        self._plan: Plan | None = None
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

    # -- the registry -------------------------------------------------------------

    @classmethod
    def of_scheduler(cls, scheduler: Scheduler) -> list[Workflow]:
        """The workflows whose run started on *scheduler*, oldest first, as long
        as something else references them (the registry holds them weakly).

        Only outermost workflows are listed (a nested one is part of its
        parent); :meth:`find` finds both. One application's scheduler lists that
        application's workflows only.
        """
        _check_scheduler(scheduler, optional=False)
        registry = _registries.get(scheduler)
        if registry is None:
            return []
        return [w for w in list(registry.values()) if w.workflow is None]

    @classmethod
    def find(
        cls, workflow_id: str, scheduler: Scheduler | None = None
    ) -> Workflow | None:
        """The workflow with this id among those that started on *scheduler*
        (any scheduler's when ``None``), if it is still referenced."""
        check_name("workflow_id", workflow_id)
        if scheduler is not None:
            _check_scheduler(scheduler)
            registry = _registries.get(scheduler)
            return None if registry is None else registry.get(workflow_id)
        for registry in list(_registries.values()):
            found = registry.get(workflow_id)
            if found is not None:
                return found
        return None

    @classmethod
    def of_job(cls, job: Job[object]) -> Workflow | None:
        """The outermost workflow that *job* is a step of (from its first
        ``workflow:<id>`` tag), if that workflow is still referenced."""
        check_instance("job", job, Job, "an aiohttp_jobs.Job")
        for tag in job.tags:
            if tag.startswith("workflow:"):
                return cls.find(tag[len("workflow:") :])
        return None

    # -- building -------------------------------------------------------------------

    def add(self, *steps: BaseStep | Sequence) -> None:
        """Add steps, nested workflows or sequences (each step to one workflow only)."""
        self._check_editable()
        added = self._steps
        for item in steps:
            if type(item) is Step and item.workflow is None:  # the common case
                item._join(self)
                added[item] = len(added)
                continue
            if isinstance(item, Sequence):
                self.add(*item.steps)
                continue
            if not isinstance(item, BaseStep):
                raise ConfigTypeError(
                    f"a workflow holds Steps, Workflows or Sequences, not "
                    f"{item!r} ({type(item).__name__}); wrap a coroutine with "
                    "Step(...)"
                )
            owner = item.workflow
            if owner is self:
                continue
            if owner is not None:
                raise WorkflowDefinitionError(
                    f"step {item.label!r} already belongs to {owner!r}: a step "
                    f"runs in one workflow only; create another Step for {self!r}"
                )
            if item is self or (isinstance(item, Workflow) and item._encloses(self)):
                raise WorkflowDefinitionError(
                    f"{item!r} cannot be nested inside itself"
                )
            item._join(self)
            added[item] = len(added)
        self._plan = None

    def _encloses(self, other: BaseStep) -> bool:
        node: BaseStep | None = other
        while node is not None:
            if node is self:
                return True
            node = node.workflow
        return False

    def _check_editable(self) -> None:
        if self._phase != "new":
            raise WorkflowStateError(
                f"{self!r} has {'run' if self._phase == 'done' else 'started'}: "
                "its steps and requirements can no longer change"
            )

    def _requirements_changed(self) -> None:
        self._plan = None

    def _as_group(self) -> Group:
        return self

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
        plan = self._prepare()
        steps = list(self._steps)
        assert plan.order is not None  # _prepare() raised otherwise
        return [steps[i] for i in plan.order]

    def _prepare(self) -> Plan:
        """The plan of the steps (cached until they change); raises for a cycle,
        a requirement outside the workflow, or forever steps filling the window."""
        plan = self._plan
        if plan is not None:
            return plan
        index = self._steps
        steps = list(index)
        edges: list[tuple[int, list[int]]] = []
        forever: list[int] = []
        for i, step in enumerate(steps):
            if step.forever:
                forever.append(i)
            required = step._required()
            if required:
                try:
                    edges.append((i, list(map(index.__getitem__, required))))
                except KeyError:
                    self._outside(step)
                    raise
        if self._window is not None and len(forever) >= self._window:
            raise WorkflowDefinitionError(
                f"{self!r} has window={self._window} and {len(forever)} forever "
                "steps, which could hold every slot: raise the window"
            )
        plan = make_plan(len(steps), edges, len(forever))
        for i in forever:  # rare: checked here, off the common path
            dependents = plan.dependents(i)
            if dependents:
                raise WorkflowDefinitionError(
                    f"step {steps[dependents[0]].label!r} requires the forever "
                    f"step {steps[i].label!r}, which is only cancelled at the "
                    "end: it would never start"
                )
        if plan.order is None:
            labels = [steps[i].label for i in plan.cycle]
            raise WorkflowCycleError(
                f"the requirements of {self!r} form a cycle: "
                f"{' -> '.join(labels)}; drop one of these requirements",
                labels,
            )
        self._plan = plan
        return plan

    def _outside(self, step: BaseStep) -> None:
        """Raise for the requirement of *step* that is not a step of this workflow."""
        for required in step._required():
            if required not in self._steps:
                owner = required.workflow
                where = (
                    "is in no workflow" if owner is None else f"belongs to {owner!r}"
                )
                raise WorkflowDefinitionError(
                    f"step {step.label!r} requires {required.label!r}, which "
                    f"{where}: add it to {self!r} or drop the requirement"
                )

    # -- running ------------------------------------------------------------------

    async def run(self, *, scheduler: Scheduler | None = None) -> bool:
        """Run every step as a job of *scheduler* (else the one given to the
        constructor, else a private scheduler) and wait for the outcome."""
        _check_scheduler(scheduler)
        owner = self.workflow
        if owner is not None:
            raise WorkflowStateError(
                f"{self!r} is nested in {owner!r}: run the outermost "
                "workflow, which runs this one"
            )
        self._check_editable()
        self.validate()
        self._freeze()
        if scheduler is None:  # not "or": an idle Scheduler is falsy (empty)
            scheduler = self._scheduler
        return await run_workflow(self, scheduler)

    def _freeze(self) -> None:
        """No more changes: the run begins (nested workflows included)."""
        self._phase = "running"
        for step in self._steps:
            if isinstance(step, Workflow):
                step._freeze()

    # -- moves of a run (called by the runner) ---------------------------------------

    def _begin(self, scheduler: Scheduler) -> None:
        """The run of this workflow starts on *scheduler*: list it there."""
        self._scheduler = scheduler
        registry = _registries.get(scheduler)
        if registry is None:
            registry = _registries[scheduler] = weakref.WeakValueDictionary()
        registry[self.id] = self
        self._mark_running()

    def _finish(self, state: StepState, exception: BaseException | None) -> None:
        super()._finish(state, exception)
        self._phase = "done"

    def _conclude(
        self, error: Exception | None, failed: BaseStep | None, timed_out: bool
    ) -> None:
        """The run ended: successfully when *error* is ``None``."""
        self._reason = failed
        self._timed_out = timed_out
        self._result = error is None
        self._finish(StepState.FAILED if error else StepState.SUCCEEDED, error)

    def _discard(self) -> None:
        """Never started, or stopped early: so do its steps that were not done."""
        super()._discard()
        self._phase = "done"
        for step in self._steps:
            if not step.state.final:
                step._discard()

    # -- outcome ----------------------------------------------------------------

    def result(self) -> bool:
        """What the run returned: ``True`` for a full success."""
        if not self.state.final:
            raise JobNotFinishedError(
                f"{self!r} has not finished: await its run() first"
            )
        return self._result

    def exception(self) -> BaseException | None:
        """Why the run failed (:class:`StepFailedError`, :class:`WorkflowTimeoutError`,
        ...), also for a non-critical workflow that returned ``False``."""
        if not self.state.final:
            raise JobNotFinishedError(
                f"{self!r} has not finished: await its run() first"
            )
        return super().exception()

    # -- inspection ---------------------------------------------------------------

    def listing(self) -> str:
        """One line per step in topological order: rank, flags, state, label,
        result or exception, and the ranks it requires."""
        return render.listing(self)

    def debrief(self) -> str:
        """The listing, counts per state, why the run failed, and tracebacks."""
        return render.debrief(self)

    def why(self) -> str:
        """One sentence saying how the run ended."""
        return render.why(self)

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language (nested workflows as clusters)."""
        return render.to_dot(self)

    def to_svg(self) -> str:
        """A standalone SVG drawing with the steps' current states."""
        return svg.to_svg(self)

    def describe(self) -> dict[str, object]:
        """A JSON-ready snapshot: ids, labels, flags, states and requirements."""
        return render.describe(self)

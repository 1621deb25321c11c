"""Running a workflow: each step becomes a job as soon as its requirements end.

Work is O(steps + requirements): every step keeps a count of unfinished
requirements; a finished step decrements its dependents' counts (a job done
callback, no rescan) and the ones reaching zero join a ready queue, from which
the driver spawns while the window has room. Nested workflows run as plain tasks
driving their own steps on the same scheduler, so that a waiting orchestrator
never holds one of the scheduler's slots.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from .._core.priority import Priority
from .._core.scheduler import START_BATCH
from .._errors import (
    StepFailedError,
    WorkflowStateError,
    WorkflowTimeoutError,
)
from .model import BaseStep, Step, StepState, Workflow, _registry

if TYPE_CHECKING:
    from .._core.job import Job
    from .._core.scheduler import Scheduler

__all__ = ["run_workflow"]

_SUCCEEDED = StepState.SUCCEEDED
_READY = StepState.READY


async def run_workflow(workflow: Workflow, scheduler: Scheduler | None) -> bool:
    """Validate *workflow*, run it on *scheduler* (or a private one), conclude."""
    if workflow._owner is not None:
        raise WorkflowStateError(
            f"{workflow!r} is nested in {workflow._owner!r}: run the outermost "
            "workflow, which runs this one"
        )
    workflow._check_editable()
    workflow.validate()
    _freeze(workflow)
    private = scheduler is None
    if scheduler is None:
        from .._core.scheduler import Scheduler

        scheduler = Scheduler(limit=None, history_limit=0)
    try:
        run = _Run(workflow, scheduler, workflow, Priority.NORMAL)
        return await run.execute()
    finally:
        if private:
            await scheduler.close()


def _freeze(workflow: Workflow) -> None:
    workflow._phase = "running"
    for step in workflow._steps:
        if isinstance(step, Workflow):
            _freeze(step)


def _discard(step: BaseStep) -> None:
    """A step that will never start: release its coroutine (nested ones too)."""
    step._discard()
    if step._state is StepState.RUNNING:  # its spawn() was interrupted
        step._state = StepState.CANCELLED
    if isinstance(step, Workflow):
        step._phase = "done"
        for inner in step._steps:
            if not inner._state.final:
                _discard(inner)


class _Run:
    """The state of one workflow's run; callbacks feed it, ``_drive`` spawns."""

    __slots__ = (
        "active",
        "failure",
        "first",
        "indegree",
        "late",
        "loop",
        "priority",
        "ready",
        "remaining",
        "root",
        "scheduler",
        "steps",
        "stopping",
        "tags",
        "targets",
        "timed_out",
        "waiter",
        "window",
        "workflow",
    )

    def __init__(
        self,
        workflow: Workflow,
        scheduler: Scheduler,
        root: Workflow,
        priority: Priority,
    ) -> None:
        plan = workflow._prepare()
        self.workflow = workflow
        self.scheduler = scheduler
        self.root = root
        self.priority = priority if workflow._priority is None else workflow._priority
        self.steps = plan.steps
        self.first = plan.first
        self.targets = plan.targets
        self.indegree = plan.indegree.copy()
        self.ready = deque(plan.roots)
        self.remaining = len(self.steps) - plan.forever
        self.window = workflow._window or len(self.steps) + 1
        self.active: dict[Job[object] | asyncio.Task[bool], BaseStep] = {}
        self.failure: BaseStep | None = None
        self.timed_out = False
        self.late: list[str] = []
        self.stopping = False
        self.waiter: asyncio.Future[None] | None = None
        tags = [f"workflow:{root.id}"]
        if workflow is not root:
            tags.append(f"workflow:{workflow.id}")
        self.tags = tuple(tags)
        self.loop = asyncio.get_running_loop()

    async def execute(self) -> bool:
        workflow = self.workflow
        loop = self.loop
        _registry[workflow.id] = workflow
        workflow._state = StepState.RUNNING
        workflow._started_at = time.time()
        for index in self.ready:
            self.steps[index]._state = StepState.READY
        timer = (
            None
            if workflow._timeout is None
            else loop.call_later(workflow._timeout, self._on_timeout)
        )
        try:
            await self._drive()
        except BaseException as exc:
            await self._stop()
            workflow._finished_at = time.time()
            workflow._phase = "done"
            if isinstance(exc, asyncio.CancelledError):
                workflow._state = StepState.CANCELLED
            else:
                workflow._state = StepState.FAILED
                workflow._exception = exc
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if self.timed_out and self.failure is None:
            self.late = [
                s._label for s in self.steps if not s.state.final and not s._forever
            ]
        await self._stop()
        return self._conclude()

    # -- the driver -------------------------------------------------------------

    async def _drive(self) -> None:
        ready = self.ready
        active = self.active
        window = self.window
        steps = self.steps
        loop = self.loop
        scheduler = self.scheduler
        try_spawn = scheduler._try_spawn
        wait_and_spawn = scheduler._wait_and_spawn
        job_done = self._job_done
        tags = self.tags
        priority = self.priority
        running = StepState.RUNNING
        while True:
            budget = START_BATCH
            while (
                ready
                and len(active) < window
                and self.failure is None
                and not self.timed_out
            ):
                if not budget:  # let what started run first (see START_BATCH)
                    await asyncio.sleep(0)
                    budget = START_BATCH
                    continue
                budget -= 1
                step = steps[ready.popleft()]
                step._state = running
                if not isinstance(step, Step):
                    assert isinstance(step, Workflow)
                    self._launch_nested(step)
                    continue
                prio = step._priority
                if prio is None:
                    prio = priority
                coro = step._coroutine()
                label = step._label
                try:
                    # The job starts (or queues) here with its done callback
                    # set; only a full pending list makes the driver wait.
                    job = try_spawn(
                        coro, label, prio, tags, None, job_done
                    ) or await wait_and_spawn(coro, label, prio, tags, None, job_done)
                except Exception as exc:  # e.g. the scheduler was closed
                    step._state = StepState.FAILED
                    step._exception = exc
                    step._finished_at = time.time()
                    self._settle(step)
                    continue
                step._job = job
                active[job] = step
            if self.failure is not None or self.timed_out or self.remaining == 0:
                return
            if not active:  # pragma: no cover - prevented by validation
                raise RuntimeError(f"{self.workflow!r} cannot progress: report a bug")
            waiter = self.waiter = loop.create_future()
            await waiter
            self.waiter = None

    def _launch_nested(self, step: Workflow) -> None:
        inner = _Run(step, self.scheduler, self.root, self.priority)
        task = self.loop.create_task(inner.execute(), name=f"workflow {step.label}")
        self.active[task] = step
        task.add_done_callback(self._task_done)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_timeout(self) -> None:
        self.timed_out = True
        self._wake()

    # -- outcomes, as callbacks -------------------------------------------------

    def _job_done(self, job: Job[object]) -> None:
        step = self.active.pop(job, None)
        if step is None:  # already settled by _stop()
            return
        assert isinstance(step, Step)
        step._record(job)
        self._settle(step)

    def _task_done(self, task: asyncio.Task[bool]) -> None:
        step = self.active.pop(task, None)
        if step is None:
            return
        _record_task(step, task)  # type: ignore[arg-type]
        self._settle(step)

    def _settle(self, step: BaseStep) -> None:
        """A step reached a final state: abort, or release its dependents."""
        if self.stopping:
            return
        if step._state is not _SUCCEEDED and step._critical:
            if self.failure is None:
                self.failure = step
            self._wake()
            return
        if not step._forever:
            self.remaining -= 1
        first = self.first
        i = step._index
        start, end = first[i], first[i + 1]
        if start != end:
            indegree = self.indegree
            targets = self.targets
            ready = self.ready
            steps = self.steps
            for index in targets[start:end]:
                left = indegree[index] - 1
                indegree[index] = left
                if left == 0:
                    ready.append(index)
                    steps[index]._state = _READY
        # The driver only has work when a step is ready (newly, or held back by
        # the window) or when nothing is left to wait for.
        if self.ready or not self.remaining:
            self._wake()

    # -- the end ----------------------------------------------------------------

    async def _stop(self) -> None:
        """Cancel what still runs (forever steps, or everything on an abort),
        wait for it, and release the steps that never started."""
        self.stopping = True
        active = self.active
        if active:
            closing = []
            tasks = []
            for handle in active:
                if isinstance(handle, asyncio.Task):
                    handle.cancel()
                    tasks.append(handle)
                else:
                    closing.append(handle.close())
            if closing:
                await asyncio.gather(*closing, return_exceptions=True)
            if tasks:
                await asyncio.wait(tasks)
            for handle, step in list(active.items()):
                if isinstance(handle, asyncio.Task):
                    _record_task(step, handle)  # type: ignore[arg-type]
                    del active[handle]
                elif handle.done:
                    assert isinstance(step, Step)
                    step._record(handle)
                    del active[handle]
        if not self.remaining and self.failure is None and not self.timed_out:
            return  # a full run: every step is final, forever ones just above
        waiting = set(active.values())  # jobs that ignored their cancellation
        for step in self.steps:
            if not step._state.final and step not in waiting:
                _discard(step)

    def _conclude(self) -> bool:
        workflow = self.workflow
        workflow._finished_at = time.time()
        workflow._phase = "done"
        error: Exception
        failed = self.failure
        if failed is not None:
            cause = failed._exception
            if cause is None:
                what = "was cancelled"
            elif isinstance(failed, Workflow):
                what = f"failed ({cause})"
            else:
                what = f"failed: {cause!r}"
            error = StepFailedError(
                f"workflow {workflow.label!r} aborted: critical step "
                f"{failed.label!r} {what}",
                failed.label,
            )
            error.__cause__ = cause
            workflow._reason = failed
        elif self.timed_out:
            workflow._timed_out = True
            late = self.late
            shown = ", ".join(repr(label) for label in late[:5])
            more = f" and {len(late) - 5} more" if len(late) > 5 else ""
            error = WorkflowTimeoutError(
                f"workflow {workflow.label!r} did not finish within "
                f"{workflow._timeout:g} s; unfinished steps: {shown}{more}"
            )
        else:
            workflow._state = StepState.SUCCEEDED
            workflow._result = True
            return True
        workflow._state = StepState.FAILED
        workflow._exception = error
        workflow._result = False
        if workflow._critical:
            raise error
        return False


def _record_task(step: Workflow, task: asyncio.Task[bool]) -> None:
    """The outcome of a nested workflow; its run already set it, unless the task
    was cancelled before it began or died of an unexpected error."""
    error = None if task.cancelled() else task.exception()  # always retrieve it
    if step._state.final:
        return
    step._finished_at = time.time()
    if task.cancelled():
        step._state = StepState.CANCELLED
        _discard(step)
    else:
        step._state = StepState.FAILED
        step._exception = error

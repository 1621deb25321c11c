"""Running a workflow: each step becomes a job as soon as its requirements end.

Work is O(steps + requirements): every step keeps a count of unfinished
requirements; a finished step decrements its dependents' counts (in its job's
done callback, no rescan) and starts the ones reaching zero right there, unless
the window, the per-turn batch or steps queued before them hold them back: those
join a ready queue, from which the driver spawns. Nested workflows run as plain
tasks driving their own steps on the same scheduler, so that a waiting
orchestrator never holds one of the scheduler's slots.

Steps start through the scheduler's public API: ``spawn_nowait()`` while the
pending list has room, ``await spawn()`` when it is full, then
``add_done_callback()``. The runner changes steps and workflows only through
their methods (:class:`~.step.BaseStep`, :class:`~.step.Group`); it imports no
workflow class, which is why ``model`` can import it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from .._core.priority import Priority
from .._core.scheduler import START_BATCH
from .._errors import StepFailedError, WorkflowTimeoutError
from .step import BaseStep, Group, Step, StepState

if TYPE_CHECKING:
    from .._core.job import Job
    from .._core.scheduler import Scheduler

__all__ = ["run_workflow"]

_SUCCEEDED = StepState.SUCCEEDED
_FAILED = StepState.FAILED
_CANCELLED = StepState.CANCELLED


async def run_workflow(workflow: Group, scheduler: Scheduler | None) -> bool:
    """Run the validated *workflow* on *scheduler* (or a private one), conclude."""
    private = scheduler is None
    if scheduler is None:
        from .._core.scheduler import Scheduler

        scheduler = Scheduler(limit=None, history_limit=0)
    try:
        run = _Run(workflow, scheduler, workflow.id, Priority.NORMAL)
        return await run.execute()
    finally:
        if private:
            await scheduler.close()


class _Run:
    """The state of one workflow's run; callbacks feed it, ``_drive`` spawns.

    Steps are known by their index in ``steps``; ``active`` maps each running
    job (or nested workflow's task) to that index.
    """

    __slots__ = (
        "active",
        "budget",
        "failure",
        "first",
        "indegree",
        "job_done",
        "late",
        "loop",
        "priority",
        "ready",
        "refused",
        "remaining",
        "root_id",
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
        workflow: Group,
        scheduler: Scheduler,
        root_id: str,
        priority: Priority,
    ) -> None:
        plan = workflow._prepare()
        steps = workflow.steps
        own = workflow.priority
        self.workflow = workflow
        self.scheduler = scheduler
        self.root_id = root_id
        self.priority = priority if own is None else own
        self.steps = steps
        self.first = plan.first
        self.targets = plan.targets
        self.indegree = plan.indegree.copy()
        self.ready = deque(plan.roots)
        self.refused: deque[int] = deque()  # started from a callback, refused
        self.budget = START_BATCH  # steps that may still start in this loop turn
        self.remaining = len(steps) - plan.forever
        self.window = workflow.window or len(steps) + 1
        self.active: dict[Job[object] | asyncio.Task[bool], int] = {}
        self.failure: BaseStep | None = None
        self.timed_out = False
        self.late: list[str] = []
        self.stopping = False
        self.waiter: asyncio.Future[None] | None = None
        tags = [f"workflow:{root_id}"]
        if workflow.id != root_id:
            tags.append(f"workflow:{workflow.id}")
        self.tags = tuple(tags)
        self.loop = asyncio.get_running_loop()
        #: One bound method for every job's done callback (not one per job: a big
        #: fan-out would give the garbage collector 10,000 more objects to scan).
        self.job_done = self._job_done

    async def execute(self) -> bool:
        workflow = self.workflow
        workflow._begin(self.scheduler)
        steps = self.steps
        for index in self.ready:
            steps[index]._mark_ready()
        timeout = workflow.timeout
        timer = (
            None if timeout is None else self.loop.call_later(timeout, self._on_timeout)
        )
        try:
            await self._drive()
        except BaseException as exc:
            await self._stop()
            if isinstance(exc, asyncio.CancelledError):
                workflow._finish(_CANCELLED, None)
            else:
                workflow._finish(_FAILED, exc)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if self.timed_out and self.failure is None:
            self.late = [s.label for s in steps if not s.state.final and not s.forever]
        await self._stop()
        return self._conclude()

    # -- starting steps -----------------------------------------------------------

    async def _drive(self) -> None:
        """Start the ready steps, a batch per loop turn, until the run is over.

        Steps released by a finishing step usually start at once, from its done
        callback (:meth:`_settle`); the driver starts the first steps, those the
        window or the batch held back, and those that must wait for a place in
        the scheduler's pending list.
        """
        ready = self.ready
        active = self.active
        window = self.window
        loop = self.loop
        start = self._start
        while True:
            self.budget = START_BATCH
            refused = self.refused
            while refused:  # settled here, not in the callback that started them
                index = refused.popleft()
                self._settle(index, self.steps[index], _FAILED)
            while (
                ready
                and len(active) < window
                and self.failure is None
                and not self.timed_out
            ):
                if self.budget <= 0:  # let what started run first (START_BATCH)
                    await asyncio.sleep(0)
                    self.budget = START_BATCH
                    continue
                self.budget -= 1
                index = ready.popleft()
                if not start(index, False):
                    await self._start_waiting(index)
            if refused:  # refused while this loop ran: settle them first
                continue
            if self.failure is not None or self.timed_out or self.remaining == 0:
                return
            if not active:  # pragma: no cover - prevented by validation
                raise RuntimeError(f"{self.workflow!r} cannot progress: report a bug")
            waiter = self.waiter = loop.create_future()
            await waiter
            self.waiter = None

    def _start(self, index: int, in_callback: bool) -> bool:
        """Start step *index* now: a step through ``spawn_nowait()``, a nested
        workflow as a task. ``False`` (and nothing done) when the scheduler's
        pending list is full: only ``await spawn()`` can place the step then.

        A spawn refused *in_callback* is settled by the driver, so that a chain
        of refusals never recurses through the done callbacks.
        """
        step = self.steps[index]
        if not isinstance(step, Step):
            self._launch_nested(index, step)
            return True
        scheduler = self.scheduler
        if scheduler.full:
            return False
        priority = step.priority
        if priority is None:
            priority = self.priority
        coro = step._start()
        try:
            job = scheduler.spawn_nowait(
                coro, step.label, priority=priority, tags=self.tags
            )
        except Exception as exc:  # e.g. the scheduler was closed
            coro.close()  # refused: no "never awaited" warning
            step._finish(_FAILED, exc)
            if in_callback:
                self.refused.append(index)
                self._wake()
            else:
                self._settle(index, step, _FAILED)
            return True
        step._started(job)
        self.active[job] = index
        job.add_done_callback(self.job_done)
        return True

    async def _start_waiting(self, index: int) -> None:
        """Start step *index* with ``await spawn()``: the scheduler's pending list
        is full, so this waits for a place in it."""
        step = self.steps[index]
        assert isinstance(step, Step)  # nested workflows never wait
        priority = step.priority
        if priority is None:
            priority = self.priority
        coro = step._start()
        try:
            job = await self.scheduler.spawn(
                coro, step.label, priority=priority, tags=self.tags
            )
        except Exception as exc:
            coro.close()
            step._finish(_FAILED, exc)
            self._settle(index, step, _FAILED)
            return
        step._started(job)
        self.active[job] = index
        job.add_done_callback(self.job_done)

    def _launch_nested(self, index: int, step: BaseStep) -> None:
        group = step._as_group()
        assert group is not None  # a step is a Step or a workflow
        step._mark_running()
        inner = _Run(group, self.scheduler, self.root_id, self.priority)
        task = self.loop.create_task(inner.execute(), name=f"workflow {step.label}")
        self.active[task] = index
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
        index = self.active.pop(job, None)
        if index is None:  # already settled by _stop()
            return
        step = self.steps[index]
        assert isinstance(step, Step)
        self._settle(index, step, step._record(job))

    def _task_done(self, task: asyncio.Task[bool]) -> None:
        index = self.active.pop(task, None)
        if index is None:
            return
        step = self.steps[index]
        self._settle(index, step, _record_task(step, task))

    def _settle(self, index: int, step: BaseStep, state: StepState) -> None:
        """A step reached the final *state*: abort, or release its dependents."""
        if self.stopping:
            return
        if state is not _SUCCEEDED and step.critical:
            if self.failure is None:
                self.failure = step
            self._wake()
            return
        if not step.forever:
            self.remaining -= 1
        first = self.first
        start, end = first[index], first[index + 1]
        if start != end:
            indegree = self.indegree
            ready = self.ready
            steps = self.steps
            for target in self.targets[start:end]:
                left = indegree[target] - 1
                indegree[target] = left
                if left == 0:
                    # Start it now, from this callback, unless it would pass
                    # steps queued before it, the window, the batch or a failure.
                    if (
                        ready
                        or self.budget <= 0
                        or len(self.active) >= self.window
                        or self.failure is not None
                        or self.timed_out
                        or not self._start(target, True)
                    ):
                        ready.append(target)
                        steps[target]._mark_ready()
                    else:
                        self.budget -= 1
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
        steps = self.steps
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
            for handle, index in list(active.items()):
                step = steps[index]
                if isinstance(handle, asyncio.Task):
                    _record_task(step, handle)
                    del active[handle]
                elif handle.done:
                    assert isinstance(step, Step)
                    step._record(handle)
                    del active[handle]
        if not self.remaining and self.failure is None and not self.timed_out:
            return  # a full run: every step is final, forever ones just above
        waiting = set(active.values())  # jobs that ignored their cancellation
        for index, step in enumerate(steps):
            if index not in waiting and not step.state.final:
                step._discard()

    def _conclude(self) -> bool:
        workflow = self.workflow
        error: Exception | None = None
        failed = self.failure
        if failed is not None:
            cause = failed.exception()
            if cause is None:
                what = "was cancelled"
            elif failed._as_group() is not None:
                what = f"failed ({cause})"
            else:
                what = f"failed: {cause!r}"
            error = StepFailedError(
                f"workflow {workflow.label!r} aborted: critical step "
                f"{failed.label!r} {what}",
                failed.label,
            )
            error.__cause__ = cause
        elif self.timed_out:
            late = self.late
            shown = ", ".join(repr(label) for label in late[:5])
            more = f" and {len(late) - 5} more" if len(late) > 5 else ""
            error = WorkflowTimeoutError(
                f"workflow {workflow.label!r} did not finish within "
                f"{workflow.timeout:g} s; unfinished steps: {shown}{more}"
            )
        workflow._conclude(error, failed, self.timed_out and failed is None)
        if error is None:
            return True
        if workflow.critical:
            raise error
        return False


def _record_task(step: BaseStep, task: asyncio.Task[bool]) -> StepState:
    """The outcome of a nested workflow; its run already set it, unless the task
    was cancelled before it began or died of an unexpected error."""
    error = None if task.cancelled() else task.exception()  # always retrieve it
    state = step.state
    if state.final:
        return state
    if task.cancelled():
        step._finish(_CANCELLED, None)
        step._discard()
        return _CANCELLED
    step._finish(_FAILED, error)
    return _FAILED

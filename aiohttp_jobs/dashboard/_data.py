"""What each page shows, as plain JSON-ready data: the HTML pages render it and
the JSON API returns it, so both always agree."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from .._core.history import matcher, scan
from .._core.job import Job, JobState
from .._core.priority import Priority, parse_priority
from .._core.scheduler import Scheduler
from .._errors import ConfigError, UnknownPriorityError
from .._tasks.context import TaskInfo
from .._tasks.runtime import TaskRuntime
from .._workflows.model import Workflow
from .._workflows.step import BaseStep, Step
from ..stores.base import InstanceInfo, LeaseInfo
from ._config import Config
from ._schedule import next_fires, schedule_words, timezone_of

__all__ = [
    "JobQuery",
    "QueryError",
    "job_detail",
    "job_row",
    "jobs_page",
    "live_matches",
    "overview",
    "tasks_page",
    "workflow_detail",
    "workflows_page",
]

LIVE_STATES = ("running", "pending", "scheduled")
FINAL_STATES = ("succeeded", "failed", "cancelled")
STATE_FILTERS = ("", "active", *LIVE_STATES, "finished", *FINAL_STATES)
_STARTED = time.time()
#: How many recent runs the tasks page shows per task (p50/p95 are theirs).
RECENT_RUNS = 20
_HOST = socket.gethostname()


class QueryError(ValueError):
    """A query parameter the dashboard cannot use (answered with 400)."""


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _clip(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def job_row(job: Job[Any]) -> dict[str, object]:
    """The fields of a job every listing shows."""
    # A finished job's last progress report is history: no bar.
    progress = None if job.state.final else job.progress
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "priority": str(job.priority),
        "tags": list(job.tags),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "duration": job.duration,
        "progress": None
        if progress is None
        else {
            "done": progress.done,
            "total": progress.total,
            "fraction": progress.fraction,
            "message": progress.message,
        },
    }


# -- jobs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobQuery:
    """The filters of the jobs page, as read from its (bookmarkable) URL."""

    state: str = ""
    name: str = ""
    tag: str = ""
    priority: str = ""
    q: str = ""
    before: str = ""
    limit: int = 50
    #: The ``limit`` the URL asked for ("" for the default page size).
    asked_limit: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, str], config: Config) -> JobQuery:
        state = query.get("state", "").strip().lower()
        if state not in STATE_FILTERS:
            raise QueryError(
                f"state must be one of {', '.join(s for s in STATE_FILTERS if s)}, "
                f"got {state!r}"
            )
        priority = query.get("priority", "").strip().lower()
        if priority:
            try:
                priority = str(parse_priority(priority))
            except UnknownPriorityError as exc:
                raise QueryError(str(exc)) from None
        raw_limit = query.get("limit", "")
        limit = config.page_size
        if raw_limit:
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
                raise QueryError(
                    f"limit must be a number from 1 to 500, got {raw_limit!r}"
                )
            limit = int(raw_limit)
        return cls(
            state=state,
            name=query.get("name", "").strip()[:200],
            tag=query.get("tag", "").strip()[:200],
            priority=priority,
            q=query.get("q", "").strip()[:200],
            before=query.get("before", "").strip()[:200],
            limit=limit,
            asked_limit=raw_limit,
        )

    def params(self, **changes: str) -> dict[str, str]:
        """The non-empty query parameters, with *changes* applied."""
        values = {
            "state": self.state,
            "name": self.name,
            "tag": self.tag,
            "priority": self.priority,
            "q": self.q,
            "before": self.before,
            "limit": self.asked_limit,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v}

    @property
    def filtered(self) -> bool:
        return bool(self.state or self.name or self.tag or self.priority or self.q)

    def _match(self, state: str | None) -> Any:
        return matcher(
            state=state,
            name=self.name or None,
            tag=self.tag or None,
            priority=int(parse_priority(self.priority)) if self.priority else None,
            search=self.q or None,
        )


def live_matches(scheduler: Scheduler, query: JobQuery) -> list[Job[Any]]:
    """Running, pending and scheduled jobs matching *query*, newest first."""
    states: Iterable[str]
    if query.state in LIVE_STATES:
        states = (query.state,)
    elif query.state in ("", "active"):
        states = LIVE_STATES
    else:
        return []
    match = query._match(None)
    wanted = set(states)
    return [
        job
        for job in reversed(list(scheduler))
        if job.state.value in wanted and (match is None or match(job))
    ]


def jobs_page(
    scheduler: Scheduler, query: JobQuery, config: Config
) -> dict[str, object]:
    """The jobs page: live jobs (first page only) and a keyset page of history."""
    live: list[Job[Any]] = []
    live_total = 0
    live_more = False
    next_live = None
    if query.state in ("", "active", *LIVE_STATES):
        everything = live_matches(scheduler, query)
        live_total = len(everything)
        start = 0
        if query.before and query.state in ("active", *LIVE_STATES):
            for index, job in enumerate(everything):
                if job.id == query.before:
                    start = index + 1
                    break
        if query.before and query.state == "":
            everything = []  # later pages of "all" page through history only
        live = everything[start : start + query.limit]
        live_more = start + query.limit < len(everything)
        if live_more and query.state in ("active", *LIVE_STATES):
            next_live = live[-1].id
    finished: list[Job[Any]] = []
    scanned = 0
    history_next = None
    exhausted = True
    history = scheduler.history
    if query.state in ("", "finished", *FINAL_STATES):
        state = query.state if query.state in FINAL_STATES else None
        match = query._match(state)
        try:
            page = scan(
                history,
                before=query.before or None,
                match=match,
                limit=query.limit,
                scan_limit=config.scan_limit if match is not None else None,
            )
        except ConfigError as exc:
            raise QueryError(str(exc)) from None
        finished = page.jobs
        scanned = page.scanned
        history_next = page.next
        exhausted = page.exhausted
    next_cursor = next_live or history_next
    return {
        "query": query.params(before=""),
        "live": [job_row(j) for j in live],
        "live_total": live_total,
        "live_more": live_more,
        "finished": [job_row(j) for j in finished],
        "scanned": scanned,
        "history_size": len(history),
        "history_limit": history.maxlen,
        "scan_limit": config.scan_limit,
        "exhausted": exhausted,
        "next": next_cursor,
    }


def _task_of(job: Job[Any]) -> str | None:
    tags = job.tags
    if len(tags) >= 2 and tags[0] == "task":
        return tags[1]
    return None


def job_detail(job: Job[Any], config: Config) -> dict[str, object]:
    """Everything the job page shows."""
    data = job_row(job)
    created, started, finished = job.created_at, job.started_at, job.finished_at
    data["waited"] = None if started is None else max(0.0, started - created)
    if started is None and finished is not None:
        data["waited"] = max(0.0, finished - created)
    data["ran"] = job.duration
    data["final"] = job.state.final
    data["cancellable"] = not job.state.final
    result_text = error_text = None
    clipped = False
    if job.state is JobState.SUCCEEDED:
        try:
            text = config.format_result(job, job.result())
        except Exception as exc:  # a failing hook must not break the page
            text = f"(format_result failed: {type(exc).__name__})"
        result_text, clipped = _clip(str(text), config.max_text)
    elif job.state is JobState.FAILED:
        raised = job.exception()
        assert raised is not None
        try:
            text = config.format_error(job, raised)
        except Exception as hook_exc:
            text = (
                f"{type(raised).__name__} "
                f"(format_error failed: {type(hook_exc).__name__})"
            )
        error_text, clipped = _clip(str(text), config.max_text)
    data["result"] = result_text
    data["error"] = error_text
    data["clipped"] = clipped
    workflow = Workflow.of_job(job)
    data["workflow"] = (
        None if workflow is None else {"id": workflow.id, "label": workflow.label}
    )
    task = _task_of(job)
    data["task"] = None if task is None else {"name": task, "key": job.name}
    data["retryable"] = task is not None and job.state is JobState.FAILED
    return data


# -- overview --------------------------------------------------------------------


class Throughput:
    """Jobs finished per minute over the last hour, counted incrementally: each
    call looks only at the jobs that finished since the previous one (the
    first looks at no more than *cap*), so the overview stays cheap with a
    big history."""

    __slots__ = ("_buckets", "_last", "_last_at", "_scheduler", "complete")

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, scheduler: Scheduler | None) -> None:
        self._buckets: dict[int, list[int]] = {}
        self._last: Job[object] | None = None
        self._last_at = 0.0
        self._scheduler = scheduler
        self.complete = True

    def update(self, scheduler: Scheduler, now: float, cap: int) -> dict[str, object]:
        if scheduler is not self._scheduler:  # a new application run
            self._reset(scheduler)
        first_minute = int(now // 60) - 59
        buckets = self._buckets
        last, last_at = self._last, self._last_at
        newest: Job[object] | None = None
        scanned = 0
        for job in scheduler.history.newest():
            at = job.finished_at
            if job is last or at is None or at < last_at:
                break
            if newest is None:
                newest = job
            minute = int(at // 60)
            if minute < first_minute:
                break
            counts = buckets.get(minute)
            if counts is None:
                counts = buckets[minute] = [0, 0, 0, 0]
            counts[0] += 1
            counts[_STATE_INDEX.get(job.state.value, 0)] += 1
            scanned += 1
            if scanned >= cap:
                self.complete = False
                break
        if newest is not None:
            self._last = newest
            self._last_at = newest.finished_at or 0.0
        for minute in [m for m in buckets if m < first_minute]:
            del buckets[minute]
        rows = [buckets.get(first_minute + i, [0, 0, 0, 0]) for i in range(60)]
        return {
            "start": first_minute * 60.0,
            "finished": [r[0] for r in rows],
            "failed": [r[2] for r in rows],
            "counts": {
                "succeeded": sum(r[1] for r in rows),
                "failed": sum(r[2] for r in rows),
                "cancelled": sum(r[3] for r in rows),
            },
            "complete": self.complete,
        }


_STATE_INDEX = {"succeeded": 1, "failed": 2, "cancelled": 3}


def overview(
    scheduler: Scheduler,
    runtime: TaskRuntime | None,
    instances: list[dict[str, object]],
    config: Config,
    throughput: Throughput,
) -> dict[str, object]:
    now = time.time()
    by_priority = {p: {"running": 0, "pending": 0, "scheduled": 0} for p in Priority}
    for job in list(scheduler):
        state = job.state.value
        if state in by_priority[job.priority]:
            by_priority[job.priority][state] += 1
    priorities = []
    for priority in Priority:
        counts = by_priority[priority]
        priorities.append(
            {
                "priority": str(priority),
                "running": counts["running"],
                "pending": counts["pending"],
                "scheduled": counts["scheduled"],
                "capacity": scheduler.capacity(priority),
            }
        )
    recent = scan(
        scheduler.history,
        match=matcher(state="failed"),
        limit=10,
        scan_limit=config.scan_limit,
    )
    return {
        "now": now,
        "counts": {
            "running": scheduler.active_count,
            "pending": scheduler.pending_count,
            "scheduled": scheduler.scheduled_count,
        },
        "limit": scheduler.limit,
        "pending_limit": scheduler.pending_limit,
        "history": {"size": len(scheduler.history), "limit": scheduler.history.maxlen},
        "priorities": priorities,
        "last_hour": throughput.update(scheduler, now, config.scan_limit * 5),
        "recent_failures": [job_row(j) for j in recent.jobs],
        "instances": instances,
        "tasks": None if runtime is None else len(runtime.tasks),
        "workflows": len(Workflow.of_scheduler(scheduler)),
    }


def this_instance() -> dict[str, object]:
    return {
        "instance_id": f"{_HOST}:{os.getpid()}",
        "host": _HOST,
        "pid": os.getpid(),
        "version": __version__,
        "started": _STARTED,
        "last_seen": time.time(),
        "this": True,
    }


async def instances(runtime: TaskRuntime | None) -> list[dict[str, object]]:
    """The instances sharing the task store (this process when there is no
    task runtime, or the store cannot be read now)."""
    me = this_instance()
    if runtime is None:
        return [me]
    try:
        found = await runtime.instances()
    except Exception:  # a store not reachable now: the page still answers
        return [me]
    mine = runtime.instance_id
    out = [
        {
            "instance_id": info.instance_id,
            "host": info.host,
            "pid": info.pid,
            "version": info.version,
            "started": info.started,
            "last_seen": info.last_seen,
            "this": info.instance_id == mine,
        }
        for info in found
    ]
    return out or [me]


# -- tasks -----------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def _recent_runs(
    runtime: TaskRuntime, scheduler: Scheduler, key: str
) -> list[dict[str, object]]:
    """This instance's runs in flight, then the run log (every instance).

    A finished job is left to the run log, which has it (or will have it in a
    moment): listing both would show one run twice.
    """
    runs = [
        _job_run(job)
        for job in reversed(list(scheduler))
        if job.name == key and _task_of(job) is not None and not job.state.final
    ]
    try:
        entries = await runtime.recent_runs(key, limit=RECENT_RUNS)
    except Exception:  # a store not reachable now
        entries = []
    runs.extend(
        {
            "run_id": e.run_id,
            "job_id": None,
            "instance": e.instance,
            "attempt": e.attempt,
            "outcome": e.outcome,
            "started": e.started,
            "finished": e.finished,
            "duration": e.duration,
            "error": None if e.error is None else e.error[:500],
        }
        for e in entries
    )
    return runs[:RECENT_RUNS]


def _job_run(job: Job[Any]) -> dict[str, object]:
    """A run in flight on this instance (not finished: no duration, no error)."""
    return {
        "run_id": None,
        "job_id": job.id,
        "instance": None,
        "attempt": None,
        "outcome": job.state.value,
        "started": job.started_at,
        "finished": None,
        "duration": None,
        "error": None,
    }


async def _holders(
    runtime: TaskRuntime,
) -> tuple[dict[str, list[LeaseInfo]], dict[str, InstanceInfo]]:
    """The runs leased now on every instance, by record key, and the
    instances the registry knows, by id (both empty when the store cannot
    be read now: the page then shows what this instance runs)."""
    by_key: dict[str, list[LeaseInfo]] = {}
    try:
        for lease in await runtime.leases():
            by_key.setdefault(lease.key, []).append(lease)
    except Exception:
        return {}, {}
    try:
        known = {info.instance_id: info for info in await runtime.instances()}
    except Exception:
        known = {}
    return by_key, known


def _holder(
    lease: LeaseInfo, me: str, known: Mapping[str, InstanceInfo]
) -> dict[str, object]:
    info = known.get(lease.owner)
    return {
        "run_id": lease.run_id,
        "instance": lease.owner,
        "this": lease.owner == me,
        "host": None if info is None else info.host,
        "attempt": lease.attempt,
        "fire_at": lease.fire_at,
        "expires_at": lease.expires_at,
        "cancel_requested": lease.cancelled,
    }


def _where(holder: Mapping[str, object]) -> str:
    if holder["this"]:
        return f"this instance ({holder['instance']})"
    if holder["host"]:
        return f"{holder['instance']} on {holder['host']}"
    return str(holder["instance"])


def _running(
    info: TaskInfo, holders: list[dict[str, object]], me: str
) -> tuple[int, str | None, str | None]:
    """Runs in progress on every instance, where, and the run the page's
    *Cancel run* button stops.

    This instance's runs are counted by its jobs (runs of at-most-once tasks
    hold no lease) or its leases (once-off instances keep no statistics),
    whichever is more; the other instances' by their leases.
    """
    here = sum(1 for h in holders if h["this"])
    running = max(info.running, here) + len(holders) - here
    places = list(dict.fromkeys(_where(h) for h in holders))
    if info.running and not here:
        places.insert(0, f"this instance ({me})")
    local = info.last_run
    if local is not None and local.state == "running":
        cancel: str | None = local.run_id
    else:
        waiting = [h for h in holders if not h["cancel_requested"]] or holders
        cancel = str(waiting[0]["run_id"]) if waiting else None
    return running, ", ".join(places) or None, cancel


async def tasks_page(
    runtime: TaskRuntime | None, scheduler: Scheduler, config: Config
) -> dict[str, object]:
    if runtime is None:
        return {"tasks": [], "keywords": [], "configured": False}
    now = runtime.clock.time()
    infos = {info.key: info for info in await runtime.list_tasks()}
    records = {record.key: record for record in await runtime.store.records()}
    leases, known = await _holders(runtime)
    me = runtime.instance_id
    declared = runtime.tasks
    rows = []
    for key in sorted(infos):
        info = infos[key]
        record = records.get(key)
        task = declared.get(info.task)
        keyword = None if task is None else task.keyword
        spec = None if record is None else record.schedule
        runs = await _recent_runs(runtime, scheduler, key)
        holders = [_holder(lease, me, known) for lease in leases.get(key, ())]
        running, lease_text, running_run = _running(info, holders, me)
        durations = [
            float(r["duration"]) for r in runs if isinstance(r["duration"], int | float)
        ]
        tz = timezone_of(spec)
        rows.append(
            {
                "key": key,
                "task": info.task,
                "dynamic": task is not None and task.dynamic,
                "instance": key.partition(":")[2] if ":" in key else None,
                "kind": info.kind,
                "schedule": info.schedule,
                "expression": None if spec is None else _expression(spec),
                "words": schedule_words(spec, keyword),
                "timezone": str(getattr(tz, "key", tz)),
                "keyword": keyword,
                "enabled": info.enabled,
                "next_fires": next_fires(
                    spec,
                    record.fire_at if record is not None else None,
                    now,
                )
                if info.enabled
                else [],
                "running": running,
                "running_here": info.running,
                "lease": lease_text,
                "holders": holders,
                "running_run": running_run,
                "runs": info.runs,
                "failures": info.failures,
                "recent_failures": sum(r["outcome"] == "failed" for r in runs),
                "skipped": info.skipped,
                "p50": _percentile(durations, 0.5),
                "p95": _percentile(durations, 0.95),
                "recent_runs": runs,
            }
        )
    keywords = sorted({t.keyword for t in declared.values() if t.keyword})
    return {"tasks": rows, "keywords": keywords, "configured": True}


def _expression(spec: Mapping[str, object]) -> str:
    if "cron" in spec:
        return str(spec["cron"])
    if "interval" in spec:
        return f"interval={spec['interval']}s"
    if "at" in spec:
        at = spec["at"]
        return f"at {iso(float(at))}" if isinstance(at, int | float) else repr(at)
    return repr(dict(spec))


# -- workflows -------------------------------------------------------------------


def _step_tree(step: BaseStep) -> dict[str, object]:
    group = step._as_group()
    job = step.job if isinstance(step, Step) else None
    node: dict[str, object] = {
        "id": step.id,
        "label": step.label,
        "state": step.state.value,
        "critical": step.critical,
        "job_id": None if job is None else job.id,
    }
    if group is not None:
        node["steps"] = [_step_tree(s) for s in group.steps]
    return node


def workflow_summary(workflow: Workflow) -> dict[str, object]:
    steps = list(workflow)
    return {
        "id": workflow.id,
        "label": workflow.label,
        "state": workflow.state.value,
        "steps": len(steps),
        "failed_step": None
        if workflow.failed_step is None
        else workflow.failed_step.label,
    }


def workflows_page(scheduler: Scheduler, limit: int = 100) -> dict[str, object]:
    runs = Workflow.of_scheduler(scheduler)
    total = len(runs)
    recent = list(reversed(runs))[:limit]
    return {"workflows": [workflow_summary(w) for w in recent], "total": total}


def workflow_detail(workflow: Workflow) -> dict[str, object]:
    data = workflow_summary(workflow)
    data["describe"] = workflow.describe()
    data["listing"] = workflow.listing()
    data["tree"] = [_step_tree(s) for s in workflow]
    failed = workflow.state.value == "failed" or workflow.failed_step is not None
    data["debrief"] = workflow.debrief() if failed or workflow.timed_out else None
    return data


def step_states(workflow: Workflow) -> dict[str, str]:
    """Every step's state by id, nested workflows included."""
    out: dict[str, str] = {}

    def walk(steps: Iterable[BaseStep]) -> None:
        for step in steps:
            out[step.id] = step.state.value
            group = step._as_group()
            if group is not None:
                walk(group.steps)

    walk(workflow)
    return out

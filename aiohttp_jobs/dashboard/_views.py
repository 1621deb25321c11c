"""The dashboard's handlers: pages (HTML), the JSON API, the live stream and the
actions. Each page's data comes from :mod:`._data`, so a page and its JSON
twin always agree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .. import metrics as ops
from .._core.job import Job
from .._core.scheduler import Scheduler
from .._errors import (
    ConfigError,
    JobNotFoundError,
    SchedulerClosedError,
    TaskNotFoundError,
)
from .._tasks.runtime import TaskRuntime
from .._workflows.model import Workflow
from ..web._state import SCHEDULER_KEY, TASKS_KEY
from . import _data
from ._audit import AUDIT_KEY
from ._config import CONFIG_KEY, ROOT_KEY
from ._links import url
from ._live import SEQ_AT_START
from ._live import stream as live_stream
from ._security import who

__all__ = ["JINJA_KEY", "THROUGHPUT_KEY", "routes"]

JINJA_KEY: Final = web.AppKey("aiohttp_jobs.dashboard.jinja2", jinja2.Environment)
THROUGHPUT_KEY: Final = web.AppKey(
    "aiohttp_jobs.dashboard.throughput", _data.Throughput
)

_NOT_SET_UP = (
    "aiohttp_jobs is not running in this application: call aiohttp_jobs.setup(app) "
    "on the application that mounts the dashboard"
)


def _scheduler(request: web.Request, api: bool) -> Scheduler:
    scheduler = request.config_dict.get(SCHEDULER_KEY)
    if scheduler is None:
        raise _http(503, _NOT_SET_UP, api)
    return scheduler


def _runtime(request: web.Request) -> TaskRuntime | None:
    return request.config_dict.get(TASKS_KEY)


def _http(status: int, message: str, api: bool) -> web.HTTPException:
    cls = {
        400: web.HTTPBadRequest,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        503: web.HTTPServiceUnavailable,
    }[status]
    if api:
        return cls(text=json.dumps({"error": message}), content_type="application/json")
    return cls(text=message + "\n")


def _render(
    request: web.Request, template: str, data: dict[str, Any], **extra: Any
) -> web.Response:
    config = request.config_dict[CONFIG_KEY]
    done = None
    raw_done = request.query.get("done", "")
    if raw_done.isdigit() and len(raw_done) < 12:
        done = request.config_dict[AUDIT_KEY].get(int(raw_done))

    memo: dict[tuple[object, ...], str] = {}

    def link(name: str, query: dict[str, str] | None = None, **parts: str) -> str:
        key = (name, *sorted((query or {}).items()), *sorted(parts.items()))
        found = memo.get(key)
        if found is None:
            found = memo[key] = url(request, name, query, **parts)
        return found

    job_link = url(request, "job", job_id="JOB-ID")

    def job_href(job_id: str) -> str:
        # One router lookup per page, not per row (job ids are URL-safe).
        return job_link.replace("JOB-ID", job_id)

    context = {
        "page": data,
        "config": config,
        "link": link,
        "job_href": job_href,
        "static": lambda path: link("static", filename=path),
        "done": done,
        "request_path": request.path,
        "seq": SEQ_AT_START.get(),
        **extra,
    }
    response = aiohttp_jinja2.render_template(
        template, request, context, app_key=JINJA_KEY
    )
    return response


def _data_response(data: dict[str, Any]) -> web.Response:
    return web.json_response(data, dumps=lambda o: json.dumps(o, default=str))


# -- pages ---------------------------------------------------------------------


async def _overview_data(request: web.Request, api: bool) -> dict[str, Any]:
    scheduler = _scheduler(request, api)
    runtime = _runtime(request)
    config = request.config_dict[CONFIG_KEY]
    found = await _data.instances(runtime)
    throughput = request.app[THROUGHPUT_KEY]
    return _data.overview(scheduler, runtime, found, config, throughput)


async def overview(request: web.Request) -> web.Response:
    data = await _overview_data(request, False)
    return _render(request, "overview.html", data, nav="overview")


async def api_overview(request: web.Request) -> web.Response:
    return _data_response(await _overview_data(request, True))


def _jobs_data(
    request: web.Request, api: bool
) -> tuple[_data.JobQuery, dict[str, Any]]:
    scheduler = _scheduler(request, api)
    config = request.config_dict[CONFIG_KEY]
    try:
        query = _data.JobQuery.parse(request.query, config)
        return query, _data.jobs_page(scheduler, query, config)
    except _data.QueryError as exc:
        raise _http(400, str(exc), api) from None


async def jobs(request: web.Request) -> web.Response:
    query, data = _jobs_data(request, False)
    return _render(
        request,
        "jobs.html",
        data,
        nav="jobs",
        q=query,
        states=_data.STATE_FILTERS,
        priorities=["low", "normal", "high", "critical"],
    )


async def api_jobs(request: web.Request) -> web.Response:
    return _data_response(_jobs_data(request, True)[1])


def _job(request: web.Request, api: bool) -> Job[Any]:
    scheduler = _scheduler(request, api)
    job_id = request.match_info["job_id"]
    try:
        return scheduler.get_job(job_id)
    except (JobNotFoundError, ConfigError):
        raise _http(
            404, f"no job {job_id!r} here (it may have left the history)", api
        ) from None


async def job(request: web.Request) -> web.Response:
    found = _job(request, False)
    data = _data.job_detail(found, request.config_dict[CONFIG_KEY])
    return _render(request, "job.html", data, nav="jobs")


async def api_job(request: web.Request) -> web.Response:
    found = _job(request, True)
    return _data_response(_data.job_detail(found, request.config_dict[CONFIG_KEY]))


async def _tasks_data(request: web.Request, api: bool) -> dict[str, Any]:
    scheduler = _scheduler(request, api)
    return await _data.tasks_page(
        _runtime(request), scheduler, request.config_dict[CONFIG_KEY]
    )


async def tasks(request: web.Request) -> web.Response:
    data = await _tasks_data(request, False)
    keyword = request.query.get("keyword", "")
    return _render(request, "tasks.html", data, nav="tasks", keyword=keyword)


async def api_tasks(request: web.Request) -> web.Response:
    return _data_response(await _tasks_data(request, True))


async def workflows(request: web.Request) -> web.Response:
    data = _data.workflows_page(_scheduler(request, False))
    return _render(request, "workflows.html", data, nav="workflows")


async def api_workflows(request: web.Request) -> web.Response:
    return _data_response(_data.workflows_page(_scheduler(request, True)))


def _workflow(request: web.Request, api: bool) -> Workflow:
    scheduler = _scheduler(request, api)
    workflow_id = request.match_info["workflow_id"]
    try:
        found = Workflow.find(workflow_id, scheduler)
    except ConfigError:
        found = None
    if found is None:
        raise _http(404, f"no workflow {workflow_id!r} here", api)
    return found


async def workflow(request: web.Request) -> web.Response:
    found = _workflow(request, False)
    data = _data.workflow_detail(found)
    return _render(request, "workflow.html", data, nav="workflows", svg=found.to_svg())


async def api_workflow(request: web.Request) -> web.Response:
    found = _workflow(request, True)
    data = _data.workflow_detail(found)
    data["step_states"] = _data.step_states(found)
    return _data_response(data)


def _audit_data(request: web.Request) -> dict[str, Any]:
    entries = request.config_dict[AUDIT_KEY].entries()
    return {"entries": [e.as_dict() for e in entries]}


async def audit(request: web.Request) -> web.Response:
    return _render(request, "audit.html", _audit_data(request), nav="audit")


async def api_audit(request: web.Request) -> web.Response:
    return _data_response(_audit_data(request))


async def stream(request: web.Request) -> web.StreamResponse:
    return await live_stream(request, _scheduler(request, True))


async def metrics(request: web.Request) -> web.StreamResponse:
    root = request.app[ROOT_KEY]
    if not ops.is_enabled(root):
        raise web.HTTPNotFound(
            text="metrics are not set up: call aiohttp_jobs.metrics.setup(app)\n"
        )
    response: web.StreamResponse = await ops.handler(request)
    return response


# -- actions -----------------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    outcome: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


async def _params(request: web.Request, api: bool) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise _http(400, "the request body is not valid JSON", api) from None
        if not isinstance(body, dict):
            raise _http(400, "the request body must be a JSON object", api)
        return body
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _text(params: dict[str, Any], name: str, api: bool) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise _http(400, f"{name} is required (a non-empty string)", api)
    return value.strip()


#: Where an HTML form's action sends the browser back to: route, parts, query.
Back = tuple[str, dict[str, str], dict[str, str]]


def _respond(
    request: web.Request,
    action: str,
    target: str,
    result: Outcome,
    api: bool,
    back: Back,
) -> web.StreamResponse:
    entry = request.config_dict[AUDIT_KEY].record(
        who(request), action, target, result.outcome, result.detail
    )
    if api:
        body = {
            "action": action,
            "target": target,
            "outcome": result.outcome,
            "detail": result.detail,
            "audit": entry.seq,
            **result.data,
        }
        return web.json_response(body, status=result.status)
    name, parts, query = back
    query = {**query, "done": str(entry.seq)}
    raise web.HTTPSeeOther(location=url(request, name, query, **parts))


def _task_error(exc: Exception) -> Outcome:
    if isinstance(exc, TaskNotFoundError):
        return Outcome(404, "not found", str(exc))
    if isinstance(exc, SchedulerClosedError):
        return Outcome(503, "error", str(exc))
    return Outcome(400, "error", str(exc))


async def _close_jobs(found: list[Job[Any]], wait: float) -> int:
    """Cancel *found*; wait up to *wait* seconds; how many are final by then."""
    if not found:
        return 0
    closing = [asyncio.ensure_future(job.close()) for job in found]
    for fut in closing:
        fut.add_done_callback(_consume)
    await asyncio.wait(closing, timeout=wait)
    return sum(job.state.final for job in found)


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


async def _cancel_job(request: web.Request, api: bool) -> web.StreamResponse:
    job_id = request.match_info["job_id"]
    back: Back = ("job", {"job_id": job_id}, {})
    try:
        found = _job(request, api)
    except web.HTTPNotFound:
        result = Outcome(404, "not found", f"no job {job_id!r}")
        if not api:
            back = ("jobs", {}, {})
        return _respond(request, "cancel", job_id, result, api, back)
    if found.state.final:
        result = Outcome(409, "conflict", f"already {found.state.value}")
    else:
        stopped = await _close_jobs([found], 1.0)
        detail = (
            "cancelled" if stopped else "cancel requested; the job is still stopping"
        )
        result = Outcome(200, "ok", detail, {"state": found.state.value})
    return _respond(request, "cancel", job_id, result, api, back)


async def cancel_job(request: web.Request) -> web.StreamResponse:
    return await _cancel_job(request, False)


async def api_cancel_job(request: web.Request) -> web.StreamResponse:
    return await _cancel_job(request, True)


def _bulk_query(
    request: web.Request, params: dict[str, Any], api: bool
) -> _data.JobQuery:
    config = request.config_dict[CONFIG_KEY]
    merged = {k: str(v) for k, v in request.query.items()}
    merged.update({k: str(v) for k, v in params.items() if isinstance(v, str)})
    merged.pop("before", None)
    try:
        query = _data.JobQuery.parse(merged, config)
    except _data.QueryError as exc:
        raise _http(400, str(exc), api) from None
    if query.state not in ("", "active", *_data.LIVE_STATES):
        raise _http(
            400, "only running, pending and scheduled jobs can be cancelled", api
        )
    return query


async def bulk_cancel_preview(request: web.Request) -> web.Response:
    query = _bulk_query(request, {}, False)
    found = _data.live_matches(_scheduler(request, False), query)
    config = request.config_dict[CONFIG_KEY]
    data = {
        "matched": len(found),
        "cap": config.bulk_limit,
        "will_cancel": min(len(found), config.bulk_limit),
        "sample": [_data.job_row(j) for j in found[:20]],
        "query": query.params(),
    }
    return _render(request, "bulk_cancel.html", data, nav="jobs", q=query)


async def api_bulk_cancel_preview(request: web.Request) -> web.Response:
    query = _bulk_query(request, {}, True)
    found = _data.live_matches(_scheduler(request, True), query)
    cap = request.config_dict[CONFIG_KEY].bulk_limit
    return _data_response(
        {"matched": len(found), "cap": cap, "will_cancel": min(len(found), cap)}
    )


async def _bulk_cancel(request: web.Request, api: bool) -> web.StreamResponse:
    params = await _params(request, api)
    query = _bulk_query(request, params, api)
    cap = request.config_dict[CONFIG_KEY].bulk_limit
    found = _data.live_matches(_scheduler(request, api), query)
    chosen = found[:cap]
    stopped = await _close_jobs(chosen, 2.0)
    target = json.dumps(query.params(), sort_keys=True)
    detail = f"cancelled {len(chosen)} of {len(found)} matching jobs (cap {cap})"
    if stopped < len(chosen):
        detail += f"; {len(chosen) - stopped} still stopping"
    result = Outcome(
        200,
        "ok",
        detail,
        {"matched": len(found), "cancelled": len(chosen), "cap": cap},
    )
    return _respond(
        request, "bulk_cancel", target, result, api, ("jobs", {}, query.params())
    )


async def _audited_bad_request(
    request: web.Request, action: str, work: Awaitable[web.StreamResponse]
) -> web.StreamResponse:
    """*work*, with a request it refuses as malformed written to the audit log."""
    try:
        return await work
    except web.HTTPBadRequest as exc:
        request.config_dict[AUDIT_KEY].record(
            who(request), action, request.path, "error", exc.text or "bad request"
        )
        raise


async def bulk_cancel(request: web.Request) -> web.StreamResponse:
    return await _audited_bad_request(
        request, "bulk_cancel", _bulk_cancel(request, False)
    )


async def api_bulk_cancel(request: web.Request) -> web.StreamResponse:
    return await _audited_bad_request(
        request, "bulk_cancel", _bulk_cancel(request, True)
    )


async def _task_action(
    request: web.Request, action: str, api: bool
) -> web.StreamResponse:
    params = await _params(request, api)
    back: Back = ("tasks", {}, {})
    runtime = _runtime(request)
    if action == "fire":
        target = _text(params, "keyword", api)
    elif action == "cancel":
        target = _text(params, "run_id", api)
    else:
        target = _text(params, "key", api)
    if runtime is None:
        result = Outcome(404, "not found", "no task registry in this application")
        return _respond(request, action, target, result, api, back)
    try:
        if action == "run":
            run_id = await runtime.run_now(target)
            result = Outcome(200, "ok", f"run {run_id} queued", {"run_id": run_id})
        elif action == "retry":
            failed = params.get("run_id") or params.get("job_id") or "the last run"
            run_id = await runtime.run_now(target)
            result = Outcome(
                200,
                "ok",
                f"retry of {failed} queued as run {run_id}",
                {"run_id": run_id},
            )
        elif action == "cancel":
            if await runtime.cancel_run(target):
                result = Outcome(
                    200, "ok", "cancelled (elsewhere: at its next heartbeat)"
                )
            else:
                result = Outcome(404, "not found", f"no run {target!r} in progress")
        elif action == "enable":
            await runtime.enable(target)
            result = Outcome(200, "ok", "enabled")
        elif action == "disable":
            await runtime.disable(target)
            result = Outcome(200, "ok", "disabled")
        elif action == "unschedule":
            task, sep, instance = target.partition(":")
            if not sep or not instance:
                result = Outcome(
                    400,
                    "error",
                    "only dynamic instances (task:instance) can be unscheduled",
                )
            elif await runtime.unschedule_task(task, instance):
                result = Outcome(200, "ok", "unscheduled")
            else:
                result = Outcome(404, "not found", f"no instance {target!r}")
        else:  # fire
            payload = params.get("payload", {})
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload) if payload.strip() else {}
                except ValueError as exc:
                    raise _http(400, f"payload is not valid JSON: {exc}", api) from None
            if not isinstance(payload, dict) or not all(
                isinstance(k, str) for k in payload
            ):
                raise _http(400, "payload must be a JSON object", api)
            run_ids = await runtime.fire(target, **payload)
            result = Outcome(
                200,
                "ok",
                f"{len(run_ids)} run(s) queued"
                if run_ids
                else "no enabled task has this keyword",
                {"run_ids": run_ids},
            )
    except (TaskNotFoundError, SchedulerClosedError, ConfigError) as exc:
        result = _task_error(exc)
    if action == "fire":
        back = ("tasks", {}, {"keyword": target})
    return _respond(request, action, target, result, api, back)


def _task_handler(
    action: str, api: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _audited_bad_request(
            request, action, _task_action(request, action, api)
        )

    handler.__name__ = f"{'api_' if api else ''}{action}_task"
    handler.__doc__ = f"POST: the {action!r} action."
    return handler


# name, method, path, handler, action (None: "view")
Route = tuple[
    str, str, str, Callable[[web.Request], Awaitable[web.StreamResponse]], str | None
]


def routes() -> list[Route]:
    out: list[Route] = [
        ("overview", "GET", "/", overview, None),
        ("jobs", "GET", "/jobs", jobs, None),
        ("bulk_cancel_preview", "GET", "/jobs/cancel", bulk_cancel_preview, None),
        ("bulk_cancel", "POST", "/jobs/cancel", bulk_cancel, "bulk_cancel"),
        ("job", "GET", "/jobs/{job_id}", job, None),
        ("cancel_job", "POST", "/jobs/{job_id}/cancel", cancel_job, "cancel"),
        ("tasks", "GET", "/tasks", tasks, None),
        ("workflows", "GET", "/workflows", workflows, None),
        ("workflow", "GET", "/workflows/{workflow_id}", workflow, None),
        ("audit", "GET", "/audit", audit, None),
        ("stream", "GET", "/stream", stream, None),
        ("metrics", "GET", "/metrics", metrics, "metrics"),
        ("api_overview", "GET", "/api/overview", api_overview, None),
        ("api_jobs", "GET", "/api/jobs", api_jobs, None),
        (
            "api_bulk_cancel_preview",
            "GET",
            "/api/jobs/cancel",
            api_bulk_cancel_preview,
            None,
        ),
        ("api_bulk_cancel", "POST", "/api/jobs/cancel", api_bulk_cancel, "bulk_cancel"),
        ("api_job", "GET", "/api/jobs/{job_id}", api_job, None),
        (
            "api_cancel_job",
            "POST",
            "/api/jobs/{job_id}/cancel",
            api_cancel_job,
            "cancel",
        ),
        ("api_tasks", "GET", "/api/tasks", api_tasks, None),
        ("api_workflows", "GET", "/api/workflows", api_workflows, None),
        ("api_workflow", "GET", "/api/workflows/{workflow_id}", api_workflow, None),
        ("api_audit", "GET", "/api/audit", api_audit, None),
    ]
    for action in ("run", "retry", "enable", "disable", "unschedule"):
        out.append(
            (
                f"{action}_task",
                "POST",
                f"/tasks/{action}",
                _task_handler(action, False),
                action,
            )
        )
        out.append(
            (
                f"api_{action}_task",
                "POST",
                f"/api/tasks/{action}",
                _task_handler(action, True),
                action,
            )
        )
    out.append(
        (
            "cancel_run",
            "POST",
            "/tasks/cancel",
            _task_handler("cancel", False),
            "cancel",
        )
    )
    out.append(
        (
            "api_cancel_run",
            "POST",
            "/api/tasks/cancel",
            _task_handler("cancel", True),
            "cancel",
        )
    )
    out.append(("fire", "POST", "/keywords/fire", _task_handler("fire", False), "fire"))
    out.append(
        ("api_fire", "POST", "/api/keywords/fire", _task_handler("fire", True), "fire")
    )
    return out

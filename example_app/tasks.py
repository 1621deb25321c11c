"""Scheduled tasks: a cron task that uses a fixture holding one of the app's
resources, per-user reminders (dynamic once-off tasks) and a welcome mail fired
by a keyword from the sign-up endpoint. The dashboard's tasks page
(``/jobs/tasks``) shows them all, and runs, enables or disables them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import ConfigError, Context, SchedulerClosedError, Tasks

tasks = Tasks()

OUTBOX = web.AppKey("example_app.outbox", list)  # stands for an SMTP connection pool
SESSIONS = web.AppKey("example_app.sessions", dict)  # user -> signed-in at (POSIX)
SESSION_TTL = 30 * 60.0


def register(app: web.Application, options: dict[str, Any]) -> None:
    app[OUTBOX] = []
    app[SESSIONS] = {}
    # One registry per application: the feature modules add theirs to it.
    options.setdefault("tasks", Tasks()).include(tasks)
    app.router.add_post("/api/signup/{user}", signup)
    app.router.add_post("/api/reminders", add_reminder)
    app.router.add_delete("/api/reminders/{user}/{name}", cancel_reminder)
    app.router.add_get("/api/outbox", show_outbox)


# -- fixtures: set up before the first run, torn down after the last ---------------


@tasks.fixture
async def mailer(app: web.Application) -> AsyncIterator[list[dict[str, str]]]:
    outbox = app[OUTBOX]  # a resource the application owns
    yield outbox


@tasks.fixture
async def sessions(app: web.Application) -> AsyncIterator[dict[str, float]]:
    yield app[SESSIONS]


# -- tasks --------------------------------------------------------------------------


@tasks.task(name="purge-sessions", schedule="*/5 * * * *")
async def purge_sessions(ctx: Context) -> int:
    """Every five minutes: sign out sessions older than SESSION_TTL."""
    now = ctx.scheduled_at.timestamp()
    expired = [user for user, at in ctx.sessions.items() if now - at > SESSION_TTL]
    for user in expired:
        del ctx.sessions[user]
    return len(expired)


@tasks.dynamic_task(retries=3, retry_backoff=2.0)
async def remind(ctx: Context) -> None:
    """One reminder a user asked for, at the moment they chose."""
    ctx.mailer.append({"to": ctx.params["user"], "subject": str(ctx.params["text"])})


@tasks.task(keyword="user-signed-up")
async def welcome(ctx: Context) -> None:
    """Fired by the sign-up endpoint with the user's name."""
    ctx.mailer.append({"to": ctx.params["user"], "subject": "Welcome!"})


# -- endpoints ----------------------------------------------------------------------


async def signup(request: web.Request) -> web.Response:
    """Sign a user up: opens a session and fires the 'user-signed-up' tasks."""
    user = request.match_info["user"]
    runtime = aiohttp_jobs.get_tasks(request)
    try:
        run_ids = await runtime.fire("user-signed-up", user=user)
    except SchedulerClosedError:  # the application is shutting down
        raise _shutting_down() from None
    request.app[SESSIONS][user] = runtime.clock.time()
    return web.json_response({"user": user, "runs": run_ids})


def _shutting_down() -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        text="shutting down: try again shortly", headers={"Retry-After": "5"}
    )


async def add_reminder(request: web.Request) -> web.Response:
    """Schedule a reminder: JSON {user, name, text, in_seconds}."""
    body = await request.json()
    try:
        user, name, text = str(body["user"]), str(body["name"]), str(body["text"])
        delay = float(body["in_seconds"])
    except (KeyError, TypeError, ValueError):
        raise web.HTTPBadRequest(
            text="send JSON with user, name, text and in_seconds (a number)"
        ) from None
    runtime = aiohttp_jobs.get_tasks(request)
    when = runtime.clock.time() + (0.0 if delay < 0 else delay)  # NaN stays NaN
    try:
        key = await runtime.schedule_task(
            remind, f"{user}.{name}", execute_at=when, user=user, text=text
        )
    except ConfigError as exc:  # in_seconds=nan, or past the year 9999
        raise web.HTTPBadRequest(text=f"in_seconds={delay!r}: {exc}") from None
    except SchedulerClosedError:  # the application is shutting down
        raise _shutting_down() from None
    at = datetime.fromtimestamp(when, UTC).isoformat()
    return web.json_response({"key": key, "at": at}, status=201)


async def cancel_reminder(request: web.Request) -> web.Response:
    """Cancel a reminder that has not been sent yet."""
    instance = f"{request.match_info['user']}.{request.match_info['name']}"
    removed = await aiohttp_jobs.get_tasks(request).unschedule_task(remind, instance)
    if not removed:
        raise web.HTTPNotFound(text=f"no pending reminder {instance!r}")
    return web.json_response({"removed": instance})


async def show_outbox(request: web.Request) -> web.Response:
    """Mails the tasks have sent."""
    return web.json_response(request.app[OUTBOX])

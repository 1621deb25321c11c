"""Builds the example application from its feature modules.

A feature module has ``register(app, options)``: it adds its routes to *app*
and may add keyword arguments for ``aiohttp_jobs.setup()`` to *options* (for
example ``options["tasks"] = tasks``). Add a capability by appending its
module to ``FEATURES``.
"""

from __future__ import annotations

import html
import importlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import aiohttp_jobs
import aiohttp_jobs.dashboard
from aiohttp_jobs import Tasks

from .links import DASHBOARD

FEATURES = [
    "example_app.jobs",
    "example_app.workflows",
    "example_app.tasks",
    "example_app.blocking",
]

#: Where the dashboard is mounted.
DASHBOARD_PREFIX = "/jobs"

logger = logging.getLogger("example_app")


def _exception_handler(
    scheduler: aiohttp_jobs.Scheduler, context: dict[str, Any]
) -> None:
    job = context.get("job")
    logger.error(
        "%s (job %s): %r",
        context.get("message"),
        getattr(job, "id", "-"),
        context.get("exception"),
    )


@web.middleware
async def bad_json_is_a_bad_request(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """A body that ``request.json()`` cannot read is the client's mistake: every
    endpoint that reads JSON answers 400 with a message, not 500."""
    try:
        return await handler(request)
    except json.JSONDecodeError as exc:
        if not exc.doc.strip():
            problem = "the request body is empty; send a JSON object"
        else:
            problem = f"the request body is not valid JSON ({exc})"
    except UnicodeDecodeError:
        problem = "the request body is not UTF-8 text; send a JSON object"
    raise web.HTTPBadRequest(
        text=json.dumps({"error": problem}), content_type="application/json"
    )


def create_app(
    *,
    store: str = "memory://",
    demo: bool = False,
    dashboard: bool = True,
    **setup_options: Any,
) -> web.Application:
    """The application; *store* is the task store's URL (``memory://``,
    ``sqlite:///tasks.db``, ``redis://host:6379/0``: instances sharing a file
    or a Redis share the schedule), *demo* adds the demo traffic
    (:mod:`example_app.demo`), *dashboard* mounts the dashboard at ``/jobs``
    (it answers requests from this machine only), *setup_options* override
    the ``setup()`` arguments."""
    app = web.Application(middlewares=[bad_json_is_a_bad_request])
    options: dict[str, Any] = {
        "limit": 10,
        "pending_limit": 20,
        "wait_timeout": 10.0,
        "close_timeout": 1.0,
        "exception_handler": _exception_handler,
        "reject_when_full": True,  # overload answers 503 + Retry-After
    }
    options.update(setup_options)
    options.setdefault("tasks", Tasks(store=store))
    for name in [*FEATURES, *(["example_app.demo"] if demo else [])]:
        importlib.import_module(name).register(app, options)
    aiohttp_jobs.setup(app, **options)
    if dashboard:
        app[DASHBOARD] = aiohttp_jobs.dashboard.setup(
            app, prefix=DASHBOARD_PREFIX, title="aiohttp-jobs example"
        )
    app.router.add_get("/", index)
    return app


async def index(request: web.Request) -> web.Response:
    """This page: a link to the dashboard, and every endpoint of the example."""
    base = f"{request.scheme}://{request.host}"
    rows = []
    for resource in request.app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            continue  # the dashboard's own pages
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or ""
        if path == DASHBOARD_PREFIX:
            continue
        for route in resource:
            if route.method == "HEAD":
                continue
            doc = (getattr(route.handler, "__doc__", None) or "").strip()
            rows.append(
                f"<tr><td><code>{route.method}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(doc.split(chr(10))[0])}</td></tr>"
            )
    dashboard = ""
    if DASHBOARD in request.config_dict:
        url = request.config_dict[DASHBOARD].router["overview"].url_for()
        dashboard = (
            f"<p><strong><a href='{html.escape(str(url))}'>Open the dashboard</a>"
            "</strong>: every job, scheduled task and workflow, live.</p>"
        )
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>aiohttp-jobs example</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:60rem}"
        "th{text-align:left}td,th{padding:.2rem .8rem .2rem 0;vertical-align:top}"
        "@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}"
        "a{color:#8ab4f8}}</style></head><body>"
        "<h1>aiohttp-jobs example application</h1>"
        + dashboard
        + "<p>JSON endpoints; try them with curl, e.g. "
        f"<code>curl -X POST {html.escape(base)}/api/reports</code>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what it does</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return web.Response(text=body, content_type="text/html")

"""Links from the example's own endpoints to the dashboard's pages and JSON API
(``aiohttp_jobs.dashboard``), made by the dashboard's router so they follow
its prefix."""

from __future__ import annotations

from aiohttp import web

#: The dashboard's sub-application, when ``create_app()`` mounted one.
DASHBOARD = web.AppKey("example_app.dashboard", web.Application)


def dashboard_links(request: web.Request, kind: str, ident: str) -> dict[str, str]:
    """``{"page": ..., "api": ...}`` for a job (*kind* ``"job"``) or a workflow
    (``"workflow"``); empty when the application has no dashboard."""
    dashboard = request.config_dict.get(DASHBOARD)
    if dashboard is None:
        return {}
    router = dashboard.router
    return {
        "page": str(router[kind].url_for(**{f"{kind}_id": ident})),
        "api": str(router[f"api_{kind}"].url_for(**{f"{kind}_id": ident})),
    }

"""The dashboard's safety in a real headless Chromium: behind a proxy that
strips a path prefix, forwarded requests refused without an ``authorize`` hook,
cross-site POSTs refused, and hostile job names, results and errors shown as
inert text."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from aiohttp_jobs import Step, Workflow
from tests.conftest import Serve
from tests.dashboard.browser_support import (
    Screenshots,
    ServeDashboard,
    Site,
    act,
    confirming,
    follow,
    go_to,
    job_row,
    stripping_proxy,
    tid,
    until_live,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def allow_everything(request: web.Request, action: str) -> bool:
    """An application's hook that lets everyone in (its proxy authenticates)."""
    return True


async def behind_proxy(site: Site, serve: Serve) -> str:
    """A proxy forwarding /ops/... to *site*: its URL (``.../ops``)."""
    _, port = await serve(stripping_proxy(site.base, "/ops"), shutdown_timeout=0.5)
    return f"http://127.0.0.1:{port}/ops"


async def test_under_a_prefix_behind_a_prefix_stripping_proxy(
    serve_dashboard: ServeDashboard, session_serve: Serve, shots: Screenshots
) -> None:
    site = await serve_dashboard(authorize=allow_everything)
    proxied = await behind_proxy(site, session_serve)
    job = await site.scheduler.spawn(asyncio.Event().wait(), "sync-inventory")

    page = await site.browser.new_page()
    await page.goto(f"{proxied}/jobs")  # the redirect stays under /ops
    await expect(page).to_have_url(f"{proxied}/jobs/")
    await until_live(page)  # the event stream comes through the proxy
    await shots.take(page, "overview through the proxy")

    # Every link and form leads back through the proxy.
    hrefs = await page.locator(
        "a[href], link[href], script[src], form[action]"
    ).evaluate_all("els => els.map(e => e.href || e.src || e.action)")
    fetched = [h for h in hrefs if not h.startswith("data:")]  # inline, no request
    assert fetched and all(h.startswith(proxied + "/") for h in fetched), fetched

    await go_to(page, "Jobs")
    await expect(page).to_have_url(f"{proxied}/jobs/jobs")
    row = job_row(page, job.id)
    await expect(row).to_have_attribute("data-state", "running")
    await shots.take(page, "jobs through the proxy")
    await follow(page, row.locator(tid("job-link")))
    await expect(page).to_have_url(f"{proxied}/jobs/jobs/{job.id}")

    await confirming(page)
    await act(page, page.locator(tid("cancel-job")))
    await expect(page.locator(tid("job-state"))).to_have_text("cancelled")
    assert page.url.startswith(proxied + "/")
    assert job.state.value == "cancelled"
    await shots.take(page, "cancelled through the proxy")

    for name in ("Tasks", "Workflows", "Audit"):
        await go_to(page, name)
        await expect(page).to_have_url(f"{proxied}/jobs/{name.lower()}")
    await expect(page.locator(tid("audit-row")).first).to_have_attribute(
        "data-outcome", "ok"
    )
    await shots.take(page, "audit through the proxy")


async def test_a_forwarded_request_is_refused_without_an_authorize_hook(
    serve_dashboard: ServeDashboard, session_serve: Serve, shots: Screenshots
) -> None:
    site = await serve_dashboard()  # the default: direct loopback requests only
    proxied = await behind_proxy(site, session_serve)
    await site.scheduler.spawn(asyncio.Event().wait(), "payroll-export")

    page = await site.browser.new_page()
    for path in ("/jobs/", "/jobs/jobs", "/jobs/api/jobs"):
        response = await page.goto(proxied + path)
        assert response is not None and response.status == 403, path
        text = await page.locator("body").inner_text()
        assert "payroll-export" not in text  # refused requests learn nothing
    await shots.take(page, "refused through the proxy")

    # The same browser on the same machine, directly: let in.
    response = await page.goto(site.url("/jobs/jobs"))
    assert response is not None and response.status == 200
    await expect(page.locator(tid("job-row"))).to_contain_text("payroll-export")
    await shots.take(page, "direct from this machine")


async def _evil_site(serve: Serve, target: str) -> int:
    """Another site: a page with a form that POSTs to *target*."""

    async def attack(request: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><title>Win a prize</title><h1>Win a prize</h1>"
                f'<form method="post" action="{target}">'
                '<input type="hidden" name="reason" value="prize">'
                '<button id="claim">Claim it</button></form>'
            ),
        )

    evil = web.Application()
    evil.router.add_get("/", attack)
    _, port = await serve(evil)
    return port


async def test_a_cross_site_post_is_refused(
    serve_dashboard: ServeDashboard, session_serve: Serve, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    job = await site.scheduler.spawn(asyncio.Event().wait(), "nightly-backup")
    target = site.url(f"/jobs/jobs/{job.id}/cancel")
    port = await _evil_site(session_serve, target)

    page = await site.browser.new_page()
    # "localhost" is another site than "127.0.0.1"; another port of
    # 127.0.0.1 is the same site but another origin: both are refused.
    for origin in (f"http://localhost:{port}", f"http://127.0.0.1:{port}"):
        await page.goto(origin + "/")
        await shots.take(page, f"attacker page at {origin}")
        async with page.expect_response(target) as posted:
            await page.locator("#claim").click()
        response = await posted.value
        assert response.status == 403, origin
        await page.wait_for_load_state()
        await shots.take(page, f"refused from {origin}")
        # Scripted, too: a no-cors fetch gets an opaque answer and changes nothing.
        await page.goto(origin + "/")
        await page.evaluate(
            "url => fetch(url, {method: 'POST', mode: 'no-cors', body: 'x=1'})",
            target,
        )
        assert job.active, origin

    await site.visit("/jobs/audit", page)
    rows = page.locator(tid("audit-row"))
    await expect(rows.first).to_have_attribute("data-outcome", re.compile("refused"))
    await shots.take(page, "audit after the attempts")
    assert job.active


HOSTILE_NAME = (
    '<script>window.__xss = "name"</script><img src=x onerror="window.__xss = \'img\'">'
)
HOSTILE_RESULT = (
    '<b id="injected">bold</b><img src=x onerror="window.__xss = \'result\'">'
)
HOSTILE_ERROR = "<svg onload=\"window.__xss = 'error'\"></svg> declined"
HOSTILE_LABEL = "<img src=x onerror=\"window.__xss = 'label'\">"


async def _inert(page: Page) -> None:
    """Nothing the attacker wrote ran or became markup."""
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("#injected").count() == 0
    assert await page.locator("main img, main script:not([src])").count() == 0


async def test_a_hostile_name_result_and_error_stay_inert_text(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    scheduler = site.scheduler

    async def hostile_result() -> str:
        return HOSTILE_RESULT

    async def hostile_error() -> None:
        raise ValueError(HOSTILE_ERROR)

    succeeded = await scheduler.spawn(
        hostile_result(), HOSTILE_NAME, tags=("<i>t</i>",)
    )
    failed = await scheduler.spawn(hostile_error(), HOSTILE_NAME)
    await succeeded.wait()
    await asyncio.gather(failed.wait(), return_exceptions=True)
    gate = asyncio.Event()
    workflow = Workflow(
        Step(gate.wait(), label=HOSTILE_LABEL), label=HOSTILE_LABEL, critical=False
    )
    run = asyncio.create_task(workflow.run(scheduler=scheduler))

    page = await site.browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await site.visit("/jobs/jobs", page)
    for job in (succeeded, failed):
        await expect(job_row(page, job.id)).to_contain_text("<script>")
    await _inert(page)
    await shots.take(page, "jobs list")

    await site.visit(f"/jobs/jobs/{succeeded.id}", page)
    await expect(page.locator(tid("job-result"))).to_contain_text('<b id="injected">')
    await expect(page.locator("h1")).to_contain_text("<script>")
    await _inert(page)
    await shots.take(page, "job with a hostile result")

    await site.visit(f"/jobs/jobs/{failed.id}", page)
    await expect(page.locator(tid("job-error"))).to_contain_text("<svg onload=")
    await _inert(page)
    await shots.take(page, "job with a hostile error")

    await site.visit("/jobs/", page)
    await _inert(page)
    await shots.take(page, "overview with a hostile failure")

    # Reflected input: a search for markup is shown as the text searched for.
    await site.visit("/jobs/jobs?q=%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E", page)
    await expect(page.locator(tid("search-input"))).to_have_value(
        "<script>window.__xss=1</script>"
    )
    await _inert(page)
    await shots.take(page, "search for markup")

    # Live updates carry the same text: still inert after they arrive.
    await site.visit(f"/jobs/workflows/{workflow.id}", page)
    await expect(page.locator(tid("workflow-graph"))).to_contain_text("<img src=x")
    await _inert(page)
    assert await page.locator(f"{tid('workflow-graph')} img").count() == 0
    await shots.take(page, "workflow with a hostile label")
    gate.set()
    await expect(page.locator(tid("workflow-state"))).to_have_text("succeeded")
    await _inert(page)
    assert dialogs == []
    assert await run is True

"""The README's promise in a real headless Chromium: the example application's
dashboard at /jobs shows what the example does, live, and steers it."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, expect

from example_app import demo
from example_app.app import create_app
from tests.conftest import Serve
from tests.dashboard.browser_support import (
    Screenshots,
    browser,  # noqa: F401  (fixture)
    chromium_browser,  # noqa: F401  (fixture)
    confirming,
    serve,  # noqa: F401  (fixture)
    shots,  # noqa: F401  (fixture)
    started,
    tid,
    until_live,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_example_apps_dashboard_shows_its_demo_live(
    browser: BrowserContext,  # noqa: F811
    shots: Screenshots,  # noqa: F811
    serve: Serve,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo, "DELAY", 0.4)  # quicker steps, still visible
    app = create_app(demo=True, wait_timeout=0.5, close_timeout=0.5)
    base = await started(app, serve)
    page = await browser.new_page()
    await page.goto(f"{base}/")
    await shots.take(page, "the example's index")
    await page.get_by_role("link", name="Open the dashboard").click()
    await expect(page).to_have_url(f"{base}/jobs/")
    await until_live(page)
    await expect(page.locator("header")).to_contain_text("aiohttp-jobs example")
    await shots.take(page, "overview at start")

    # Tasks: a cron task, an interval one, a keyword-fired one and a dynamic
    # instance; run the demo traffic now instead of waiting for it.
    await page.get_by_role("link", name="Tasks", exact=True).first.click()
    for key in ("purge-sessions", "release-pipeline", "welcome", "demo-traffic"):
        await expect(
            page.locator(f'{tid("task-row")}[data-task-key="{key}"]')
        ).to_be_visible()
    standup = page.locator(f'{tid("task-row")}[data-task-key="remind:ada.standup"]')
    await expect(standup.locator(tid("unschedule"))).to_be_visible()
    await shots.take(page, "tasks")
    await confirming(page)
    traffic = page.locator(f'{tid("task-row")}[data-task-key="demo-traffic"]')
    await traffic.locator(tid("run-now")).click()
    await expect(page.locator(tid("action-result"))).to_have_attribute(
        "data-outcome", "ok"
    )

    # Jobs: the burst's report runs, with its progress, then succeeds.
    await page.get_by_role("link", name="Jobs", exact=True).first.click()
    await until_live(page)
    report = page.locator(tid("job-row")).filter(has_text="report").first
    await expect(report).to_have_attribute("data-state", "running")
    await expect(report.locator(tid("job-progress"))).to_contain_text("section")
    await shots.take(page, "jobs with the demo running")
    await expect(report).to_have_attribute("data-state", "succeeded")

    # Workflows: the burst's release, its graph turning green step by step.
    await page.get_by_role("link", name="Workflows", exact=True).first.click()
    row = page.locator(tid("workflow-row")).first
    await expect(row).to_contain_text("release")
    await row.get_by_role("link").first.click()
    await until_live(page)
    graph = page.locator(tid("workflow-graph"))
    await expect(graph.locator("g[data-step-id]").first).to_be_visible()
    await shots.take(page, "release workflow")
    await expect(page.locator(tid("workflow-state"))).to_have_text("succeeded")
    await expect(graph.locator('g[data-state="succeeded"]').first).to_be_visible()
    await shots.take(page, "release workflow done")

    # The keyword-fired welcome ran; a failing payment shows on the overview.
    await page.get_by_role("link", name="Tasks", exact=True).first.click()
    welcome = page.locator(f'{tid("task-row")}[data-task-key="welcome"]')
    await expect(welcome.locator(tid("task-run-row"))).to_have_count(1)
    response = await page.request.post(f"{base}/api/failing")
    assert response.status == 202
    await page.get_by_role("link", name="Overview", exact=True).first.click()
    await expect(page.locator("main")).to_contain_text("charge-card")
    await expect(page.locator(tid("count-failed"))).to_have_text(re.compile(r"[1-9]"))
    await shots.take(page, "overview after the demo")

"""The README's promise in a real headless Chromium: the example application's
dashboard at /jobs shows what the example does, live, and steers it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import expect

from example_app import demo, jobs
from example_app.app import create_app
from tests.dashboard.browser_support import (
    Screenshots,
    ServeDashboard,
    act,
    confirming,
    follow,
    go_to,
    job_row,
    task_row,
    tid,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_example_apps_dashboard_shows_its_demo_live(
    serve_dashboard: ServeDashboard,
    shots: Screenshots,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo, "DELAY", 0.4)  # quicker steps, still visible
    # The demo's reports start once this journey has seen one waiting to
    # (its page open), not while a loaded machine is still opening the page.
    reports = asyncio.Event()

    async def report_when_seen(steps: int, delay: float) -> dict[str, Any]:
        await reports.wait()
        return await jobs.build_report(steps, delay)

    monkeypatch.setattr(demo, "build_report", report_when_seen)
    app = create_app(demo=True, wait_timeout=0.5, close_timeout=0.5)
    site = await serve_dashboard(app)
    page = await site.browser.new_page()
    await page.goto(site.url("/"))
    await shots.take(page, "the example's index")
    await follow(page, page.get_by_role("link", name="Open the dashboard"))
    await expect(page).to_have_url(site.url("/jobs/"))
    await expect(page.locator("header")).to_contain_text("aiohttp-jobs example")
    await shots.take(page, "overview at start")

    # Tasks: a cron task, an interval one, a keyword-fired one and a dynamic
    # instance; run the demo traffic now instead of waiting for it.
    await go_to(page, "Tasks")
    for key in ("purge-sessions", "release-pipeline", "welcome", "demo-traffic"):
        await expect(task_row(page, key)).to_be_visible()
    standup = task_row(page, "remind:ada.standup")
    await expect(standup.locator(tid("unschedule"))).to_be_visible()
    await shots.take(page, "tasks")
    await confirming(page)
    await act(page, task_row(page, "demo-traffic").locator(tid("run-now")))

    # Jobs: the burst's report runs, with its progress, then succeeds.
    await go_to(page, "Jobs")
    first_report = page.locator(tid("job-row")).filter(has_text="report").first
    report = job_row(page, await first_report.get_attribute("data-job-id") or "?")
    await expect(report).to_have_attribute("data-state", "running")
    reports.set()
    await expect(report.locator(tid("job-progress"))).to_contain_text("section")
    await shots.take(page, "jobs with the demo running")
    await expect(report).to_have_attribute("data-state", "succeeded")

    # Workflows: the burst's release, its graph turning green step by step.
    await go_to(page, "Workflows")
    row = page.locator(tid("workflow-row")).first
    await expect(row).to_contain_text("release")
    await follow(page, row.get_by_role("link").first)
    graph = page.locator(tid("workflow-graph"))
    await expect(graph.locator("g[data-step-id]").first).to_be_visible()
    await shots.take(page, "release workflow")
    await expect(page.locator(tid("workflow-state"))).to_have_text("succeeded")
    await expect(graph.locator('g[data-state="succeeded"]').first).to_be_visible()
    await shots.take(page, "release workflow done")

    # The keyword-fired welcome ran; a failing payment shows on the overview.
    await go_to(page, "Tasks")
    welcome = task_row(page, "welcome")
    await expect(welcome.locator(tid("task-run-row"))).to_have_count(1)
    response = await page.request.post(site.url("/api/failing"))
    assert response.status == 202
    await go_to(page, "Overview")
    await expect(page.locator("main")).to_contain_text("charge-card")
    await expect(page.locator(tid("count-failed"))).to_have_text(re.compile(r"[1-9]"))
    await shots.take(page, "overview after the demo")

"""A live refresh replaces a page's content; what the reader was doing on it
survives: what they typed in a form and have not sent yet."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, Route, expect

from tests.dashboard.browser_support import (
    NO_RELOAD,
    STILL_LOADED,
    ServeDashboard,
    Site,
    follow,
    tid,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _jobs_page_with_one_running(
    serve_dashboard: ServeDashboard,
) -> tuple[Site, Page, asyncio.Event]:
    """The jobs page, live, listing one job that runs until the gate opens."""
    site = await serve_dashboard()
    gate = asyncio.Event()
    await site.scheduler.spawn(gate.wait(), "import-catalogue")
    page = await site.visit("/jobs/jobs")
    await expect(page.locator(tid("job-row"))).to_have_count(1)
    return site, page, gate


async def test_a_filter_typed_but_not_applied_survives_a_live_refresh(
    serve_dashboard: ServeDashboard,
) -> None:
    site, page, gate = await _jobs_page_with_one_running(serve_dashboard)
    rows = page.locator(tid("job-row"))
    name = page.locator(tid("filter-name"))
    await name.fill("nightly")
    await page.locator(tid("filter-priority")).select_option("high")
    await name.blur()  # typed, then looked elsewhere: the form is not busy
    await page.evaluate(NO_RELOAD)
    await site.scheduler.spawn(gate.wait(), "send-mail")  # makes the list reload
    await expect(rows).to_have_count(2)
    assert await page.evaluate(STILL_LOADED)
    await expect(name).to_have_value("nightly")
    await expect(page.locator(tid("filter-priority"))).to_have_value("high")
    await follow(page, page.locator(tid("filter-submit")))
    await expect(page).to_have_url(site.url("/jobs/jobs?name=nightly&priority=high"))
    gate.set()


async def test_typing_in_a_filter_is_not_interrupted_by_a_refresh_on_its_way(
    serve_dashboard: ServeDashboard,
) -> None:
    site, page, gate = await _jobs_page_with_one_running(serve_dashboard)
    rows = page.locator(tid("job-row"))
    # The page's own fetch of its content takes a second: long enough to
    # start typing while it is on its way.
    asked = asyncio.Event()

    async def slowly(route: Route) -> None:
        first = not asked.is_set()
        asked.set()
        if first:
            await asyncio.sleep(1.0)
        await route.continue_()

    await page.route(re.compile(r".*/jobs/jobs$"), slowly)
    await site.scheduler.spawn(gate.wait(), "send-mail")  # makes the list reload
    await asyncio.wait_for(asked.wait(), 15)
    name = page.locator(tid("filter-name"))
    async with page.expect_event(
        "requestfinished", lambda request: request.url.endswith("/jobs/jobs")
    ):
        await name.click()
        await page.keyboard.type("nigh")
    # The content arrived while the reader typed; let the page handle it.
    await page.evaluate("new Promise((done) => setTimeout(done, 100))")
    # It replaced nothing under their hands: what they type goes on into the
    # field, and the refresh comes once they are done.
    await page.keyboard.type("tly")
    await expect(name).to_have_value("nightly")
    await expect(name).to_be_focused()
    await name.blur()
    await expect(rows).to_have_count(2)
    await expect(name).to_have_value("nightly")
    gate.set()

"""A live refresh replaces a page's content; what the reader was doing on it
survives: what they typed in a form and have not sent yet."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.dashboard.browser_support import (
    NO_RELOAD,
    STILL_LOADED,
    ServeDashboard,
    follow,
    tid,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_filter_typed_but_not_applied_survives_a_live_refresh(
    serve_dashboard: ServeDashboard,
) -> None:
    site = await serve_dashboard()
    gate = asyncio.Event()
    await site.scheduler.spawn(gate.wait(), "import-catalogue")
    page = await site.visit("/jobs/jobs")
    rows = page.locator(tid("job-row"))
    await expect(rows).to_have_count(1)
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

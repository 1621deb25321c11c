"""Layout in a real headless Chromium: numbers right-aligned under
right-aligned headings, the job tables of one page in the same columns, long
labels in the workflow graph shortened with the whole label at hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import BrowserContext, expect

from aiohttp_jobs import Step, Workflow
from tests.conftest import Serve
from tests.dashboard.browser_support import (
    Screenshots,
    browser,  # noqa: F401  (fixture)
    chromium_browser,  # noqa: F401  (fixture)
    dashboard_app,
    scheduler_of,
    serve,  # noqa: F401  (fixture)
    shots,  # noqa: F401  (fixture)
    started,
    tid,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The left edge of every column's heading, and how numeric headings align.
COLUMNS = """table => Array.from(table.querySelectorAll("thead th"), th => [
    Math.round(th.getBoundingClientRect().left),
    Math.round(th.getBoundingClientRect().width),
    getComputedStyle(th).textAlign,
])"""


async def test_job_tables_line_up_and_numbers_align_with_their_headings(
    browser: BrowserContext,  # noqa: F811
    shots: Screenshots,  # noqa: F811
    serve: Serve,  # noqa: F811
) -> None:
    app = dashboard_app()
    base = await started(app, serve)
    scheduler = scheduler_of(app)
    gate = asyncio.Event()
    await scheduler.spawn(gate.wait(), "a-rather-long-job-name-for-a-narrow-column")
    done = await scheduler.spawn(asyncio.sleep(0, "ok"), "mail", tags=("x" * 30,))
    await done.wait()
    page = await browser.new_page()
    await page.goto(f"{base}/jobs/jobs")
    tables = page.locator("table.jobs")
    await expect(tables).to_have_count(2)
    live = await tables.nth(0).evaluate(COLUMNS)
    finished = await tables.nth(1).evaluate(COLUMNS)
    assert live == finished, "the two job tables' columns differ"
    headings = await tables.nth(0).locator("thead th").all_inner_texts()
    ran = live[headings.index("Ran")]
    assert ran[2] == "right"
    cell_align = await tables.nth(1).evaluate(
        """t => getComputedStyle(t.querySelector("tbody td.num")).textAlign"""
    )
    assert cell_align == "right"
    await shots.take(page, "jobs tables in line")

    await page.goto(f"{base}/jobs/")
    # The overview reloads its content on live updates: a table measured just
    # as it is replaced has no style; measure the one in the page.
    aligns: list[Any] = []
    for _ in range(50):
        aligns = await page.locator("table").first.evaluate(COLUMNS)
        if all(a[2] for a in aligns):
            break
        await page.wait_for_timeout(100)
    assert [a[2] for a in aligns] == ["left"] + ["right"] * 4
    gate.set()


async def test_a_long_step_label_is_shortened_with_the_whole_label_as_title(
    browser: BrowserContext,  # noqa: F811
    shots: Screenshots,  # noqa: F811
    serve: Serve,  # noqa: F811
) -> None:
    app = dashboard_app()
    base = await started(app, serve)
    scheduler = scheduler_of(app)
    label = "rebuild the search index of every catalogue in every region"
    gate = asyncio.Event()
    workflow = Workflow(
        Step(gate.wait(), label=label), label=f"nightly {label}", critical=False
    )
    run = asyncio.create_task(workflow.run(scheduler=scheduler))
    page = await browser.new_page()
    await page.goto(f"{base}/jobs/workflows/{workflow.id}")
    graph = page.locator(f"{tid('workflow-graph')} svg")
    await expect(graph).to_be_visible()
    step = graph.locator("g.wf-step")
    shown = await step.locator("text").first.text_content()
    assert shown is not None and shown.endswith("\u2026") and len(shown) < len(label)
    assert label in (await step.locator("title").text_content() or "")
    # Every text of the drawing shows whole, none cut off by the drawing's
    # edge (the workflow's own heading is wider than its steps) or the figure's.
    cut = await page.locator(tid("workflow-graph")).evaluate(
        """figure => {
            const svg = figure.querySelector("svg");
            const clips = getComputedStyle(svg).overflow !== "visible";
            const outside = (r, box) => r.left < box.left || r.right > box.right;
            const frame = figure.getBoundingClientRect();
            const drawing = svg.getBoundingClientRect();
            return Array.from(svg.querySelectorAll("text"), t => t.textContent)
                .filter((_, i) => {
                    const r = svg.querySelectorAll("text")[i].getBoundingClientRect();
                    return outside(r, frame) || (clips && outside(r, drawing));
                });
        }"""
    )
    assert cut == []
    await shots.take(page, "long labels")
    gate.set()
    await run

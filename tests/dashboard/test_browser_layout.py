"""Layout in a real headless Chromium: numbers right-aligned under
right-aligned headings, the job tables of one page in the same columns, long
labels in the workflow graph shortened with the whole label at hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Page, expect

from aiohttp_jobs import Step, Workflow
from tests.dashboard.browser_support import Screenshots, ServeDashboard, tid

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The tables (*selector*) of the page's content, all measured at once: a live
# refresh replaces the content, and an element it replaced has no layout or
# style any more. For each table, its headings' text, left edge, width and
# alignment, and the alignment of its number cells.
TABLES = """(main, selector) => Array.from(main.querySelectorAll(selector), table => {
    const headings = Array.from(table.querySelectorAll("thead th"));
    return {
        headings: headings.map(th => th.innerText),
        columns: headings.map(th => [
            Math.round(th.getBoundingClientRect().left),
            Math.round(th.getBoundingClientRect().width),
            getComputedStyle(th).textAlign,
        ]),
        numbers: Array.from(
            table.querySelectorAll("tbody td.num"), td => getComputedStyle(td).textAlign
        ),
    };
})"""


async def _tables(page: Page, selector: str) -> list[dict[str, Any]]:
    tables: list[dict[str, Any]] = await page.locator("main").evaluate(TABLES, selector)
    return tables


async def test_job_tables_line_up_and_numbers_align_with_their_headings(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    gate = asyncio.Event()
    await site.scheduler.spawn(
        gate.wait(), "a-rather-long-job-name-for-a-narrow-column"
    )
    done = await site.scheduler.spawn(asyncio.sleep(0, "ok"), "mail", tags=("x" * 30,))
    await done.wait()
    page = await site.visit("/jobs/jobs")
    await expect(page.locator("table.jobs")).to_have_count(2)
    live, finished = await _tables(page, "table.jobs")
    assert live["columns"] == finished["columns"], "the two job tables' columns differ"
    ran = live["columns"][live["headings"].index("Ran")]
    assert ran[2] == "right"
    assert finished["numbers"] and set(finished["numbers"]) == {"right"}
    await shots.take(page, "jobs tables in line")

    await site.visit("/jobs/", page)
    overview = (await _tables(page, "table"))[0]
    assert [column[2] for column in overview["columns"]] == ["left"] + ["right"] * 4
    gate.set()


async def test_a_long_step_label_is_shortened_with_the_whole_label_as_title(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    label = "rebuild the search index of every catalogue in every region"
    gate = asyncio.Event()
    workflow = Workflow(
        Step(gate.wait(), label=label), label=f"nightly {label}", critical=False
    )
    run = asyncio.create_task(workflow.run(scheduler=site.scheduler))
    page = await site.visit(f"/jobs/workflows/{workflow.id}")
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

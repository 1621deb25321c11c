"""User journeys through the dashboard in a real headless Chromium.

Each journey serves a real application (``aiohttp_jobs.setup`` plus
``aiohttp_jobs.dashboard.setup``) on a free port of 127.0.0.1, drives the
browser as a person would, and saves a full-page screenshot of every page it
visits (see ``browser_support.SCREENSHOTS``). Assertions are Playwright's
auto-waiting ``expect()``: a live change must arrive without a reload.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Locator, Page, expect

import aiohttp_jobs
from aiohttp_jobs import Context, Step, Workflow
from tests.dashboard.browser_support import (
    NO_RELOAD,
    STILL_LOADED,
    Screenshots,
    ServeDashboard,
    act,
    confirming,
    filter_jobs,
    follow,
    go_to,
    job_row,
    journey_tasks,
    next_page,
    task_row,
    tid,
    until_live,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


# -- journeys -------------------------------------------------------------------


async def test_open_jobs_and_visit_every_page(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard(environment="staging")
    gate = asyncio.Event()
    running = await site.scheduler.spawn(
        gate.wait(), "import-catalogue", tags=("bulk",)
    )
    done = await site.scheduler.spawn(
        asyncio.sleep(0, "ok"), "send-mail", priority="high"
    )
    await done.wait()

    page = await site.visit("/jobs")
    assert page.url == site.url("/jobs/")  # on to the overview
    await expect(page.locator(tid("env-banner"))).to_contain_text("staging")
    await expect(page.locator(tid("count-running"))).to_have_text("1")
    await expect(page.locator(tid("count-succeeded"))).to_have_text("1")
    await shots.take(page, "overview")

    await go_to(page, "Jobs")
    await expect(page).to_have_url(site.url("/jobs/jobs"))
    await expect(page.locator(tid("job-row"))).to_have_count(2)
    await shots.take(page, "jobs")

    await follow(page, job_row(page, running.id).locator(tid("job-link")))
    await expect(page.locator(tid("job-detail"))).to_have_attribute(
        "data-job-id", running.id
    )
    await expect(page.locator(tid("job-state"))).to_have_text("running")
    await shots.take(page, "job running")

    await go_to(page, "Tasks")
    await expect(page).to_have_url(site.url("/jobs/tasks"))
    await expect(page.locator(tid("task-row"))).to_have_count(2)
    await shots.take(page, "tasks")

    await go_to(page, "Workflows")
    await expect(page).to_have_url(site.url("/jobs/workflows"))
    await expect(page.locator(tid("empty-state")).first).to_be_visible()
    await shots.take(page, "workflows, none yet")

    await go_to(page, "Audit")
    await expect(page).to_have_url(site.url("/jobs/audit"))
    await shots.take(page, "audit, empty")

    # From the keyboard: "g j" goes to the jobs, "j" and Enter open the first,
    # "/" jumps to the search box.
    async with next_page(page):
        await page.keyboard.press("g")
        await page.keyboard.press("j")
    await expect(page).to_have_url(site.url("/jobs/jobs"))
    await page.keyboard.press("j")
    async with next_page(page):
        await page.keyboard.press("Enter")
    await expect(page.locator(tid("job-detail"))).to_be_visible()
    await page.go_back()
    await until_live(page)
    await page.keyboard.press("/")
    await expect(page.locator(tid("search-input"))).to_be_focused()

    # A system in dark mode: the dashboard follows it.
    await page.emulate_media(color_scheme="dark")
    for path, label in (("/jobs/", "overview"), ("/jobs/jobs", "jobs")):
        await site.visit(path, page)
        background = await page.evaluate(
            "getComputedStyle(document.body).backgroundColor"
        )
        assert _luminance(background) < 0.3, background
        await shots.take(page, f"{label} in dark mode")
    await page.emulate_media(color_scheme="light")

    # A phone-sized window: the same pages, readable.
    await page.set_viewport_size({"width": 390, "height": 844})
    for path, label in (("/jobs/", "overview"), ("/jobs/jobs", "jobs")):
        await site.visit(path, page)
        await shots.take(page, f"{label} on a phone")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{label}: the page is {width} px wide on a phone"
    gate.set()


async def _set_hidden(page: Page, hidden: bool) -> None:
    """The page's tab goes out of view (or back), as the browser tells a page."""
    await page.evaluate(
        """hidden => {
            const state = hidden ? "hidden" : "visible";
            const values = [["hidden", hidden], ["visibilityState", state]];
            for (const [name, value] of values)
                Object.defineProperty(document, name, {value, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def _luminance(css_colour: str) -> float:
    """0 (black) to 1 (white), from ``rgb(r, g, b)``."""
    red, green, blue = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


async def test_a_running_job_turns_succeeded_without_a_reload(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    gate = asyncio.Event()

    async def export() -> str:
        aiohttp_jobs.current_job().set_progress(1, 4, "exporting orders")
        await gate.wait()
        return "42 orders"

    job = await site.scheduler.spawn(export(), "export-orders")
    page = await site.visit(f"/jobs/jobs/{job.id}")
    state = page.locator(tid("job-state"))
    await expect(state).to_have_text("running")
    await expect(page.locator(tid("job-progress"))).to_contain_text("exporting orders")
    await shots.take(page, "job running")
    await page.evaluate(NO_RELOAD)

    gate.set()
    await expect(state).to_have_text("succeeded")
    await expect(page.locator(tid("job-detail"))).to_have_attribute(
        "data-state", "succeeded"
    )
    # The rest of the page follows: the result, no Cancel button any more.
    await expect(page.locator(tid("job-result"))).to_contain_text("42 orders")
    await expect(page.locator(tid("cancel-job"))).to_have_count(0)
    assert await page.evaluate(STILL_LOADED)
    await shots.take(page, "job succeeded")

    # The list, too: a row changes state in place.
    second_gate = asyncio.Event()
    second = await site.scheduler.spawn(second_gate.wait(), "export-orders")
    await site.visit("/jobs/jobs", page)
    row = job_row(page, second.id)
    await expect(row).to_have_attribute("data-state", "running")
    await page.evaluate(NO_RELOAD)
    await shots.take(page, "list with a running job")
    second_gate.set()
    await expect(row).to_have_attribute("data-state", "succeeded")
    await expect(row.locator(tid("job-state"))).to_have_text("succeeded")
    assert await page.evaluate(STILL_LOADED)
    await shots.take(page, "list after it succeeded")


async def test_the_row_chosen_with_the_keyboard_survives_a_live_refresh(
    serve_dashboard: ServeDashboard,
) -> None:
    site = await serve_dashboard()
    gate = asyncio.Event()
    first = await site.scheduler.spawn(gate.wait(), "import-catalogue")
    page = await site.visit("/jobs/jobs")
    rows = page.locator(tid("job-row"))
    await expect(rows).to_have_count(1)
    await page.keyboard.press("j")
    focused = page.locator("tr[data-row]:focus")
    await expect(focused).to_have_attribute("data-job-id", first.id)
    # A job the page does not show yet makes it fetch its content again,
    # which replaces the table the chosen row was in.
    await page.evaluate(NO_RELOAD)
    await site.scheduler.spawn(gate.wait(), "send-mail")
    await expect(rows).to_have_count(2)
    assert await page.evaluate(STILL_LOADED)
    await expect(focused).to_have_attribute("data-job-id", first.id)
    async with next_page(page):
        await page.keyboard.press("Enter")
    await expect(page.locator(tid("job-detail"))).to_have_attribute(
        "data-job-id", first.id
    )
    gate.set()


async def test_a_hidden_tab_pauses_its_stream_and_catches_up_when_back(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    scheduler = site.scheduler
    # The job finishes while the tab is out of view (its stream closed): back
    # in view, the page catches up without a reload.
    gate = asyncio.Event()
    job = await scheduler.spawn(gate.wait(), "export-orders")
    page = await site.visit(f"/jobs/jobs/{job.id}")
    await _set_hidden(page, True)
    status = page.locator(tid("live-status"))
    await expect(status).to_have_attribute("data-state", "paused")
    # The server lets go of the closed stream (no ping needed) and, with no
    # other stream open, stops listening to the scheduler.
    for _ in range(200):
        if not scheduler.events:
            break
        await asyncio.sleep(0.05)
    assert not scheduler.events
    gate.set()
    await job.wait()
    await _set_hidden(page, False)
    await expect(status).to_have_attribute("data-state", "live")
    await expect(page.locator(tid("job-state"))).to_have_text("succeeded")
    await shots.take(page, "caught up after the tab came back")


async def test_cancel_a_job_from_its_page(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    job = await site.scheduler.spawn(asyncio.Event().wait(), "reindex-search")
    page = await site.visit(f"/jobs/jobs/{job.id}")
    await expect(page.locator(tid("job-state"))).to_have_text("running")
    await shots.take(page, "before cancel")

    # Saying no to the confirmation changes nothing.
    declined = await confirming(page, answer=False, once=True)
    await page.locator(tid("cancel-job")).click()
    assert declined, "cancelling asks for a confirmation first"
    await expect(page.locator(tid("job-state"))).to_have_text("running")
    assert job.active

    asked = await confirming(page)
    await act(page, page.locator(tid("cancel-job")))
    await expect(page.locator(tid("job-state"))).to_have_text("cancelled")
    assert asked == declined, "the same question again"
    assert job.state is aiohttp_jobs.JobState.CANCELLED
    await shots.take(page, "after cancel")

    await site.visit("/jobs/audit", page)
    rows = page.locator(tid("audit-row"))
    await expect(rows).to_have_count(1)  # the cancel declined left no trace
    await expect(rows).to_have_attribute("data-action", "cancel")
    await expect(rows).to_have_attribute("data-outcome", "ok")
    await shots.take(page, "audit log")


async def test_run_a_task_now_and_see_its_run_appear(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    page = await site.visit("/jobs/tasks")
    task = task_row(page, "nightly-report")
    await expect(task.locator(tid("next-fires"))).to_contain_text("03:00")
    await expect(task.locator(tid("task-run-row"))).to_have_count(0)
    await shots.take(page, "tasks before")

    await confirming(page)
    await act(page, task.locator(tid("run-now")))
    run = task.locator(tid("task-run-row"))
    await expect(run).to_have_count(1)
    await expect(run).to_have_attribute("data-outcome", "succeeded")
    await shots.take(page, "tasks after run now")

    # Its run is a job: find it with the jobs list's filter, open its page.
    await go_to(page, "Jobs")
    await filter_jobs(page, "nightly-report")
    rows = page.locator(tid("job-row"))
    await expect(rows).to_have_count(1)
    await shots.take(page, "jobs filtered by name")
    await follow(page, rows.locator(tid("job-link")))
    await expect(page.locator(tid("job-task"))).to_contain_text("nightly-report")
    await expect(page.locator(tid("job-result"))).to_contain_text("report sent")
    await shots.take(page, "the run's job")


async def test_a_workflows_steps_change_colour_in_its_graph(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    site = await serve_dashboard()
    gates = {name: asyncio.Event() for name in ("build", "test", "deploy")}

    async def work(name: str) -> str:
        await gates[name].wait()
        if name == "deploy":
            raise ConnectionError("web1 refused the deployment")
        return f"{name}: ok"

    build = Step(work("build"), label="build")
    check = Step(work("test"), label="test", requires=build)
    deploy = Step(work("deploy"), label="deploy", requires=check)
    workflow = Workflow(build, check, deploy, label="release", critical=False)
    run = asyncio.create_task(workflow.run(scheduler=site.scheduler))

    page = await site.visit("/jobs/workflows")
    row = page.locator(f'{tid("workflow-row")}[data-workflow-id="{workflow.id}"]')
    await expect(row).to_have_attribute("data-state", "running")
    await shots.take(page, "workflows")
    await follow(page, row.get_by_role("link").first)

    graph = page.locator(tid("workflow-graph"))
    node = {
        step.label: graph.locator(f'g[data-step-id="{step.id}"]')
        for step in (build, check, deploy)
    }
    await expect(node["build"]).to_have_attribute("data-state", "running")
    await expect(node["deploy"]).to_have_attribute("data-state", "idle")
    await page.evaluate(NO_RELOAD)
    colours = {"idle": await _fill(node["deploy"])}
    colours["running"] = await _fill(node["build"])
    await shots.take(page, "graph: build running")

    gates["build"].set()
    await expect(node["build"]).to_have_attribute("data-state", "succeeded")
    await expect(node["test"]).to_have_attribute("data-state", "running")
    await expect(node["build"]).to_have_class(re.compile(r"\bwf-succeeded\b"))
    colours["succeeded"] = await _fill(node["build"])
    await shots.take(page, "graph: test running")

    gates["test"].set()
    gates["deploy"].set()
    await expect(node["deploy"]).to_have_attribute("data-state", "failed")
    colours["failed"] = await _fill(node["deploy"])
    await expect(page.locator(tid("workflow-state"))).to_have_text("failed")
    assert await page.evaluate(STILL_LOADED)
    # Every state has a colour of its own.
    assert len(set(colours.values())) == len(colours), colours
    await expect(page.locator(tid("workflow-debrief"))).to_contain_text(
        "web1 refused the deployment"
    )
    await shots.take(page, "graph: deploy failed")
    assert await run is False


async def _fill(node: Locator) -> str:
    """The colour a graph node is painted with (its shape's fill)."""
    fill: str = await node.evaluate(
        "g => getComputedStyle(g.querySelector('rect, ellipse, polygon, path')).fill"
    )
    return fill


async def test_steer_the_tasks_and_cancel_what_a_filter_matches(
    serve_dashboard: ServeDashboard, shots: Screenshots
) -> None:
    receipts: list[object] = []
    tasks = journey_tasks()

    @tasks.task(keyword="order-shipped")
    async def notify_customer(ctx: Context) -> None:
        receipts.append(ctx.params["order"])

    @tasks.task(name="sync-prices", interval=3600)
    async def sync_prices(ctx: Context) -> None:
        raise RuntimeError("the price feed is down")

    @tasks.dynamic_task(name="remind")
    async def remind(ctx: Context) -> None:
        return None

    site = await serve_dashboard(tasks=tasks)
    runtime = aiohttp_jobs.get_tasks(site.app)
    await runtime.schedule_task("remind", "ada.tea", interval=600)

    page = await site.visit("/jobs/tasks")
    asked = await confirming(page)

    def task(key: str) -> Locator:
        return task_row(page, key)

    # Disable a cron task, then enable it again.
    await act(page, task("nightly-report").locator(tid("toggle-enabled")))
    await expect(task("nightly-report")).to_have_attribute("data-enabled", "false")
    await shots.take(page, "nightly-report disabled")
    assert not {i.key: i for i in await runtime.list_tasks()}["nightly-report"].enabled
    await act(page, task("nightly-report").locator(tid("toggle-enabled")))
    await expect(task("nightly-report")).to_have_attribute("data-enabled", "true")

    # Fire a keyword with a JSON payload (a payload that is not an object
    # is stopped in the page).
    await page.locator(tid("fire-keyword-select")).select_option("order-shipped")
    await page.locator(tid("fire-payload")).fill("[7]")
    await page.locator(tid("fire-keyword")).click()
    await expect(page.locator(tid("fire-payload"))).to_have_value("[7]")
    assert any("JSON object" in question for question in asked), asked
    await page.locator(tid("fire-payload")).fill('{"order": 7}')
    await act(page, page.locator(tid("fire-keyword")))
    fired = task("notify_customer").locator(tid("task-run-row"))
    await expect(fired).to_have_count(1)
    await expect(fired).to_have_attribute("data-outcome", "succeeded")
    assert receipts == [7]
    await shots.take(page, "keyword fired")

    # A run that failed can be retried.
    await act(page, task("sync-prices").locator(tid("run-now")))
    failed = task("sync-prices").locator(tid("task-run-row"))
    await expect(failed.first).to_have_attribute("data-outcome", "failed")
    await expect(failed.first).to_contain_text("the price feed is down")
    await act(page, failed.first.locator(tid("retry-run")))
    await expect(task("sync-prices").locator(tid("task-run-row"))).to_have_count(2)
    await shots.take(page, "failed run retried")

    # A dynamic instance can be unscheduled.
    await act(page, task("remind:ada.tea").locator(tid("unschedule")))
    await expect(task("remind:ada.tea")).to_have_count(0)
    assert await runtime.store.get("remind:ada.tea") is None
    await shots.take(page, "instance unscheduled")

    # Cancel every job a filter matches: the count first, then the deed.
    batch = [
        await site.scheduler.spawn(asyncio.Event().wait(), "batch-import")
        for _ in range(3)
    ]
    other = await site.scheduler.spawn(asyncio.Event().wait(), "keep-me")
    await site.visit("/jobs/jobs", page)
    await filter_jobs(page, "batch-import")
    await expect(page.locator(tid("job-row"))).to_have_count(3)
    await follow(page, page.locator(tid("bulk-cancel")))
    await expect(page.locator(tid("bulk-count"))).to_have_attribute("data-matched", "3")
    await shots.take(page, "bulk cancel, the count first")
    await act(page, page.locator(tid("bulk-cancel-confirm")))
    await shots.take(page, "bulk cancel done")
    assert [job.state.value for job in batch] == ["cancelled"] * 3
    assert other.active
    await site.visit("/jobs/audit", page)
    actions = page.locator(tid("audit-row"))
    await expect(actions.first).to_have_attribute("data-action", "bulk_cancel")
    await shots.take(page, "audit of every action")

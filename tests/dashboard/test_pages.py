"""Every page of the dashboard answers, shows what it should, escapes what it
shows, and links relatively (so it works under any prefix)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from urllib.parse import urljoin

import pytest
from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import Priority, Step, Workflow, dashboard
from aiohttp_jobs.testing import FakeClock
from tests.dashboard.support import (
    ClientFactory,
    failing,
    finished,
    forever,
    make_app,
    returning,
    scheduler_of,
)

PAGES = ["/jobs/", "/jobs/jobs", "/jobs/tasks", "/jobs/workflows", "/jobs/audit"]


async def test_every_page_answers_with_html(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app(title="Shop", environment="staging"))
    for path in PAGES:
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == "text/html"
        text = await response.text()
        assert "<title>" in text and "Shop" in text
        assert 'data-testid="env-banner"' in text and "staging" in text
        assert 'data-testid="live-status"' in text


async def test_the_prefix_alone_redirects_to_the_overview(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    response = await client.get("/jobs", allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == "./jobs/"
    response = await client.get("/jobs")
    assert response.status == 200 and str(response.url).endswith("/jobs/")


async def test_a_job_named_like_a_script_shows_as_text(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    evil = "<script>alert(1)</script>"
    ok = await finished(scheduler, returning("<b>bold</b>"), evil, tags=("<i>t</i>",))
    bad = await finished(scheduler, failing(ValueError("<img src=x onerror=1>")), evil)
    for path in ["/jobs/jobs", f"/jobs/jobs/{ok.id}", f"/jobs/jobs/{bad.id}", "/jobs/"]:
        text = await (await client.get(path)).text()
        assert "<script>alert" not in text and "<b>bold" not in text, path
        assert "<img src=x" not in text and "<i>t</i>" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    # No inline script anywhere: the CSP allows none.
    text = await (await client.get("/jobs/jobs")).text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", text) == []


async def test_jobs_page_lists_live_and_finished_jobs(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    done = await finished(scheduler, returning(1), "done-job")
    running = await scheduler.spawn(forever(), "running-job", priority=Priority.HIGH)
    text = await (await client.get("/jobs/jobs")).text()
    assert f'data-job-id="{done.id}" data-state="succeeded"' in text
    assert f'data-job-id="{running.id}" data-state="running"' in text
    assert f'href="./jobs/{done.id}"' in text  # relative to /jobs/jobs
    await running.close()


async def test_jobs_page_filters_search_and_pages_by_keyset(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app(page_size=4, scan_limit=100))
    scheduler = scheduler_of(client)
    for n in range(10):
        coro = failing(KeyError(f"missing {n}")) if n % 3 == 0 else returning(n)
        await finished(scheduler, coro, f"job{n}", tags=(f"t{n % 2}",))
    text = await (await client.get("/jobs/jobs")).text()
    assert re.findall(r'data-job-id="[^"]+" data-state="(\w+)"', text) == [
        "failed",
        "succeeded",
        "succeeded",
        "failed",
    ]
    match = re.search(r'href="(\./jobs\?before=[^"]+)" rel="next"', text)
    assert match, "a relative link to the next page"
    page2 = await (
        await client.get("/jobs/" + match.group(1)[2:].replace("&amp;", "&"))
    ).text()
    assert "job5" in page2 and "job9" not in page2
    # Filters: state, name, tag, priority; bookmarkable.
    api = await (await client.get("/jobs/api/jobs?state=failed")).json()
    assert [j["name"] for j in api["finished"]] == ["job9", "job6", "job3", "job0"]
    api = await (await client.get("/jobs/api/jobs?name=job4")).json()
    assert [j["name"] for j in api["finished"]] == ["job4"]
    api = await (await client.get("/jobs/api/jobs?tag=t1&limit=50")).json()
    assert {j["name"] for j in api["finished"]} == {
        "job1",
        "job3",
        "job5",
        "job7",
        "job9",
    }
    api = await (await client.get("/jobs/api/jobs?priority=high")).json()
    assert api["finished"] == [] and api["live"] == []
    # Search: over error text, bounded, and it says how far it looked.
    api = await (await client.get("/jobs/api/jobs?q=MISSING+6")).json()
    assert [j["name"] for j in api["finished"]] == ["job6"]
    assert api["scanned"] == 10 and api["exhausted"]
    text = await (await client.get("/jobs/jobs?q=missing+6")).text()
    assert 'data-testid="scan-info"' in text and "Looked at 10 of 10" in text
    assert 'value="missing 6"' in text  # the form shows the query back
    text = await (await client.get("/jobs/jobs?q=nothing-like-this")).text()
    assert 'data-testid="empty-state"' in text and "No job matches" in text


async def test_a_search_stops_at_the_scan_limit(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app(scan_limit=100))
    scheduler = scheduler_of(client)
    await finished(scheduler, failing(ValueError("needle")), "old")
    for n in range(150):
        await finished(scheduler, returning(n), "hay")
    api = await (await client.get("/jobs/api/jobs?q=needle")).json()
    assert api["finished"] == [] and api["scanned"] == 100
    assert api["next"] and not api["exhausted"]
    api = await (
        await client.get(
            "/jobs/api/jobs", params={"q": "needle", "before": api["next"]}
        )
    ).json()
    assert [j["name"] for j in api["finished"]] == ["old"]


async def test_bad_queries_are_client_errors(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    for query in (
        "state=exploded",
        "priority=urgent",
        "limit=0",
        "limit=x",
        "before=junk",
    ):
        response = await client.get(f"/jobs/api/jobs?{query}")
        assert response.status == 400, query
        assert "error" in await response.json()
        response = await client.get(f"/jobs/jobs?{query}")
        assert response.status == 400, query


async def test_live_states_page_through_the_scheduler(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app(page_size=2))
    scheduler = scheduler_of(client)
    jobs = [await scheduler.spawn(forever(), f"live{n}") for n in range(5)]
    api = await (await client.get("/jobs/api/jobs?state=running")).json()
    assert [j["name"] for j in api["live"]] == ["live4", "live3"]
    assert api["live_total"] == 5 and api["next"] == jobs[3].id
    api = await (
        await client.get(f"/jobs/api/jobs?state=running&before={api['next']}")
    ).json()
    assert [j["name"] for j in api["live"]] == ["live2", "live1"]
    for job in jobs:
        await job.close()


async def test_job_page_shows_timeline_progress_and_outcome(
    aiohttp_client: ClientFactory,
) -> None:
    def redact(job: object, exc: BaseException) -> str:
        return f"{type(exc).__name__}: [redacted]"

    client = await aiohttp_client(make_app(format_error=redact, max_text=100))
    scheduler = scheduler_of(client)
    bad = await finished(scheduler, failing(ValueError("password=hunter2")), "login")
    text = await (await client.get(f"/jobs/jobs/{bad.id}")).text()
    assert "ValueError: [redacted]" in text and "hunter2" not in text
    good = await finished(
        scheduler, returning("x" * 500), "big", priority=Priority.HIGH
    )
    text = await (await client.get(f"/jobs/jobs/{good.id}")).text()
    assert "Shortened to 100 characters" in text and "x" * 101 not in text
    assert 'data-testid="job-timeline"' in text and "high" in text
    api = await (await client.get(f"/jobs/api/jobs/{good.id}")).json()
    assert api["state"] == "succeeded" and api["clipped"] and api["priority"] == "high"
    assert api["created_at"] <= api["started_at"] <= api["finished_at"]

    async def reporting() -> None:
        aiohttp_jobs.current_job().set_progress(3, 4, "three of four")
        await forever()

    running = await scheduler.spawn(reporting(), "reporter")
    await asyncio.sleep(0)
    text = await (await client.get(f"/jobs/jobs/{running.id}")).text()
    assert '<progress max="1" value="0.75">' in text and "three of four" in text
    assert 'data-testid="cancel-job"' in text
    await running.close()
    response = await client.get("/jobs/jobs/nope-1")
    assert response.status == 404
    response = await client.get("/jobs/api/jobs/nope-1")
    assert response.status == 404 and "error" in await response.json()


async def test_overview_counts_capacity_chart_and_failures(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    text = await (await client.get("/jobs/")).text()
    assert 'data-testid="empty-state"' in text  # no failures yet
    for n in range(3):
        await finished(scheduler, returning(n), "ok")
    await finished(scheduler, failing(RuntimeError("down")), "broken")
    running = await scheduler.spawn(forever(), "runner", priority=Priority.HIGH)
    api = await (await client.get("/jobs/api/overview")).json()
    assert api["counts"]["running"] == 1
    assert api["last_hour"]["counts"] == {"succeeded": 3, "failed": 1, "cancelled": 0}
    assert (
        sum(api["last_hour"]["finished"]) == 4 and api["last_hour"]["failed"][-1] == 1
    )
    assert [f["name"] for f in api["recent_failures"]] == ["broken"]
    high = next(p for p in api["priorities"] if p["priority"] == "high")
    assert high["running"] == 1
    assert api["instances"][0]["this"]
    text = await (await client.get("/jobs/")).text()
    assert 'data-testid="throughput-chart"' in text and "<svg" in text
    assert 'data-testid="count-running">1<' in text
    # Counted incrementally: later jobs add to what was counted.
    await finished(scheduler, returning(9), "ok")
    api = await (await client.get("/jobs/api/overview")).json()
    assert api["last_hour"]["counts"]["succeeded"] == 4
    await running.close()


async def test_workflows_list_graph_nested_and_debrief(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    text = await (await client.get("/jobs/workflows")).text()
    assert 'data-testid="empty-state"' in text
    fetch = Step(returning(1), label="fetch")
    inner = Workflow(Step(returning(2), label="inner-step"), label="nested")
    boom = Step(failing(RuntimeError("<b>boom</b>")), label="boom", requires=[fetch])
    workflow = Workflow(fetch, inner, boom, label="release", scheduler=scheduler)
    with pytest.raises(aiohttp_jobs.StepFailedError):
        await workflow.run()
    text = await (await client.get("/jobs/workflows")).text()
    assert f'data-workflow-id="{workflow.id}" data-state="failed"' in text
    text = await (await client.get(f"/jobs/workflows/{workflow.id}")).text()
    assert (
        'data-testid="workflow-graph"' in text and f'data-step-id="{boom.id}"' in text
    )
    assert 'data-testid="workflow-debrief"' in text and "<b>boom" not in text
    assert "<details open><summary><strong>nested</strong>" in text
    api = await (await client.get(f"/jobs/api/workflows/{workflow.id}")).json()
    assert api["step_states"][boom.id] == "failed"
    assert api["step_states"][inner.steps[0].id] == "succeeded"
    job_id = fetch.job.id if fetch.job is not None else ""
    text = await (await client.get(f"/jobs/jobs/{job_id}")).text()
    assert 'data-testid="job-workflow"' in text
    assert (await client.get("/jobs/workflows/nope")).status == 404


async def test_tasks_page_shows_schedules_in_words_and_dst_changes(
    aiohttp_client: ClientFactory,
) -> None:
    tasks = aiohttp_jobs.Tasks()

    @tasks.task(schedule="30 2 * * *", timezone="Europe/Berlin")
    async def nightly(ctx: aiohttp_jobs.Context) -> None:
        pass

    @tasks.task(keyword="signed-up")
    async def welcome(ctx: aiohttp_jobs.Context) -> None:
        pass

    @tasks.task(interval=300, enabled=False)
    async def sweep(ctx: aiohttp_jobs.Context) -> None:
        pass

    clock = FakeClock(datetime(2026, 3, 27, 12, tzinfo=UTC))
    client = await aiohttp_client(make_app(tasks=tasks, clock=clock))
    api = await (await client.get("/jobs/api/tasks")).json()
    rows = {t["key"]: t for t in api["tasks"]}
    night = rows["nightly"]
    assert (
        night["expression"] == "30 2 * * *" and night["words"] == "at 02:30 every day"
    )
    assert night["timezone"] == "Europe/Berlin"
    assert len(night["next_fires"]) == 5
    assert [f["dst_change"] for f in night["next_fires"]] == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert rows["welcome"]["keyword"] == "signed-up"
    assert rows["welcome"]["words"] == "when the keyword 'signed-up' is fired"
    assert rows["sweep"]["words"] == "every 5 minutes" and not rows["sweep"]["enabled"]
    assert api["keywords"] == ["signed-up"]
    text = await (await client.get("/jobs/tasks")).text()
    assert "DST change" in text and 'data-testid="next-fires"' in text
    assert 'data-task-key="sweep" data-enabled="false"' in text


async def test_pages_without_tasks_or_setup(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    text = await (await client.get("/jobs/tasks")).text()
    assert 'data-testid="empty-state"' in text and "tasks=tasks" in text
    app = web.Application()
    dashboard.setup(app)  # but not aiohttp_jobs.setup(app)
    client = await aiohttp_client(app)
    response = await client.get("/jobs/jobs")
    assert response.status == 503 and "aiohttp_jobs.setup(app)" in await response.text()


async def test_under_any_prefix_every_link_is_relative(
    aiohttp_client: ClientFactory,
) -> None:
    app = web.Application()
    aiohttp_jobs.setup(app, wait_timeout=0.0)
    dashboard.setup(app, prefix="/admin/background")
    client = await aiohttp_client(app)
    job = await finished(scheduler_of(client), returning(1), "x")
    for path in [
        "/admin/background/",
        "/admin/background/jobs",
        f"/admin/background/jobs/{job.id}",
    ]:
        text = await (await client.get(path)).text()
        links = re.findall(
            r'(?:href|src|action|data-stream|data-workflow-api)="([^"]*)"', text
        )
        assert links, path
        links = [li for li in links if li != "data:,"]  # the empty favicon
        for link in links:
            assert not link.startswith(("/", "http")), (path, link)
        # Each resolves, from the page, to a dashboard route that answers.
        for link in {li for li in links if not li.startswith("#")}:
            target = urljoin(f"http://h{path}", link.replace("&amp;", "&"))
            response = await client.get(target[len("http://h") :])
            assert response.status in (200,), (path, link, target)
            response.close()
    response = await client.get("/admin/background", allow_redirects=False)
    assert response.headers["Location"] == "./background/"


async def test_the_applications_own_templates_are_untouched(
    aiohttp_client: ClientFactory,
) -> None:
    import aiohttp_jinja2
    import jinja2

    app = web.Application()
    aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"base.html": "mine {{ x }}"}))
    aiohttp_jobs.setup(app)
    dashboard.setup(app)

    async def page(request: web.Request) -> web.Response:
        return aiohttp_jinja2.render_template("base.html", request, {"x": 1})

    app.router.add_get("/", page)
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "mine 1"
    assert "Overview" in await (await client.get("/jobs/")).text()


async def test_the_next_page_keeps_the_filters_and_the_page_size(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)
    for n in range(5):
        await finished(scheduler, returning(n), "same", tags=("t",))
    api = await (await client.get("/jobs/api/jobs?tag=t&limit=2")).json()
    assert api["query"] == {"tag": "t", "limit": "2"}
    text = await (await client.get("/jobs/jobs?tag=t&limit=2")).text()
    match = re.search(r'href="\./jobs\?([^"]+)" rel="next"', text)
    assert match and "tag=t" in match.group(1) and "limit=2" in match.group(1)


async def test_outcomes_read_as_people_expect(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    scheduler = scheduler_of(client)

    async def fails_deep() -> None:
        aiohttp_jobs.current_job().set_progress(1, 4, "first quarter")
        raise LookupError("no such order")

    bad = await finished(scheduler, fails_deep(), "deep")  # awaited: wait() re-raised
    api = await (await client.get(f"/jobs/api/jobs/{bad.id}")).json()
    # The traceback is the job's own, not that of the code that awaited it.
    assert "in fails_deep" in api["error"] and "in finished" not in api["error"]
    assert api["error"].rstrip().endswith("LookupError: no such order")
    assert api["progress"] is None  # a finished job shows no progress bar
    good = await finished(scheduler, returning("42 orders"), "text")
    api = await (await client.get(f"/jobs/api/jobs/{good.id}")).json()
    assert api["result"] == "42 orders"  # a string as it is, not its repr

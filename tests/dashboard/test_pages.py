"""Every page of the dashboard answers, shows what it should, escapes what it
shows, and links relatively (so it works under any prefix)."""

from __future__ import annotations

import re

from aiohttp_jobs import Priority
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

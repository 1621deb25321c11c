"""The example application: every endpoint, the dashboard at /jobs, and
``python -m example_app``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from example_app.app import create_app

ROOT = Path(__file__).resolve().parents[2]


async def _finished(client: Any, job_id: str) -> dict[str, Any]:
    for _ in range(500):
        resp = await client.get(f"/jobs/api/jobs/{job_id}")
        job: dict[str, Any] = await resp.json()
        if job["state"] not in ("pending", "running"):
            return job
        await asyncio.sleep(0.005)
    raise AssertionError(f"job {job_id} did not finish")  # pragma: no cover


async def test_index_lists_every_endpoint(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app())
    resp = await client.get("/")
    assert resp.status == 200
    page = await resp.text()
    for path in (
        "/api/orders",
        "/api/orders/unprotected",
        "/api/reports",
        "/api/thumbnails",
        "/api/failing",
        "/api/workflows/release",
        "/api/signup/{user}",
    ):
        assert f"<code>{path}</code>" in page
    assert "<a href='/jobs/'>Open the dashboard</a>" in page
    assert "<code>/jobs" not in page  # the dashboard's own routes are not listed


async def test_orders_reports_thumbnails_and_failures(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app())

    resp = await client.post("/api/orders?delay=0&item=pen")
    assert resp.status == 201
    assert (await resp.json())["item"] == "pen"
    assert [o["item"] for o in await (await client.get("/api/orders")).json()] == [
        "pen"
    ]

    resp = await client.post("/api/reports?steps=3&delay=0")
    assert resp.status == 202
    report = await resp.json()
    assert resp.headers["Location"] == f"/jobs/api/jobs/{report['id']}"
    assert report["api"] == resp.headers["Location"]
    assert report["page"] == f"/jobs/jobs/{report['id']}"
    assert (await client.get(report["page"])).status == 200
    report = await _finished(client, report["id"])
    assert report["state"] == "succeeded"
    assert report["result"] == "{'sections': 3}"
    assert report["progress"] is None  # a finished job's progress is history

    resp = await client.post("/api/thumbnails?size=10&seconds=0")
    thumb = await _finished(client, (await resp.json())["id"])
    assert thumb["state"] == "succeeded"
    assert len(thumb["result"]) == 16  # a str result is shown as it is

    resp = await client.post("/api/failing")
    failed = await _finished(client, (await resp.json())["id"])
    assert failed["state"] == "failed"
    assert "RuntimeError: the payment provider said no" in failed["error"]

    listing = await (await client.get("/jobs/api/jobs")).json()
    assert {job["name"] for job in listing["finished"]} == {
        "report",
        "thumbnail",
        "charge-card",
    }
    assert (await client.get("/jobs/api/jobs/unknown")).status == 404
    assert (await client.post("/api/reports?steps=x")).status == 400


async def test_a_running_report_shows_its_progress_and_can_be_cancelled(
    aiohttp_client: Any,
) -> None:
    client = await aiohttp_client(create_app())
    resp = await client.post("/api/reports?steps=4&delay=30")
    report = await resp.json()
    for _ in range(500):
        job = await (await client.get(report["api"])).json()
        if job["progress"] is not None:
            break
        await asyncio.sleep(0.005)
    assert job["state"] == "running" and job["cancellable"] is True
    assert job["progress"] == {
        "done": 0.0,
        "total": 4.0,
        "message": "section 1 of 4",
        "fraction": 0.0,
    }
    # Steered through the dashboard's JSON API (a same-origin request).
    resp = await client.post(
        f"{report['api']}/cancel", headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert resp.status == 200, await resp.text()
    assert (await _finished(client, report["id"]))["state"] == "cancelled"


async def test_overload_answers_503_with_retry_after(aiohttp_client: Any) -> None:
    app = create_app(limit=1, pending_limit=1, wait_timeout=0.01, close_timeout=0.01)
    client = await aiohttp_client(app)
    assert (await client.post("/api/reports?steps=1&delay=30")).status == 202
    assert (await client.post("/api/reports?steps=1&delay=30")).status == 202
    resp = await client.post("/api/reports?steps=1&delay=30")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    listing = await (await client.get("/jobs/api/jobs?state=active")).json()
    assert sorted(job["state"] for job in listing["live"]) == ["pending", "running"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_python_m_example_app_serves_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "example_app",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("example_app: listening on http://127.0.0.1:")
        url = line.split()[3]
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).decode() == (
            f"example_app: dashboard at {url}jobs\n"
        )
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                assert resp.status == 200
                assert "aiohttp-jobs example application" in await resp.text()
            async with session.get(f"{url}jobs") as resp:  # the dashboard
                assert resp.status == 200 and resp.url.path == "/jobs/"
                assert "aiohttp-jobs example" in await resp.text()
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stdout.read(), 20)).decode()
        assert rest.strip() == "example_app: stopped"
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:  # pragma: no cover - only when a step failed
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "the request body is empty"),
        (b"   ", "the request body is empty"),
        (b"{", "not valid JSON"),
        (b"{'user': 'bob'}", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
async def test_malformed_or_empty_json_is_a_400_with_a_message(
    aiohttp_client: Any, body: bytes, problem: str
) -> None:
    """Every endpoint that reads JSON answers 400 and says what is wrong (it
    used to answer 500), including endpoints added later: the check is one
    middleware of the application."""
    app = create_app()

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    app.router.add_post("/test/echo", echo)
    client = await aiohttp_client(app)
    headers = {"Content-Type": "application/json"}
    for path in ("/api/reminders", "/test/echo"):
        resp = await client.post(path, data=body, headers=headers)
        assert resp.status == 400, (path, await resp.text())
        assert problem in (await resp.json())["error"]
    resp = await client.post("/test/echo", json={"ok": True})
    assert await resp.json() == {"ok": True}

"""The observability page's example runs and shows what the page says."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from aiohttp import web

from tests.docs.examples import EXAMPLES, load_example
from tests.helpers import ROOT


def test_the_tour_shows_metrics_health_json_logs_and_spans() -> None:
    # A fresh interpreter: the tour configures OpenTelemetry for its process.
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "observability.py")],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.splitlines() == [
        "ready: 200",
        'aiohttp_jobs_jobs_finished_total{name="send-receipt",state="succeeded"} 1.0',
        'aiohttp_jobs_jobs_finished_total{name="send-receipt",state="failed"} 1.0',
        "spans: ['job send-receipt']",
    ]
    # The failure of a job nobody awaited: a JSON line naming the job.
    assert '"logger": "aiohttp_jobs.jobs"' in out.stderr
    assert '"job_name": "send-receipt"' in out.stderr
    assert "graceful shutdown: drain begins" in out.stderr


async def test_create_app_serves_health_and_metrics(aiohttp_client: Any) -> None:
    example = load_example("observability")
    app: web.Application = example.create_app(health_port=None)
    client = await aiohttp_client(app)
    assert (await client.post("/orders/7")).status == 202
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/health/ready")).status == 200
    assert (
        "aiohttp_jobs_jobs_started_total" in await (await client.get("/metrics")).text()
    )

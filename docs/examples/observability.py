# ruff: noqa: T201 - its tour prints what it shows
"""Observability of an application with background jobs (docs/observability.md):
Prometheus metrics, health checks, JSON logs with job fields, and traces.

Run it to see each piece at work: ``python docs/examples/observability.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

import aiohttp_jobs
from aiohttp_jobs import metrics

# -- logging: one handler for the whole aiohttp_jobs logger tree -------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the job and task-run fields."""

    FIELDS = ("job_id", "job_name", "task", "run_id", "attempt")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(stream: Any = None) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("aiohttp_jobs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


# -- tracing: an OpenTelemetry SDK provider (any exporter) --------------------------


def configure_tracing(exporter: Any) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


# -- the application ----------------------------------------------------------------


async def send_receipt(order_id: str) -> None:
    if order_id == "broken":
        raise ConnectionError("mail server down")
    await asyncio.sleep(0)


async def place_order(request: web.Request) -> web.Response:
    order_id = request.match_info["id"]
    await aiohttp_jobs.spawn(request, send_receipt(order_id), "send-receipt")
    return web.json_response({"order": order_id}, status=202)


def create_app(*, health_port: int | None = 8081) -> web.Application:
    app = web.Application()
    aiohttp_jobs.setup(
        app,
        health="/health",  # GET /health/live, GET /health/ready
        health_port=health_port,  # the same checks, open until the drain ends
        wait_timeout=25,
    )
    metrics.setup(app)  # a registry of its own; registry=REGISTRY to share
    app.router.add_get("/metrics", metrics.handler)
    app.router.add_post("/orders/{id}", place_order)
    return app


# -- a tour ---------------------------------------------------------------------------


async def tour() -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    exporter = InMemorySpanExporter()
    configure_tracing(exporter)
    configure_logging()
    async with TestClient(TestServer(create_app(health_port=0))) as client:
        for order_id in ("1", "broken"):
            await client.post(f"/orders/{order_id}")
        await asyncio.sleep(0.05)
        print("ready:", (await client.get("/health/ready")).status)
        scrape = await (await client.get("/metrics")).text()
        for line in scrape.splitlines():
            if line.startswith("aiohttp_jobs_jobs_finished_total"):
                print(line)
    print("spans:", sorted({span.name for span in exporter.get_finished_spans()}))


if __name__ == "__main__":
    asyncio.run(tour())

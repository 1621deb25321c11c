"""The examples of docs/aiohttp.md run, and do what the page says."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.docs.examples import load_example

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


async def test_quickstart_example(aiohttp_client: Any) -> None:
    example = load_example("aiohttp_quickstart")
    app = example.create_app()
    client = await aiohttp_client(app)
    resp = await client.post("/pay", json={"id": 7, "email": "a@example.org"})
    assert resp.status == 201
    assert await resp.json() == {"paid": 7}
    assert (await client.post("/audit")).status == 200
    resp = await client.get("/admin/jobs")
    assert resp.status == 200
    scheduler = app[example.aiohttp_jobs.SCHEDULER_KEY]
    await scheduler.wait_idle(5)
    assert app[example.DB] == [
        {"id": 7, "email": "a@example.org"},
        {"audit": "POST /audit"},
    ]
    assert [job.name for job in scheduler.history.query()] == ["send-receipt"]


async def test_shutdown_example() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "aiohttp_shutdown.py"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "client got: 200 saved"
    assert "shutdown: job 'too-long' (id=" in err.decode()
    assert "cancelled after running" in err.decode()

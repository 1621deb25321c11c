"""Gunicorn with two aiohttp workers on one store: each cron occurrence runs
once (with a store per process, each ran in both workers)."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from tests.helpers import ROOT
from tests.processes.conftest import Figures
from tests.processes.support import read_logs, wait_for_event
from tests.stores.redis_support import RedisServer

SECONDS = 5  # whole cron seconds checked while both workers run


async def test_two_gunicorn_workers_run_each_cron_occurrence_once(
    redis: RedisServer, tmp_path: Path, figures: Figures
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gunicorn",
        "tests.processes.gunicorn_app:app",
        "--worker-class",
        "aiohttp.GunicornWebWorker",
        "--workers",
        "2",
        "--bind",
        f"unix:{tmp_path / 'g.sock'}",
        "--graceful-timeout",
        "10",
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "JOBS_STORE": redis.url,
            "JOBS_LOG_DIR": str(logs),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        pids: set[int] = set()

        def both_ready(ev: dict[str, object]) -> bool:
            if ev["ev"] == "ready":
                pids.add(int(str(ev["pid"])))
            return len(pids) == 2

        await wait_for_event(logs, both_ready, timeout=30)
        ready = max(ev["t"] for ev in read_logs(logs) if ev["ev"] == "ready")
        # SECONDS whole seconds after both fire, and a margin before stopping
        await asyncio.sleep(max(0.0, math.ceil(ready) + SECONDS + 0.6 - time.time()))
        os.kill(proc.pid, signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    events = read_logs(logs)
    stopping = min(ev["t"] for ev in events if ev["ev"] == "stopping")
    # whole seconds after both workers started firing, before either stopped
    window = range(math.ceil(ready), math.floor(stopping - 0.5) + 1)
    done = Counter(round(ev["fire_at"]) for ev in events if ev["ev"] == "done")
    per_worker = Counter(ev["pid"] for ev in events if ev["ev"] == "done")
    lost = [s for s in window if done[s] == 0]
    twice = {s: done[s] for s in window if done[s] > 1}
    figures(
        "none (gunicorn -w 2, redis)",
        expected=len(window),
        lost=len(lost),
        duplicates=sum(n - 1 for n in twice.values()),
        per_worker=sorted(per_worker.values()),
    )
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    assert len(window) >= SECONDS, (ready, stopping, time.time())
    assert not lost and not twice, (
        f"lost {lost}, run more than once {twice} of {len(window)} occurrences"
    )

"""benchmarks/atomic.py runs (briefly, with the aiohttp-client load) and prints
one JSON line with medians and ratios. No timing is asserted here."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Several processes start (a server, a client per variant): on a loaded CI
# machine that alone can take most of the default per-test timeout.
@pytest.mark.timeout(180)
async def test_atomic_benchmark_prints_one_json_line() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "benchmarks" / "atomic.py"),
        "--load",
        "client",
        "--rounds",
        "1",
        "--duration",
        "0.2",
        "--connections",
        "4",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 170)
    finally:
        if proc.returncode is None:  # pragma: no cover - only when it hung
            proc.kill()  # its server stops by itself when its stdin closes
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    (line,) = out.decode().splitlines()
    result = json.loads(line)
    assert result["load"] == "client"
    assert {"plain", "atomic"} <= set(result["medians"])
    for figures in result["medians"].values():
        assert figures["rps"] > 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert {"rps", "p50", "p99"} <= set(result["ratios"]["atomic_vs_plain"])

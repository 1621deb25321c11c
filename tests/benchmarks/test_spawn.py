"""benchmarks/spawn.py runs (small and quick here) and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "spawn.py"


def test_spawn_benchmark_prints_ratios_and_memory() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--jobs", "2000", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = out.stdout.splitlines()
    result = json.loads(line)
    assert result["ratio_to_raw"]["raw_asyncio"] == 1.0
    assert set(result["ratio_to_aiojobs"]) == {"limit_None", "limit_100"}
    assert result["bytes_per_live_job"]["aiohttp_jobs_limit_None"] > 0
    assert result["history_10000_mb"] > 0
    assert set(result["metrics_on_ratio"]) == {"limit_None", "limit_100"}

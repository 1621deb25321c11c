"""benchmarks/stores.py runs (small and quick here) and prints its one JSON
line with every figure the stores and capacity pages quote."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.helpers import ROOT
from tests.stores.redis_support import require_redis

SCRIPT = Path(ROOT) / "benchmarks" / "stores.py"


async def test_store_benchmark_prints_throughput_acquire_cost_and_lateness() -> None:
    require_redis()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--quick",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 55)
    assert proc.returncode == 0, err.decode()[-3000:]
    (line,) = out.decode().splitlines()
    result = json.loads(line)
    assert result["benchmark"] == "stores" and result["redis_available"] is True
    once = result["once"]
    for name in ("memory", "sqlite_1", "sqlite_multi", "redis_1", "redis_multi"):
        assert once[name]["ran"] == once[name]["n"] == 300, (name, once[name])
        assert once[name]["duplicates"] == 0 and once[name]["run_per_s"] > 0
    assert once["redis_multi"]["processes"] == 2
    assert once["redis_1"]["round_trips_per_run"] > 0
    # pyncette is in the bench extra only: reported, not required
    assert (once["pyncette_redis"] is None) == (not result["pyncette_available"])
    for store in ("memory", "sqlite", "redis"):
        small, big = result["acquire"][store]
        assert (small["stored"], big["stored"]) == (1_000, 3_000)
        assert small["claimed"] == big["claimed"] == 500  # 5 rounds of 100
    assert result["lateness_redis"]["runs"] == 6
    assert result["ratios"]["redis_multi_vs_1_x"] > 0
    assert set(result["targets"]) == {
        "redis_1_at_least_10000_per_s",
        "redis_multi_at_least_1.8x_with_0_duplicates",
        "sqlite_1_at_least_5000_per_s",
        "redis_lateness_p99_at_most_20ms",
        "sqlite_lateness_p99_at_most_20ms",
    }
    assert result["all_ran"] is True

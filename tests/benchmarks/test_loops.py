"""benchmarks/loops.py runs (quick here) and prints its one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "loops.py"


def test_loops_benchmark_prints_the_hop_cost_against_a_plain_spawn() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stderr == ""
    (line,) = out.stdout.splitlines()
    result = json.loads(line)
    assert result["benchmark"] == "loops" and result["jobs"] == 300
    assert set(result["us_per_job"]) == {
        "plain_one_by_one",
        "loop_one_by_one",
        "plain_batch",
        "loop_batch",
    }
    assert all(us > 0 for us in result["us_per_job"].values())
    assert set(result["ratio_loop_vs_plain"]) == {"one_by_one", "batch"}
    assert all(ratio > 0 for ratio in result["ratio_loop_vs_plain"].values())
    assert set(result["hop_extra_us_per_job"]) == {"one_by_one", "batch"}

"""benchmarks/workflow.py and benchmarks/tasks.py run (small and quick here) and
print their one JSON line with the figures the docs and the changelog quote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = out.stdout.splitlines()
    result: dict[str, Any] = json.loads(line)
    return result


def test_workflow_benchmark_prints_ratios_and_growth() -> None:
    result = _run("workflow.py", "--quick", "--rounds", "1")
    assert set(result["shapes"]) == {"fanout", "chain", "layers"}
    for shape in result["shapes"].values():
        small, big = shape["sizes"]
        assert small["steps_plus_edges"] < big["steps_plus_edges"]
        assert small["ratio_vs_raw"] > 0 and shape["growth"] > 0
    fanout = result["shapes"]["fanout"]["sizes"]
    assert all(size["steady_ratio_vs_raw"] > 0 for size in fanout)
    assert all(size["core_jobs_only_ratio_vs_raw"] > 0 for size in fanout)


def test_tasks_benchmark_prints_lateness_and_throughput() -> None:
    result = _run("tasks.py", "--quick", "--seconds", "1.2")
    lateness = result["ours_lateness"]
    assert lateness["cron_1s"]["n"] >= 1 and lateness["interval_100ms"]["n"] >= 5
    assert [run["n"] for run in result["ours_once"]] == [500, 1000, 2000]
    assert result["ours_all_ran"] is True
    assert result["ratios"]["once_100k_vs_10k"] > 0

"""benchmarks/dashboard.py runs (small and quick here) and prints its one JSON
line: the jobs page's server time at two history sizes and their ratio, and the
spawn rate with live dashboard streams open against none."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dashboard.py"


def test_dashboard_benchmark_prints_page_times_and_ratios() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = out.stdout.splitlines()
    result = json.loads(line)
    assert result["benchmark"] == "dashboard" and result["quick"] is True
    assert result["history"]["small"] < result["history"]["big"]
    assert set(result["pages"]) == {"jobs", "jobs_by_name", "jobs_search_error"}
    for page in result["pages"].values():
        for size in ("small", "big"):
            assert 0 < page[size]["server_min_ms"] <= page[size]["server_ms"]
            assert page[size]["round_trip_ms"] > 0 and page[size]["kib"] > 0
        assert page["ratio_big_vs_small"] > 0  # the median of paired requests
        assert page["ratio_of_medians"] > 0
        assert page["ratio_big_vs_small_fastest"] > 0
    spawn = result["spawn_with_streams"]
    assert spawn["streams"] > 0 and spawn["jobs_per_s"]["without"] > 0
    assert spawn["ratio_with_vs_without"] > 0
    assert spawn["messages_per_stream_per_round"] >= 1  # the streams were live
    assert set(result["meets_targets"]) == set(result["targets"])

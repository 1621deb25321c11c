"""The checker finds lost and repeated occurrences (no processes needed)."""

from __future__ import annotations

from typing import Any

from tests.processes.support import check, owed, stale_completions

CFG: dict[str, Any] = {
    "start": 1000.0,
    "end": 1000.35,
    "interval": 0.1,
    "once": 2,
    "slow_at": None,
}


def done(task: str, key: str, fire_at: float, instance: str = "w0") -> dict[str, Any]:
    return {
        "ev": "done",
        "task": task,
        "key": key,
        "fire_at": fire_at,
        "instance": instance,
    }


def test_owed_names_each_occurrence_of_the_window_and_each_once_off() -> None:
    assert owed(CFG) == {"tick#0", "tick#1", "tick#2", "tick#3", "once:o0", "once:o1"}


def test_every_occurrence_once_is_clean() -> None:
    events = [done("tick", "tick", 1000.0 + k * 0.1, f"w{k % 2}") for k in range(4)]
    events += [done("once", "once:o0", 1000.0), done("once", "once:o1", 1000.0)]
    report = check(CFG, events)
    assert (report.lost, report.duplicate_count) == ([], 0)
    assert report.per_instance == {"w0": 4, "w1": 2}


def test_a_missing_occurrence_is_lost_and_a_repeated_one_a_duplicate() -> None:
    events = [done("tick", "tick", 1000.0 + k * 0.1) for k in (0, 1, 1, 3)]
    events += [done("once", "once:o0", 1000.0)]
    report = check(CFG, events)
    assert report.lost == ["once:o1", "tick#2"]
    assert report.duplicates == {"tick#1": 2} and report.duplicate_count == 1
    assert "lost 2" in str(report) and "duplicates 1" in str(report)


def test_a_completion_after_a_greater_fence_started_is_stale() -> None:
    def ev(kind: str, who: str, fence: int, t: float) -> dict[str, Any]:
        return {"ev": kind, "instance": who, "run_id": "tick@1", "fence": fence, "t": t}

    frozen = ev("done", "w1", 4, 3.0)  # resumed after w2 took the run over
    events = [ev("start", "w2", 6, 1.0), ev("done", "w2", 6, 1.1), frozen]
    assert stale_completions(events) == [frozen]
    assert (
        stale_completions([ev("start", "w1", 4, 0.5), ev("done", "w1", 4, 0.6)]) == []
    )

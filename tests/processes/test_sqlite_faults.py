"""Four processes on one SQLite file; one is killed while they all write."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path
from typing import Any

from tests.processes.conftest import Figures
from tests.processes.support import (
    check,
    fleet,
    leftovers,
    plan,
    repeats_of,
    wait_for_event,
)

LEASE = 1.0


def integrity(path: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


async def test_a_process_killed_inside_a_write_leaves_the_file_sound(
    sqlite_url: str, tmp_path: Path, figures: Figures
) -> None:
    async with fleet(sqlite_url, tmp_path / "logs", 4) as procs:
        cfg = await procs.go(
            seed=True, **plan(lease=LEASE, window=3.0, once=1500, tail=4.0)
        )
        victim = procs.by_name("w1")  # not the process scheduling the once-offs
        seen: list[dict[str, Any]] = []

        def busy(ev: dict[str, Any]) -> bool:
            # the victim is in the middle of a burst of claims and commits
            if ev["ev"] == "done" and ev["instance"] == victim.name:
                seen.append(ev)
            return len(seen) >= 40

        await wait_for_event(procs.logdir, busy, timeout=15, poll=0.005)
        killed_at = victim.signal(signal.SIGKILL)
        codes = await procs.finish()
    events = procs.events()
    report = check(cfg, events)
    path = sqlite_url.removeprefix("sqlite:///")
    checked = await asyncio.to_thread(integrity, path)
    repeats = repeats_of(events, victim.name)
    after = [ev["t"] for ev in events if ev["ev"] == "done" and ev["t"] > killed_at]
    held = await leftovers(sqlite_url)
    figures(
        "kill -9 inside a write (sqlite, 4 processes)",
        **report.figures(),
        integrity_check=checked,
        runs_completed_after_kill=len(after),
        repeats_of_victims_runs=len(repeats),
        still_leased_to_the_dead_process=len(held),
    )
    bad = {n: c for n, c in codes.items() if c and n != victim.name}
    assert not bad, f"exit codes {bad}\n{procs.stderr()[-4000:]}"
    assert codes[victim.name] == -signal.SIGKILL
    assert checked == ["ok"]
    # Nothing is lost: what did not run is still in the store, leased to the
    # dead process, and runs once that lease expires. (The runner claims a
    # batch with a 60 s lease and shortens it to the task's lease_duration
    # when each run starts, so runs claimed and not started yet wait longer
    # than the task's lease: at most one batch.)
    assert sorted(report.lost) == sorted(held), report
    assert len(held) <= 100, held
    # only runs the victim completed and had not committed ran again
    assert report.duplicate_count == len(repeats), (report, sorted(repeats))
    assert "database is locked" not in procs.stderr(), procs.stderr()[-4000:]

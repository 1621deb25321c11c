"""Four processes on one SQLite file; one is killed while they all write."""

from __future__ import annotations

import asyncio
import contextlib
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
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]


async def test_a_process_killed_inside_a_write_leaves_the_file_sound(
    sqlite_url: str, tmp_path: Path, figures: Figures
) -> None:
    async with fleet(sqlite_url, tmp_path / "logs", 4) as procs:
        cfg = await procs.go(
            seed=True, **plan(lease=LEASE, window=3.0, once=1500, tail=4.0)
        )
        seen: dict[str, set[str]] = {}

        def busy(ev: dict[str, Any]) -> bool:
            # a process in the middle of a burst of claims and commits (not the
            # one scheduling the once-offs)
            if ev["ev"] == "done" and ev["instance"] != "w0":
                runs = seen.setdefault(ev["instance"], set())
                runs.add(ev["run_id"])
                return len(runs) >= 10
            return False

        # Generous: on a loaded machine the fleet may take long to start; the
        # wait ends as soon as a process is busy.
        burst = await wait_for_event(procs.logdir, busy, timeout=60, poll=0.005)
        victim = procs.by_name(burst["instance"])
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
    # nothing lost: the runs the dead process held were taken over once their
    # lease (the tasks' 1 s) expired, within the window
    assert not report.lost, f"{report}\n{procs.stderr()[-4000:]}"
    assert held == [], held
    # only runs the victim completed and had not committed ran again
    assert report.duplicate_count == len(repeats), (report, sorted(repeats))
    assert "database is locked" not in procs.stderr(), procs.stderr()[-4000:]

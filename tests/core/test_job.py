"""Jobs beyond aiojobs: states, results, timings, ids, progress, current_job."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aiohttp_jobs
from aiohttp_jobs import (
    JobState,
    Scheduler,
    current_job,
)
from tests.helpers import failing, returning, settle


async def test_job_states_results_and_timings() -> None:
    async with Scheduler() as scheduler:
        ok = await scheduler.spawn(returning(5), "five", tags=["a", "b"])
        assert ok.state is JobState.RUNNING and ok.started_at is not None
        with pytest.raises(aiohttp_jobs.JobNotFinishedError):
            ok.result()
        assert await ok.wait() == 5
        assert ok.state is JobState.SUCCEEDED and ok.done
        assert ok.result() == 5 and ok.exception() is None
        assert ok.created_at <= ok.started_at <= ok.finished_at  # type: ignore[operator]
        assert ok.tags == ("a", "b") and ok.name == "five"

        err = ValueError("bad")
        bad = await scheduler.spawn(failing(err))
        bad.add_done_callback(lambda job: None)  # observed: no handler call
        await settle()
        assert bad.state is JobState.FAILED and bad.exception() is err
        with pytest.raises(ValueError):
            bad.result()
        assert bad.name == "failing"


async def test_ids_are_unique_url_safe_and_found_again() -> None:
    async with Scheduler(limit=1) as scheduler:
        release = asyncio.Event()
        jobs = [await scheduler.spawn(release.wait()) for _ in range(3)]
        ids = {job.id for job in jobs}
        assert len(ids) == 3
        assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
        assert scheduler.get_job(jobs[2].id) is jobs[2]  # pending
        release.set()
    assert scheduler.get_job(jobs[0].id) is jobs[0]  # from the history
    with pytest.raises(aiohttp_jobs.JobNotFoundError):
        scheduler.get_job("nope-1")


async def test_add_done_callback_runs_once_final() -> None:
    seen: list[JobState] = []
    async with Scheduler() as scheduler:
        job = await scheduler.spawn(returning(1))
        job.add_done_callback(lambda j: seen.append(j.state))
        await job.wait()
        await settle()
        job.add_done_callback(lambda j: seen.append(j.state))  # already final
        await settle()
    assert seen == [JobState.SUCCEEDED, JobState.SUCCEEDED]


async def test_progress_reported_from_inside_is_readable_outside() -> None:
    gate = asyncio.Event()

    async def work() -> None:
        current_job().set_progress(1, 4, "one of four")
        await gate.wait()

    async with Scheduler() as scheduler:
        job = await scheduler.spawn(work())
        await settle()
        assert job.progress == (1.0, 4.0, "one of four")
        assert job.progress is not None and job.progress.fraction == 0.25
        gate.set()


def test_current_job_outside_a_job_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="outside of a job"):
        current_job()


_FORK_SCRIPT = """
import asyncio, os
import aiohttp_jobs

async def spawn_one():
    async with aiohttp_jobs.Scheduler() as scheduler:
        job = await scheduler.spawn(asyncio.sleep(0))
        assert scheduler.get_job(job.id) is job
        return job

inherited = asyncio.run(spawn_one())  # made in the parent, before the forks
read, write = os.pipe()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:  # a worker: the ids it hands out
        try:
            job = asyncio.run(spawn_one())
            os.write(write, (job.id + " " + inherited.id + "\\n").encode())
        finally:
            os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
os.close(write)
with os.fdopen(read) as lines:
    print(lines.read(), end="")
print(asyncio.run(spawn_one()).id, inherited.id)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_job_ids_stay_unique_across_forked_workers() -> None:
    # In a fresh interpreter: forking this (multi-threaded) test process is unsafe.
    out = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    new_ids, inherited = out[0::2], set(out[1::2])
    assert len(new_ids) == 3 and len(set(new_ids)) == 3, out
    assert len({job_id.partition("-")[0] for job_id in new_ids}) == 3
    assert len(inherited) == 1  # a job made before a fork keeps its id

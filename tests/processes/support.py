"""Start worker processes on one store, read their run logs, check them.

The checker is the point of these tests: from the JSON lines every process
appended (see ``worker.py``), it finds each occurrence that should have run in
the window and says which never completed (lost) and which completed more than
once (duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

WORKER = Path(__file__).resolve().parent / "worker.py"
NAMESPACE = "processes"  # the namespace worker.py uses


class Worker:
    """One worker process a test started (ended only by its own pid)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        self.stderr = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def expect(self, word: str, timeout: float = 20) -> None:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        line = raw.decode().strip()
        if line != word:
            rest = await self._drain_stderr()
            raise AssertionError(
                f"worker {self.name} printed {line!r} instead of {word!r}\n{rest}"
            )

    async def _drain_stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        with contextlib.suppress(TimeoutError):
            self.stderr += await asyncio.wait_for(self.proc.stderr.read(), 5)
        return self.stderr.decode(errors="replace")

    def signal(self, sig: int) -> float:
        """Send *sig* to this process; the moment it was sent."""
        os.kill(self.pid, sig)
        return time.time()

    async def finish(self, timeout: float = 20) -> int:
        """Wait for it to exit by itself; its exit code (stderr kept)."""
        assert self.proc.stderr is not None
        self.stderr += await asyncio.wait_for(self.proc.stderr.read(), timeout)
        return await asyncio.wait_for(self.proc.wait(), timeout)


@dataclass
class Fleet:
    """The worker processes of one test, all on one store."""

    workers: list[Worker]
    logdir: Path
    cfg: dict[str, Any] = field(default_factory=dict)

    async def go(self, **cfg: Any) -> dict[str, Any]:
        """Send every process the plan (``seed``: the first one schedules the
        once-off instances); wait until all started firing."""
        self.cfg = cfg
        for i, w in enumerate(self.workers):
            # the once-off instances are scheduled by the first process alone
            mine = {**cfg, "seed": bool(cfg.get("seed")) and i == 0}
            assert w.proc.stdin is not None
            w.proc.stdin.write((json.dumps(mine) + "\n").encode())
            await w.proc.stdin.drain()
        await asyncio.gather(*(w.expect("ready") for w in self.workers))
        return cfg

    def events(self) -> list[dict[str, Any]]:
        return read_logs(self.logdir)

    async def finish(self, timeout: float = 25) -> dict[str, int]:
        """Wait for every process to exit by itself; exit code per process."""
        codes = await asyncio.gather(*(w.finish(timeout) for w in self.workers))
        return {w.name: code for w, code in zip(self.workers, codes, strict=True)}

    def stderr(self) -> str:
        return "\n".join(
            f"--- {w.name} (pid {w.pid}) ---\n{w.stderr.decode(errors='replace')}"
            for w in self.workers
        )

    def by_name(self, instance: str) -> Worker:
        (w,) = (w for w in self.workers if w.name == instance)
        return w


@contextlib.asynccontextmanager
async def fleet(store_url: str, logdir: Path, count: int) -> AsyncIterator[Fleet]:
    """Start *count* workers on *store_url*; each has loaded when this yields.

    On the way out, a process still running (the test failed before it ended)
    is killed by its pid.
    """
    await asyncio.to_thread(logdir.mkdir, parents=True, exist_ok=True)
    workers = []
    try:
        for i in range(count):
            log = logdir / f"w{i}.jsonl"
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                "--store",
                store_url,
                "--log",
                str(log),
                "--instance",
                f"w{i}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            workers.append(Worker(f"w{i}", proc, log))
        await asyncio.gather(*(w.expect("loaded", timeout=30) for w in workers))
        yield Fleet(workers, logdir)
    finally:
        for w in workers:
            if w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGCONT)
                    w.proc.kill()
                await w.proc.wait()


@dataclass
class FleetRun:
    """A fleet following one plan (:func:`fleet_run`); once it has finished,
    its exit codes and events, and the checker's report on them."""

    procs: Fleet
    cfg: dict[str, Any]
    codes: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def report(self) -> Report:
        return check(self.cfg, self.events)

    async def until(self, seconds: float) -> None:
        """Sleep until *seconds* after the plan's start."""
        await asyncio.sleep(max(0.0, self.cfg["start"] + seconds - time.time()))

    def recovery_after(self, moment: float) -> float | None:
        """Seconds from *moment* to the first run completed after it."""
        back = first_done_after(self.events, moment)
        return None if back is None else round(back - moment, 3)

    def assert_clean_exit(self, *skip: str) -> None:
        """Every process but *skip* exited by itself with code 0."""
        bad = {n: c for n, c in self.codes.items() if c and n not in skip}
        assert not bad, f"exit codes {bad}\n{self.procs.stderr()[-4000:]}"

    def assert_nothing_lost(self) -> None:
        assert not self.report.lost, f"{self.report}\n{self.procs.stderr()[-4000:]}"


@contextlib.asynccontextmanager
async def fleet_run(
    store_url: str, logdir: Path, count: int, **planned: Any
) -> AsyncIterator[FleetRun]:
    """*count* workers on *store_url* following ``plan(**planned)`` (the first
    one seeding the once-off tasks); the body brings on the fault, then every
    process is waited for and the run's events are read."""
    async with fleet(store_url, logdir, count) as procs:
        run = FleetRun(procs, await procs.go(seed=True, **plan(**planned)))
        yield run
        run.codes = await procs.finish()
    run.events = procs.events()


def starts(key: str, attempt: int = 0) -> Callable[[dict[str, Any]], bool]:
    """Matches the ``start`` of *key*'s run at *attempt* or a later one."""

    def pred(ev: dict[str, Any]) -> bool:
        return ev["ev"] == "start" and ev.get("key") == key and ev["attempt"] >= attempt

    return pred


@dataclass
class Takeover:
    """A run whose process got a signal mid-run, and its next attempt."""

    first: dict[str, Any]  # the run's start, in the process signalled
    victim: Worker
    signalled_at: float
    again: dict[str, Any]  # the start of its next attempt

    @property
    def seconds(self) -> float:
        return float(self.again["t"] - self.signalled_at)


async def signal_mid_run(procs: Fleet, key: str, sig: int, timeout: float) -> Takeover:
    """Wait for *key*'s run to start, send *sig* to the process running it,
    and wait up to *timeout* seconds for its next attempt to start (the lease
    expired and a process took the run over)."""
    first = await wait_for_event(procs.logdir, starts(key), timeout=15)
    victim = procs.by_name(first["instance"])
    signalled_at = victim.signal(sig)
    again = await wait_for_event(
        procs.logdir, starts(key, first["attempt"] + 1), timeout=timeout
    )
    return Takeover(first, victim, signalled_at, again)


def plan(
    *,
    lead: float = 1.5,
    window: float = 2.5,
    interval: float = 0.1,
    lease: float = 1.5,
    tail: float | None = None,
    once: int = 0,
    slow_at: float | None = None,
    slow_seconds: float = 3.0,
) -> dict[str, Any]:
    """A plan starting *lead* seconds from now: ticks for *window* seconds,
    *once* once-off tasks due at the start, processes exiting *tail* seconds
    after the window (default: a lease and a second; a process stops only once
    its runs in progress finished)."""
    start = time.time() + lead
    steps = math.floor(window / interval)
    end = start + steps * interval + interval / 2  # the last occurrence is owed
    tail = lease + 1.0 if tail is None else tail
    return {
        "start": start,
        "end": end,
        "exit_at": end + tail,
        "interval": interval,
        "lease": lease,
        "once": once,
        "once_at": start,
        "slow_at": None if slow_at is None else start + slow_at,
        "slow_seconds": slow_seconds,
    }


def read_logs(logdir: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted(logdir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            # a line cut short by kill -9 was never completely written
            events.extend(json.loads(line) for line in f if line.endswith("\n"))
    return events


@dataclass
class Report:
    """What the checker found, for assertion messages and the summary."""

    expected: int
    completed: int
    lost: list[str]
    duplicates: dict[str, int]
    per_instance: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def duplicate_count(self) -> int:
        return sum(n - 1 for n in self.duplicates.values())

    def figures(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "completed": self.completed,
            "lost": len(self.lost),
            "duplicates": self.duplicate_count,
            "per_instance": self.per_instance,
        }

    def __str__(self) -> str:
        text = (
            f"{self.expected} occurrences owed, {self.completed} completed, "
            f"lost {len(self.lost)} {self.lost[:10]}, duplicates "
            f"{self.duplicate_count} {dict(list(self.duplicates.items())[:10])}, "
            f"completions per instance {self.per_instance}"
        )
        return "; ".join([text, *self.notes])


def owed(cfg: dict[str, Any]) -> set[str]:
    """The occurrences the plan owes: tick occurrences of the window (named by
    their index from the start), once-off instances, the slow instance."""
    steps = math.floor((cfg["end"] - cfg["start"]) / cfg["interval"] + 1e-9)
    names = {f"tick#{k}" for k in range(steps + 1)}
    names |= {f"once:o{i}" for i in range(cfg.get("once", 0))}
    if cfg.get("slow_at") is not None:
        names.add("slow:s0")
    return names


def occurrence(cfg: dict[str, Any], event: dict[str, Any]) -> str:
    if event["task"] == "tick":
        k = round((event["fire_at"] - cfg["start"]) / cfg["interval"])
        return f"tick#{k}"
    return str(event["key"])


def check(cfg: dict[str, Any], events: Iterable[dict[str, Any]]) -> Report:
    """Every owed occurrence completed, and how often."""
    done: Counter[str] = Counter()
    per_instance: Counter[str] = Counter()
    names = owed(cfg)
    events = list(events)
    ready = [ev["t"] for ev in events if ev["ev"] == "ready"]
    first = math.ceil((min(ready, default=0.0) - cfg["start"]) / cfg["interval"])
    if first > 0:  # every process started firing after the window began:
        # the occurrences before the first one's start were never owed
        names -= {f"tick#{k}" for k in range(first)}
        skipped = f"{first} ticks before the first process was ready not owed"
    else:
        skipped = ""
    for ev in events:
        if ev["ev"] == "done":
            done[occurrence(cfg, ev)] += 1
            per_instance[ev["instance"]] += 1
    extra = sorted(set(done) - names - {f"tick#{k}" for k in range(first)})
    report = Report(
        expected=len(names),
        completed=sum(1 for name in names if done[name]),
        lost=sorted(name for name in names if not done[name]),
        duplicates={name: n for name, n in sorted(done.items()) if n > 1},
        per_instance=dict(sorted(per_instance.items())),
    )
    if extra:
        report.notes.append(f"runs outside the plan: {extra[:10]}")
    if skipped:
        report.notes.append(skipped)
    return report


async def wait_for_event(
    logdir: Path, pred: Any, timeout: float, poll: float = 0.02
) -> dict[str, Any]:
    """The first logged event matching *pred*, polling the logs (which are files
    written by other processes: there is nothing to await)."""
    deadline = time.monotonic() + timeout
    while True:
        for ev in read_logs(logdir):
            if pred(ev):
                return ev
        if time.monotonic() > deadline:
            raise AssertionError(f"no logged event matched within {timeout}s")
        await asyncio.sleep(poll)


def by_occurrence(
    cfg: dict[str, Any], events: Iterable[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        if ev["ev"] in ("start", "done"):
            grouped[occurrence(cfg, ev)].append(ev)
    return grouped


def stale_completions(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``done`` events written by a run whose fence was already superseded: a
    run of the same occurrence with a greater fence had started before. A
    downstream system that checks fences rejects exactly these writes."""
    starts: dict[str, list[tuple[float, int]]] = defaultdict(list)
    dones = []
    for ev in events:
        if ev.get("fence") is None:
            continue
        if ev["ev"] == "start":
            starts[ev["run_id"]].append((ev["t"], ev["fence"]))
        elif ev["ev"] == "done":
            dones.append(ev)
    return [
        ev
        for ev in dones
        if any(t < ev["t"] and f > ev["fence"] for t, f in starts[ev["run_id"]])
    ]


def first_done_after(events: Iterable[dict[str, Any]], moment: float) -> float | None:
    """When the first run completed after *moment* (the fleet works again)."""
    times = [ev["t"] for ev in events if ev["ev"] == "done" and ev["t"] > moment]
    return min(times) if times else None


def log_count(text: str, phrase: str) -> int:
    return text.count(phrase)


async def leftovers(url: str) -> list[str]:
    """Once-off records still in the store after the fleet stopped: each one
    is an occurrence that never completed (a finished once-off leaves)."""
    from aiohttp_jobs.stores import from_url

    async with from_url(url, namespace=NAMESPACE) as store:
        records = await store.records()
    return [r.key for r in records if r.task in ("once", "slow")]


def repeats_of(events: Iterable[dict[str, Any]], victim: str) -> set[str]:
    """Runs the killed *victim* completed that another process completed too:
    completed but not committed when it died, so run again (at least once)."""
    events = list(events)
    theirs = {
        e["run_id"] for e in events if e["ev"] == "done" and e["instance"] == victim
    }
    others = {
        e["run_id"] for e in events if e["ev"] == "done" and e["instance"] != victim
    }
    return theirs & others

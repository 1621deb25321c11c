"""Cost of ``@atomic``: requests/s and p50/p99 latency of a trivial handler,
plain vs ``@aiohttp_jobs.atomic`` (vs aiojobs' ``@atomic`` when installed).

One server process serves all variants over loopback; the load comes from wrk
when it is installed, else from an aiohttp client in another process. Rounds
alternate the variants; the script prints ONE JSON line with the medians and
the ratios against the plain handler measured in the same run.

    python benchmarks/atomic.py [--rounds 4] [--duration 2] [--connections 32]
                                [--load wrk|client]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# -- server -------------------------------------------------------------------------


def serve() -> None:
    from aiohttp import web

    import aiohttp_jobs

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    @aiohttp_jobs.atomic
    async def atomic(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    aiohttp_jobs.setup(app)
    app.router.add_get("/plain", plain)
    app.router.add_get("/atomic", atomic)
    try:
        import aiojobs.aiohttp
    except ImportError:
        pass
    else:

        @aiojobs.aiohttp.atomic
        async def aiojobs_atomic(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        aiojobs.aiohttp.setup(app)
        app.router.add_get("/aiojobs_atomic", aiojobs_atomic)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    variants = [
        r.resource.canonical.lstrip("/")
        for r in app.router.routes()
        if r.resource is not None and r.method == "GET"
    ]
    print(json.dumps({"port": sock.getsockname()[1], "variants": variants}), flush=True)

    async def stop_on_stdin_eof(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, sys.stdin.read)
        fut.add_done_callback(lambda _: os.kill(os.getpid(), 15))

    app.on_startup.append(stop_on_stdin_eof)
    web.run_app(app, sock=sock, print=None, access_log=None)


# -- load generators ----------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def load_wrk(url: str, duration: float, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "requests": requests}


async def _client_load(url: str, duration: float, connections: int) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop = time.perf_counter() + duration

        async def worker() -> None:
            clock = time.perf_counter
            while (start := clock()) < stop:
                async with session.get(url) as resp:
                    await resp.read()
                latencies.append(clock() - start)

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - begin
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1e3,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1e3,
    }


def load_client(url: str, duration: float, connections: int) -> dict[str, float]:
    """The aiohttp client runs in its own process, as wrk would."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            url,
            "--duration",
            str(duration),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


# -- driver -------------------------------------------------------------------------


def _median_ratio(
    runs: list[dict[str, float]], baseline: list[dict[str, float]], key: str
) -> float:
    return round(
        statistics.median(a[key] / b[key] for a, b in zip(runs, baseline, strict=True)),
        3,
    )


def _cpu_seconds(pid: int) -> float | None:
    """CPU time the server has used (Linux): a cost per request that other
    processes on a busy machine disturb far less than requests/s."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin(pid: int, cpu: int) -> None:
    """Keep the server and the load generator off each other's CPU."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:  # pragma: no cover - not allowed here
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--load", choices=["wrk", "client"], default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.client:
        result = asyncio.run(_client_load(args.client, args.duration, args.connections))
        print(json.dumps(result))
        return

    tool = args.load or ("wrk" if shutil.which("wrk") else "client")
    load = load_wrk if tool == "wrk" else load_client
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdout is not None and server.stdin is not None
    _pin(server.pid, 0)
    _pin(0, 1)  # this process, hence wrk or the client process it starts
    try:
        info = json.loads(server.stdout.readline())
        base = f"http://127.0.0.1:{info['port']}/"
        variants: list[str] = info["variants"]
        warm = min(1.0, args.duration)
        for name in variants:
            load(base + name, warm, args.connections)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for i in range(args.rounds):
            order = variants[i % len(variants) :] + variants[: i % len(variants)]
            for name in order:
                cpu = _cpu_seconds(server.pid)
                run = load(base + name, args.duration, args.connections)
                used = _cpu_seconds(server.pid)
                if cpu is not None and used is not None and run["requests"]:
                    run["server_cpu_us"] = (used - cpu) * 1e6 / run["requests"]
                runs[name].append(run)
    finally:
        server.stdin.close()  # the server stops itself on EOF
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            server.kill()
            server.wait()

    keys = ["rps", "p50_ms", "p99_ms"]
    if all("server_cpu_us" in run for results in runs.values() for run in results):
        keys.append("server_cpu_us")
    medians = {
        name: {
            key: round(statistics.median(run[key] for run in results), 3)
            for key in keys
        }
        for name, results in runs.items()
    }
    # Ratios are taken round by round (each variant against the plain handler
    # measured moments before or after it), then the median across rounds:
    # robust against the machine getting busier or quieter during the run.
    plain_runs = runs["plain"]
    ratios = {
        f"{name}_vs_plain": {
            "rps": _median_ratio(results, plain_runs, "rps"),
            "p50": _median_ratio(results, plain_runs, "p50_ms"),
            "p99": _median_ratio(results, plain_runs, "p99_ms"),
            **(
                {"server_cpu": _median_ratio(results, plain_runs, "server_cpu_us")}
                if "server_cpu_us" in keys
                else {}
            ),
        }
        for name, results in runs.items()
        if name != "plain"
    }
    print(
        json.dumps(
            {
                "benchmark": "atomic",
                "load": tool,
                "python": sys.version.split()[0],
                "rounds": args.rounds,
                "duration_s": args.duration,
                "connections": args.connections,
                "medians": medians,
                "ratios": ratios,
                "target": {"atomic_vs_plain": {"rps": ">= 0.85", "p99": "<= 1.5"}},
            }
        )
    )


if __name__ == "__main__":
    main()

"""The examples of docs/aiohttp.md run, and do what the page says."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.docs.examples import load_example
from tests.helpers import python_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


async def test_quickstart_example(aiohttp_client: Any) -> None:
    example = load_example("aiohttp_quickstart")
    app = example.create_app()
    client = await aiohttp_client(app)
    resp = await client.post("/pay", json={"id": 7, "email": "a@example.org"})
    assert resp.status == 201
    assert await resp.json() == {"paid": 7}
    assert (await client.post("/audit")).status == 200
    resp = await client.get("/admin/jobs")
    assert resp.status == 200
    scheduler = app[example.aiohttp_jobs.SCHEDULER_KEY]
    await scheduler.wait_idle(5)
    assert app[example.DB] == [
        {"id": 7, "email": "a@example.org"},
        {"audit": "POST /audit"},
    ]
    assert app[example.OUTBOX] == [{"to": "a@example.org", "order": 7}]
    assert [job.name for job in scheduler.history.query()] == ["send-receipt"]


# Runs the quickstart application with web.run_app, as its __main__ block does,
# on a free port. Each charge waits until the graceful shutdown has begun, so
# every payment is in flight when the SIGTERM arrives and every receipt is
# spawned during the drain. At exit it prints what was stored and sent.
_PAY_SERVER = textwrap.dedent(
    """
    import asyncio, importlib.util, json, socket, sys
    from aiohttp import web

    spec = importlib.util.spec_from_file_location("quickstart", sys.argv[1])
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    app = example.create_app()
    provider = example.charge

    async def charge_during_the_shutdown(order):
        print("charging", order["id"], flush=True)
        scheduler = app[example.aiohttp_jobs.SCHEDULER_KEY]
        while not scheduler.draining:
            await asyncio.sleep(0.001)
        await provider(order)

    example.charge = charge_during_the_shutdown
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print("port", sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None)
    orders = sorted(order["id"] for order in app[example.DB])
    receipts = sorted(mail["order"] for mail in app[example.OUTBOX])
    print(json.dumps({"orders": orders, "receipts": receipts}), flush=True)
    """
)

PAYMENTS = 20


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_during_payments_delivers_every_receipt(tmp_path: Path) -> None:
    """The pay example under a real SIGTERM, over real sockets: every payment
    in flight is answered 201, and every charged order gets its receipt,
    spawned during the drain; the server then exits by itself."""
    script = tmp_path / "pay_server.py"
    script.write_text(_PAY_SERVER)
    example = str(EXAMPLES / "aiohttp_quickstart.py")
    async with python_process(str(script), example) as child:
        proc, line = child.proc, child.line
        assert proc.stderr is not None
        port = int((await line()).split()[1])
        url = f"http://127.0.0.1:{port}/pay"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)
        ) as session:

            async def pay(n: int) -> tuple[int, Any]:
                order = {"id": n, "email": f"client{n}@example.org"}
                async with session.post(url, json=order) as resp:
                    return resp.status, await resp.json()

            payments = [asyncio.ensure_future(pay(n)) for n in range(PAYMENTS)]
            charging = {await line() for _ in range(PAYMENTS)}
            assert charging == {f"charging {n}" for n in range(PAYMENTS)}
            proc.send_signal(signal.SIGTERM)  # every payment is in flight
            answers = await asyncio.wait_for(asyncio.gather(*payments), 20)
        assert answers == [(201, {"paid": n}) for n in range(PAYMENTS)]
        effects = json.loads(await line())
        assert effects == {
            "orders": list(range(PAYMENTS)),
            "receipts": list(range(PAYMENTS)),
        }
        assert await asyncio.wait_for(proc.wait(), 20) == 0  # exited by itself
        errors = (await proc.stderr.read()).decode()
        assert "Traceback" not in errors and "shutdown:" not in errors, errors


async def test_shutdown_example() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "aiohttp_shutdown.py"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "client got: 200 saved"
    assert "shutdown: job 'too-long' (id=" in err.decode()
    assert "cancelled after running" in err.decode()

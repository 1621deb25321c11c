"""``python -m example_app [--host HOST] [--port PORT] [--store URL] [--no-demo]``

Defaults: 127.0.0.1:8080, or the ``EXAMPLE_APP_HOST`` / ``EXAMPLE_APP_PORT``
environment variables. ``--port 0`` picks a free port. ``--store`` names the
task store (``EXAMPLE_APP_STORE``; default ``memory://``). ``--no-demo``
leaves out the demo traffic (:mod:`example_app.demo`). SIGINT or SIGTERM stop
it gracefully: running jobs and atomic requests get up to ``wait_timeout``
(10 s here) to finish.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket

from aiohttp import web

import aiohttp_jobs

from .app import create_app


def command_line() -> argparse.ArgumentParser:
    """The options of ``python -m example_app``."""
    parser = argparse.ArgumentParser(
        prog="python -m example_app", description="aiohttp-jobs example application"
    )
    parser.add_argument(
        "--host", default=os.environ.get("EXAMPLE_APP_HOST", "127.0.0.1")
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("EXAMPLE_APP_PORT", "8080"))
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("EXAMPLE_APP_STORE", "memory://"),
        help="the task store: memory:// (default), sqlite:///FILE, redis://HOST:PORT/DB",
    )
    parser.add_argument(
        "--no-demo",
        dest="demo",
        action="store_false",
        help="no demo traffic: only the jobs the endpoints start",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = command_line()
    args = parser.parse_args(argv)
    try:
        app = create_app(store=args.store, demo=args.demo)
    except (aiohttp_jobs.ConfigError, ImportError) as exc:
        parser.error(str(exc))  # exits with status 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Bind here so that --port 0 can tell which port it got. The dashboard is
    # at /jobs on the same address.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(
        f"example_app: listening on http://{shown}:{port}/ (Ctrl+C to stop)", flush=True
    )
    print(f"example_app: dashboard at http://{shown}:{port}/jobs", flush=True)
    # handler_cancellation=True: a handler is cancelled when its client hangs
    # up (aiohttp's default lets it run on), so /api/orders/unprotected shows
    # what @atomic protects /api/orders from.
    web.run_app(
        app,
        sock=sock,
        print=None,
        access_log=None,
        handler_cancellation=True,
    )
    print("example_app: stopped", flush=True)


if __name__ == "__main__":
    main()

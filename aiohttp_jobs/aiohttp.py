"""The names of ``aiojobs.aiohttp``, for code moving from aiojobs.

Changing ``from aiojobs.aiohttp import setup, spawn, atomic, get_scheduler``
(or any of ``shield``, ``get_scheduler_from_app``,
``get_scheduler_from_request``, ``AIOJOBS_SCHEDULER``) to
``from aiohttp_jobs.aiohttp import ...`` is the whole migration: each name
accepts the same arguments as its aiojobs counterpart and keeps its promise
(a job per ``spawn()``, handlers that a client disconnect cannot interrupt,
``RuntimeError`` subclasses when ``setup()`` is missing, a scheduler built
when the application starts and drained when it stops).

These are the functions of :mod:`aiohttp_jobs.web`, so the extra keyword
arguments of aiohttp-jobs (``name``, ``priority``, back-pressure, tasks) are
there when wanted. docs/aiohttp.md lists where aiohttp-jobs goes further
than aiojobs, for example draining in ``on_shutdown`` instead of cleanup.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ._core.scheduler import Scheduler
from .web import (
    SCHEDULER_KEY,
    atomic,
    get_scheduler,
    get_scheduler_from_app,
    get_scheduler_from_request,
    setup,
    shield,
    spawn,
)

__all__ = [
    "AIOJOBS_SCHEDULER",
    "atomic",
    "get_scheduler",
    "get_scheduler_from_app",
    "get_scheduler_from_request",
    "setup",
    "shield",
    "spawn",
]

AIOJOBS_SCHEDULER: Final[web.AppKey[Scheduler]] = SCHEDULER_KEY
"""The application key of the scheduler (aiojobs 1.3+ spells it this way):
``app[AIOJOBS_SCHEDULER]`` is the scheduler once the application has started.
It is the very key :data:`aiohttp_jobs.SCHEDULER_KEY`."""

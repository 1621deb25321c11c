"""The audit log: who did what, when, and how it ended.

Every action (allowed, refused or failed) is logged on the
``aiohttp_jobs.dashboard.audit`` logger and kept in a bounded in-memory list
that the dashboard's audit page shows.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

from aiohttp import web

__all__ = ["AUDIT_KEY", "AuditEntry", "AuditLog", "audit_log"]

logger = logging.getLogger("aiohttp_jobs.dashboard.audit")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action taken (or refused) through the dashboard."""

    seq: int
    """Its number in this process (increasing)."""
    at: float
    """When (POSIX seconds)."""
    who: str
    """``identify(request)``, else the peer address."""
    action: str
    """``"cancel"``, ``"bulk_cancel"``, ``"run"``, ``"enable"``, ``"disable"``,
    ``"unschedule"``, ``"fire"`` or ``"retry"``."""
    target: str
    """What it acted on: a job id, a task key, a keyword, a filter."""
    outcome: str
    """``"ok"``, ``"refused"``, ``"not found"``, ``"conflict"`` or ``"error"``."""
    detail: str
    """What happened, in words."""

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": self.at,
            "who": self.who,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
        }


class AuditLog:
    """The last *maxlen* entries, newest last."""

    __slots__ = ("_entries", "_seq")

    def __init__(self, maxlen: int) -> None:
        self._entries: deque[AuditEntry] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self, who: str, action: str, target: str, outcome: str, detail: str
    ) -> AuditEntry:
        entry = AuditEntry(
            next(self._seq), time.time(), who, action, target, outcome, detail
        )
        self._entries.append(entry)
        level = logging.INFO if outcome == "ok" else logging.WARNING
        logger.log(
            level,
            "dashboard action %s on %r by %s: %s (%s)",
            action,
            target,
            who,
            outcome,
            detail,
            extra={
                "audit_action": action,
                "audit_target": target,
                "audit_who": who,
                "audit_outcome": outcome,
            },
        )
        return entry

    def entries(self) -> list[AuditEntry]:
        """Newest first."""
        return list(reversed(self._entries))

    def get(self, seq: int) -> AuditEntry | None:
        for entry in reversed(self._entries):
            if entry.seq == seq:
                return entry
        return None


AUDIT_KEY: Final = web.AppKey("aiohttp_jobs.dashboard.audit", AuditLog)


def audit_log(app: web.Application) -> list[AuditEntry]:
    """The audit entries kept for the dashboard mounted on *app*, newest first.

    Raises :class:`~aiohttp_jobs.SetupError` if no dashboard is mounted there.
    """
    from .._errors import SetupError

    log = app.get(AUDIT_KEY)
    if log is None:
        raise SetupError(
            "no dashboard on this application: call aiohttp_jobs.dashboard.setup(app)"
        )
    return log.entries()

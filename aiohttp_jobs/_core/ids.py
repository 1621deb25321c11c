"""Ids of the form ``<prefix>-<hex sequence number>``, unique across processes.

The prefix is random per process, so ids from several processes (or application
instances sharing a store) never collide, and the number is a process-wide
counter, so making an id costs one ``next()``. Processes forked from one parent
(``gunicorn --preload -w 2``) would share both; each forked child therefore takes
a prefix of its own (``os.register_at_fork``) while the objects it inherited keep
the ids they had: a space remembers which prefix numbered which range.
"""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["IdSpace"]


class IdSpace:
    """One kind of id (jobs, workflow steps): call ``next_seq()`` for a number
    and ``format(number)`` for its id."""

    __slots__ = ("_first", "_inherited", "_prefix_bytes", "next_seq", "prefix")

    def __init__(self, *, prefix_bytes: int) -> None:
        self._prefix_bytes = prefix_bytes
        self.prefix = secrets.token_hex(prefix_bytes)
        #: The first number ``prefix`` covers; earlier ranges are in _inherited.
        self._first = 1
        self._inherited: list[tuple[int, str]] = []
        self.next_seq = itertools.count(1).__next__
        if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
            os.register_at_fork(after_in_child=self._after_fork)

    def __repr__(self) -> str:
        return f"<IdSpace prefix={self.prefix!r}>"

    def _after_fork(self) -> None:
        first = self.next_seq()
        self._inherited.append((self._first, self.prefix))
        self.prefix = secrets.token_hex(self._prefix_bytes)
        self._first = first
        self.next_seq = itertools.count(first).__next__

    def prefix_of(self, seq: int) -> str:
        """The prefix that numbered *seq* in this process."""
        if seq >= self._first:
            return self.prefix
        for first, prefix in reversed(self._inherited):
            if seq >= first:
                return prefix
        return self.prefix

    def format(self, seq: int) -> str:
        """The id of the object numbered *seq*."""
        if seq >= self._first:
            return f"{self.prefix}-{seq:x}"
        return f"{self.prefix_of(seq)}-{seq:x}"

    def parse(self, object_id: str) -> int | None:
        """The number of an id made by this space in this process, else ``None``."""
        prefix, sep, seq = object_id.partition("-")
        if not sep:
            return None
        try:
            number = int(seq, 16)
        except ValueError:
            return None
        return number if number > 0 and self.prefix_of(number) == prefix else None

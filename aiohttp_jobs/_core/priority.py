"""Job priorities and the reserved-slot capacity model.

``limit`` is the pool for LOW jobs. NORMAL jobs may also use ``reserve_normal``
extra slots, HIGH jobs ``reserve_normal + reserve_high``; CRITICAL jobs start at
once, whatever the load.
"""

from __future__ import annotations

import enum

from .._errors import UnknownPriorityError

__all__ = ["Priority", "PriorityLike", "parse_priority"]


class Priority(enum.IntEnum):
    """How urgently a job must start; higher values start first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()


PriorityLike = "Priority | int | str"

_BY_NAME = {p.name.lower(): p for p in Priority}


def parse_priority(value: Priority | int | str) -> Priority:
    """Return the :class:`Priority` named or numbered by *value*.

    Accepts a ``Priority``, its integer value or its name in any case.
    """
    if type(value) is Priority:
        return value
    if isinstance(value, str):
        found = _BY_NAME.get(value.lower())
        if found is not None:
            return found
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return Priority(value)
        except ValueError:
            pass
    names = ", ".join(p.name for p in Priority)
    raise UnknownPriorityError(f"unknown priority {value!r}: use one of {names}")

"""One place that checks every value entering the public API.

Each function takes the *parameter name* first and the value second, returns the value
in its canonical form, and raises a :class:`~aiohttp_jobs.ConfigError` (or, for a value
of the wrong type, a :class:`~aiohttp_jobs.ConfigError` that is also a ``TypeError``)
whose message names the parameter and shows the value. Entry points call these before
they accept anything, so a bad value fails where it was written, never later.

What is checked, and why:

- numbers are real ``int``/``float`` (``bool`` is not a number here, strings are not
  parsed), finite (NaN compares false to everything, so a NaN timeout silently acts as
  0 and a NaN time never fires), and inside the stated range;
- durations and timeouts are finite seconds >= 0; a timeout may also be ``None``
  (wait forever) where the API says so;
- timestamps are finite and below :data:`MAX_TIMESTAMP` (year 9999), the last instant
  a ``datetime`` can show: later ones are accepted by arithmetic but break every
  listing that converts them;
- names and tags are non-empty strings; a single string given where a collection of
  tags is expected is refused instead of being split into characters.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from ._errors import ConfigError, ConfigTypeError

_V = TypeVar("_V")

__all__ = [
    "MAX_COUNT",
    "MAX_DURATION",
    "MAX_TIMESTAMP",
    "check_callable",
    "check_count",
    "check_datetime",
    "check_duration",
    "check_flag",
    "check_instance",
    "check_name",
    "check_number",
    "check_strings",
    "check_tags",
    "check_text",
    "check_timeout",
    "check_timestamp",
]

#: 9999-12-31T23:59:59Z: the last instant a ``datetime`` can represent.
MAX_TIMESTAMP: float = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
#: About 100 years: a longer duration cannot be added to any current time and still
#: be shown as a date.
MAX_DURATION: float = 100 * 366 * 86400.0
#: The largest count a container can hold (``sys.maxsize``): a larger limit cannot
#: size a deque or a pool.
MAX_COUNT: int = sys.maxsize


def _number(name: str, value: object, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigTypeError(
            f"{name} must be {kind}, got {value!r} ({type(value).__name__})"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return number


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    kind: str = "a number",
) -> float:
    """A finite real number, ``minimum <= value <= maximum`` and ``value > above``.

    *kind* says what the value is in the error for a value of the wrong type.
    """
    number = _number(name, value, kind)
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be >= {minimum:g}, got {value!r}")
    if above is not None and number <= above:
        raise ConfigError(f"{name} must be > {above:g}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be <= {maximum:g}, got {value!r}")
    return number


def check_duration(
    name: str, value: object, *, positive: bool = False, maximum: float = MAX_DURATION
) -> float:
    """Seconds as a finite number >= 0 (> 0 when ``positive``); a ``timedelta`` is
    accepted and converted."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    kind = "a number of seconds or a timedelta"
    if positive:
        return check_number(name, value, above=0.0, maximum=maximum, kind=kind)
    return check_number(name, value, minimum=0.0, maximum=maximum, kind=kind)


def check_timeout(name: str, value: object) -> float | None:
    """A timeout: ``None`` (no limit) or finite seconds >= 0."""
    if value is None:
        return None
    return check_duration(name, value)


def check_count(
    name: str, value: object, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """A whole number (``int``, not ``bool``) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return value


def check_timestamp(name: str, value: object) -> float:
    """A POSIX timestamp in seconds: finite, from 0 to :data:`MAX_TIMESTAMP`."""
    return check_number(
        name, value, minimum=0.0, maximum=MAX_TIMESTAMP, kind="a POSIX timestamp"
    )


def check_datetime(name: str, value: object) -> datetime:
    """A ``datetime`` that knows its time zone (a naive one is ambiguous)."""
    if not isinstance(value, datetime):
        raise ConfigTypeError(
            f"{name} must be a datetime, got {value!r} ({type(value).__name__})"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigError(
            f"{name} must be timezone-aware (e.g. tzinfo=timezone.utc), got {value!r}"
        )
    return value


def check_name(name: str, value: object, *, optional: bool = False) -> str | None:
    """A non-empty string; ``None`` when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ConfigTypeError(
            f"{name} must be a string, got {value!r} ({type(value).__name__})"
        )
    if not value.strip():
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_text(name: str, value: object, *, optional: bool = False) -> str | None:
    """Any string, the empty one included (a message, a label); ``None`` when
    ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ConfigTypeError(
            f"{name} must be a string, got {value!r} ({type(value).__name__})"
        )
    return value


def check_strings(
    name: str, value: object, *, what: str = "strings", unique: bool = False
) -> tuple[str, ...]:
    """A collection of non-empty strings, returned as a tuple; with *unique*,
    no string may come twice. *what* names the strings in the error message
    ("tags", "loop names")."""
    if type(value) is tuple and not unique:  # the common case: no copy
        for item in value:
            if type(item) is not str or not item.strip():
                break
        else:
            return value
    if isinstance(value, str | bytes):
        raise ConfigTypeError(
            f"{name} must be a collection of {what} such as [{value!r}], "
            f"got the single string {value!r}"
        )
    if not isinstance(value, Iterable):
        raise ConfigTypeError(
            f"{name} must be a collection of {what}, got {value!r} "
            f"({type(value).__name__})"
        )
    items = tuple(value)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            kind = "a non-empty string" if isinstance(item, str) else "a string"
            raise ConfigTypeError(
                f"each of {name} must be {kind}, got {item!r} in {value!r}"
            )
        if unique:
            if item in seen:
                raise ConfigError(f"{name} names {item!r} twice: {value!r}")
            seen.add(item)
    return items


def check_tags(name: str, value: object) -> tuple[str, ...]:
    """A collection of tag strings, returned as a tuple (duplicates kept in order)."""
    return check_strings(name, value)


def check_instance(
    name: str, value: object, cls: type[_V], what: str, *, optional: bool = False
) -> _V | None:
    """An instance of *cls* (described as *what* in the message, e.g.
    "an aiohttp_jobs.Clock"); ``None`` when ``optional``."""
    if isinstance(value, cls) or (value is None and optional):
        return value
    raise ConfigTypeError(
        f"{name} must be {what}{' or None' if optional else ''}, got {value!r} "
        f"({type(value).__name__})"
    )


def check_callable(
    name: str, value: object, *, optional: bool = False
) -> Callable[..., object] | None:
    """A callable (a function, a bound method, ...); ``None`` when ``optional``."""
    if value is None and optional:
        return None
    if not callable(value):
        what = "a callable or None" if optional else "a callable"
        raise ConfigTypeError(
            f"{name} must be {what}, got {value!r} ({type(value).__name__})"
        )
    return value


def check_flag(name: str, value: object) -> bool:
    """A ``bool``: ``True`` or ``False``, not a string or a number that would be
    read as one (``critical="no"`` is true)."""
    if type(value) is not bool:
        raise ConfigTypeError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__})"
        )
    return value

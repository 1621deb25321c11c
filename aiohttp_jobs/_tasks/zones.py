"""Time zones and moments, as schedules read and store them.

A time zone is an IANA name (``"Europe/Berlin"``), a fixed offset
(``datetime.timezone(timedelta(hours=2))`` or ``"UTC+02:00"``), or UTC: each has a
name that :func:`parse_timezone` reads back (:func:`tz_name`), so a stored
schedule never loses its zone. A moment is an aware datetime or a POSIX
timestamp, finite and no later than the year 9999 (:func:`to_timestamp`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._checks import MAX_TIMESTAMP, check_timestamp
from .._errors import ConfigError, ConfigTypeError

__all__ = ["checked_moment", "parse_timezone", "to_timestamp", "tz_name"]

_UTC: Final = UTC

# "UTC+02:00", "UTC-05:30", "UTC+05:45:30": a fixed offset east of Greenwich, the
# name datetime.timezone gives itself (ISO sign: UTC+02:00 is two hours ahead).
_FIXED: Final = re.compile(r"^UTC([+-])(\d{2}):(\d{2})(?::(\d{2}))?$")


def parse_timezone(value: str | tzinfo | None) -> tzinfo:
    """``None`` is UTC; strings are IANA names (``"Europe/Berlin"``) or fixed
    offsets (``"UTC+02:00"``); a ``tzinfo`` must be one of those kinds.

    Whatever is accepted here can be written into a schedule description and
    read back (:func:`tz_name`), so a stored schedule never loses its zone.
    """
    if value is None:
        return _UTC
    if isinstance(value, tzinfo):
        tz_name(value)  # refuse now a zone that cannot be stored
        return _UTC if value == _UTC else value
    if not isinstance(value, str):
        raise ConfigTypeError(
            f"timezone must be an IANA name such as 'Europe/Berlin', a fixed "
            f"offset or a tzinfo, got {value!r} ({type(value).__name__})"
        )
    if not value:
        raise ConfigError(
            f"timezone must be an IANA name such as 'Europe/Berlin', got {value!r}"
        )
    if value.upper() == "UTC":
        return _UTC
    fixed = _FIXED.match(value)
    if fixed is not None:
        sign, hours, minutes, seconds = fixed.groups()
        offset = timedelta(
            hours=int(hours), minutes=int(minutes), seconds=int(seconds or 0)
        )
        if offset >= timedelta(hours=24) or max(int(minutes), int(seconds or 0)) > 59:
            raise ConfigError(
                f"timezone {value!r}: a fixed offset is UTC+HH:MM or UTC-HH:MM "
                "(seconds :SS allowed), with HH below 24 and MM, SS below 60"
            )
        return _UTC if not offset else timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin', "
            "a fixed offset such as 'UTC+02:00', or 'UTC' (on Windows, install the "
            "tzdata package)"
        ) from exc


def tz_name(tz: tzinfo) -> str:
    """The name :func:`parse_timezone` reads back as *tz*."""
    if tz is _UTC:
        return "UTC"
    key = getattr(tz, "key", None)
    if isinstance(tz, ZoneInfo) and isinstance(key, str):
        return key
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        if not offset:
            return "UTC"
        sign = "-" if offset < timedelta(0) else "+"
        seconds = int(abs(offset).total_seconds())
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        name = f"UTC{sign}{hours:02d}:{minutes:02d}"
        return f"{name}:{secs:02d}" if secs else name
    raise ConfigError(
        f"time zone {tz!r} cannot be stored with a schedule: pass an IANA name "
        "such as 'Europe/Berlin' (or a zoneinfo.ZoneInfo), or a fixed offset such "
        "as datetime.timezone(timedelta(hours=2)) or 'UTC+02:00'"
    )


def to_timestamp(value: datetime | float, tz: tzinfo | None, what: str) -> float:
    """A datetime (naive ones read in *tz*) or a POSIX timestamp, as a timestamp.

    Finite and no later than the year 9999 (see :func:`~aiohttp_jobs._checks.
    check_timestamp`): a NaN never fires and a later time cannot be listed.
    """
    if type(value) is float and 0.0 <= value <= MAX_TIMESTAMP:  # the common case
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if tz is None:
                raise ConfigError(
                    f"{what} must be timezone-aware (e.g. datetime.now(timezone.utc)), "
                    "or pass timezone= to read it as local time there"
                )
            value = value.replace(tzinfo=tz)
        try:
            stamp = value.timestamp()
        except (OverflowError, ValueError):
            raise ConfigError(f"{what} is out of range, got {value!r}") from None
        return checked_moment(what, stamp, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigTypeError(
            f"{what} must be a datetime or a POSIX timestamp, got {value!r}"
        )
    return checked_moment(what, value, value)


def checked_moment(what: str, stamp: object, given: object) -> float:
    """*stamp* (given as *given*) as a timestamp a datetime can show."""
    if (
        isinstance(stamp, int | float)
        and not isinstance(stamp, bool)
        and MAX_TIMESTAMP < stamp < math.inf
    ):
        raise ConfigError(
            f"{what} must be no later than 9999-12-31T23:59:59Z, got {given!r}"
        )
    return check_timestamp(what, stamp)

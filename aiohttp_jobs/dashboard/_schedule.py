"""Schedules for people: a cron expression in plain words, and the next fire
times with the daylight-saving changes between them marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from .._tasks.schedules import MACROS, MONTH_NAMES, schedule_from_spec
from .._tasks.zones import parse_timezone

__all__ = ["cron_words", "next_fires", "schedule_words"]

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def _name(value: str, names: Sequence[str]) -> str:
    for full in names:
        if full and value.lower() == full[:3].lower():
            return full
    if value.isdigit():
        index = int(value) % 7 if names is _DAYS else int(value)
        if 0 <= index < len(names) and names[index]:
            return names[index]
    return value


def _list(field: str, names: Sequence[str] | None, unit: str) -> str:
    """One field (not ``*``) in words: ``1-5`` -> ``Monday through Friday``."""
    parts = []
    for item in field.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            text = f"every {step} {unit}s" if step else f"every {unit}"
        elif "-" in base:
            lo, _, hi = base.partition("-")
            if names:
                lo, hi = _name(lo, names), _name(hi, names)
            text = f"{lo} through {hi}"
            if step:
                text = f"every {step} {unit}s from {text}"
        else:
            text = _name(base, names) if names else base
            if step:
                text = f"every {step} {unit}s from {text}"
        parts.append(text)
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def cron_words(expression: str) -> str:
    """A five-field cron expression in words; the expression itself if it
    uses something this reader does not know."""
    text = MACROS.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        return expression
    minute, hour, dom, month, dow = (f.upper() if f.isalpha() else f for f in fields)
    if any(c in "".join(fields) for c in "LW#?"):
        return expression
    try:
        if minute.isdigit() and hour.isdigit():
            when = f"at {int(hour):02d}:{int(minute):02d}"
        elif minute == "*" and hour == "*":
            when = "every minute"
        elif minute.startswith("*/") and hour == "*":
            when = f"every {minute[2:]} minutes"
        elif minute.isdigit() and hour == "*":
            when = f"every hour at minute {int(minute)}"
        elif minute.startswith("*/") and "/" not in hour:
            when = f"every {minute[2:]} minutes during hour {_list(hour, None, 'hour')}"
        elif minute.isdigit():
            when = f"at minute {int(minute)} of hour {_list(hour, None, 'hour')}"
        else:
            when = f"minute {_list(minute, None, 'minute')}"
            if hour != "*":
                when += f" of hour {_list(hour, None, 'hour')}"
        days = []
        if dom != "*":
            days.append(f"on day {_list(dom, None, 'day')} of the month")
        if dow != "*":
            days.append(f"on {_list(dow.lower(), _DAYS, 'day')}")
        if month != "*":
            days.append(f"in {_list(month, MONTH_NAMES, 'month')}")
        if not days and (minute.isdigit() and hour.isdigit()):
            days.append("every day")
    except (ValueError, IndexError):
        return expression
    return " ".join([when, *days])


def schedule_words(spec: Mapping[str, object] | None, keyword: str | None) -> str:
    """How a stored schedule reads, in words."""
    if spec is None:
        return f"when the keyword {keyword!r} is fired" if keyword else "on demand"
    if "cron" in spec:
        return cron_words(str(spec["cron"]))
    interval = spec.get("interval")
    if isinstance(interval, int | float):
        return "every " + _seconds(float(interval))
    at = spec.get("at")
    if isinstance(at, int | float):
        return "once"
    return "unknown schedule"


def _seconds(value: float) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if value >= size and value % size == 0:
            count = int(value // size)
            return unit if count == 1 else f"{count} {unit}s"
    return "second" if value == 1 else f"{value:g} seconds"


def timezone_of(spec: Mapping[str, object] | None) -> tzinfo:
    name = None if spec is None else spec.get("timezone")
    if isinstance(name, str):
        try:
            return parse_timezone(name)
        except Exception:
            return UTC
    return UTC


def next_fires(
    spec: Mapping[str, object] | None,
    fire_at: float | None,
    now: float,
    count: int = 5,
) -> list[dict[str, object]]:
    """Up to *count* next fire times, each ``{"at", "local", "offset",
    "dst_change"}``; ``dst_change`` is set where the UTC offset differs from
    the one before (the first is compared with now)."""
    if spec is None:
        return []
    try:
        sched = schedule_from_spec(spec)
    except Exception:
        return []
    tz = timezone_of(spec)
    out: list[dict[str, object]] = []
    when = fire_at if fire_at is not None else sched.first(now)
    previous = datetime.fromtimestamp(now, tz).utcoffset()
    while when is not None and len(out) < count:
        local = datetime.fromtimestamp(when, tz)
        offset = local.utcoffset()
        out.append(
            {
                "at": when,
                "local": local.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "offset": local.strftime("%z"),
                "dst_change": offset != previous,
            }
        )
        previous = offset
        after = sched.following(when, when)
        if after is not None and after <= when:
            break
        when = after
    return out

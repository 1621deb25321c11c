"""Schedules: parsing, validation and pure next-fire-time functions.

Three kinds of schedule, each immutable and JSON-describable (``to_spec``):

* :class:`CronSchedule`: a 5-field (minute) or 6-field (seconds last, as croniter)
  cron expression read as wall-clock time in a time zone (see :mod:`.zones`);
* :class:`IntervalSchedule`: a fixed period of elapsed time;
* :class:`OnceSchedule`: a single moment.

Each may be bounded by a ``start_at`` / ``end_at`` window. Times are POSIX
timestamps (``float`` seconds); every function here is pure and synchronous.

Daylight-saving rule for cron schedules (see docs/tasks.md):

* A *frequent* schedule (the hour field matches every hour, e.g. ``*/5 * * * *``)
  follows the clock on the wall: it fires at every instant whose local time
  matches. Times inside a spring-forward gap do not exist and are not fired (the
  following matches continue on time); times that repeat at fall-back fire on both
  passes, because both are real, distinct instants an hour apart.
* A *fixed-hour* schedule (e.g. ``30 2 * * *``) fires once per matching wall time:
  a time inside the gap fires at the first instant after the gap (several such
  times are merged into that one run, so the day is never skipped), and a
  repeated time fires only on its first occurrence (never twice).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from croniter import CroniterBadDateError, CroniterError, croniter

from .._checks import MAX_TIMESTAMP, check_duration
from .._errors import ConfigError
from .zones import checked_moment, parse_timezone, tz_name

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "OnceSchedule",
    "Schedule",
    "schedule_from_spec",
]

_UTC: Final = UTC

# The cron macros and the expressions they stand for (also the dashboard's
# schedule words).
MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS: Final = {
    name: i + 1
    for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
}
_DAYS: Final = {
    name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}

# (name, low, high, names) in croniter's order; the seconds field comes last.
_FIELDS: Final[tuple[tuple[str, int, int, Mapping[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
    ("second", 0, 59, {}),
)

_PART: Final = re.compile(r"^(?:(\*|\?)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/([0-9]+))?$")
_NTH_WEEKDAY: Final = re.compile(r"^([a-z0-9]+)#([1-5])$")
_LAST_WEEKDAY: Final = re.compile(r"^([a-z0-9]+)l$")

# No match for this many candidate wall times in a row: the schedule is treated
# as exhausted (only reachable through pathological expressions).
_MAX_CANDIDATES: Final = 100_000


# Days each month can have (February: in leap years), and the months in words,
# by number (MONTH_NAMES[1] is January): also the dashboard's schedule words.
_MONTH_DAYS: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
MONTH_NAMES: Final = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _value(text: str, field: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number in {low}-{high}")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{field} must be in {low}-{high}")
    return number


def _parse_field(text: str, index: int) -> set[int] | None:
    """The values a field matches (``None`` for the special L / # forms)."""
    field, low, high, names = _FIELDS[index]
    values: set[int] = set()
    special = False
    for part in text.split(","):
        if index == 2 and part == "l":
            special = True
            continue
        if index == 4 and (m := _NTH_WEEKDAY.match(part) or _LAST_WEEKDAY.match(part)):
            _value(m.group(1), field, low, high, names)
            special = True
            continue
        match = _PART.match(part)
        if match is None:
            raise ValueError(f"cannot read {part!r}")
        star, first, last, step_text = match.groups()
        if star == "?" and index not in (2, 4):
            raise ValueError("'?' is only allowed in day-of-month and day-of-week")
        step = 1
        if step_text is not None:
            step = int(step_text)
            if not 1 <= step <= high - low:
                raise ValueError(f"step must be in 1-{high - low}")
        if star:
            start, stop = low, high
        else:
            start = _value(first, field, low, high, names)
            stop = _value(last, field, low, high, names) if last else start
            if last is None and step_text is not None:
                stop = high
            if stop < start:
                raise ValueError(f"range {part!r} runs backwards")
        values.update(range(start, stop + 1, step))
    if index == 4 and 7 in values:
        values.discard(7)
        values.add(0)
    return None if special and not values else values


def _checked_field(expression: str, text: str, index: int) -> set[int] | None:
    try:
        return _parse_field(text, index)
    except ValueError as exc:
        raise ConfigError(
            f"invalid cron schedule {expression!r}: {_FIELDS[index][0]} "
            f"field {text!r}: {exc}"
        ) from None


class Schedule(ABC):
    """When a task fires. Subclasses are immutable and compare by value."""

    __slots__ = ("end_at", "start_at")

    def __init__(self, *, start_at: float | None, end_at: float | None) -> None:
        if start_at is not None:
            start_at = checked_moment("start_at", start_at, start_at)
        if end_at is not None:
            end_at = checked_moment("end_at", end_at, end_at)
        if start_at is not None and end_at is not None and end_at < start_at:
            raise ConfigError("end_at must not be before start_at")
        self.start_at = start_at
        self.end_at = end_at

    @abstractmethod
    def first(self, now: float) -> float | None:
        """The first fire time of a schedule registered at *now*."""

    @abstractmethod
    def following(self, fire_at: float, after: float) -> float | None:
        """The first fire time after *after* in the sequence that contains *fire_at*."""

    @abstractmethod
    def _spec(self) -> dict[str, str | float]: ...

    def to_spec(self) -> dict[str, str | float]:
        """A JSON-serialisable description; ``schedule_from_spec()`` reverses it."""
        spec = self._spec()
        if self.start_at is not None:
            spec["start_at"] = self.start_at
        if self.end_at is not None:
            spec["end_at"] = self.end_at
        return spec

    def _bound(self, when: float | None) -> float | None:
        # Past the last instant a datetime can show, a schedule is over: a later
        # fire time could not be listed, stored or compared with a datetime.
        if (
            when is None
            or when > MAX_TIMESTAMP
            or (self.end_at is not None and when > self.end_at)
        ):
            return None
        return when

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_spec().items())))


class CronSchedule(Schedule):
    """A cron expression in a time zone (5 fields, or 6 with seconds last)."""

    __slots__ = ("_iter", "expression", "frequent", "tz")

    def __init__(
        self,
        expression: str,
        *,
        timezone: str | tzinfo | None = None,
        start_at: float | None = None,
        end_at: float | None = None,
    ) -> None:
        super().__init__(start_at=start_at, end_at=end_at)
        if not isinstance(expression, str):
            raise ConfigError(f"a cron schedule must be a string, got {expression!r}")
        self.tz = parse_timezone(timezone)
        self.expression = expression
        normal = MACROS.get(expression.strip().lower(), expression.strip().lower())
        fields = normal.split()
        if len(fields) not in (5, 6):
            raise ConfigError(
                f"invalid cron schedule {expression!r}: expected 5 fields (minute hour "
                "day-of-month month day-of-week) or 6 (seconds last), "
                f"got {len(fields)}"
            )
        parsed = [_checked_field(expression, text, i) for i, text in enumerate(fields)]
        _check_day_exists(expression, parsed[2], parsed[3], parsed[4])
        self.frequent = parsed[1] == set(range(24))
        try:
            self._iter = croniter(normal, datetime(2000, 1, 1))
        except (CroniterError, ValueError) as exc:
            raise ConfigError(f"invalid cron schedule {expression!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"<CronSchedule {self.expression!r} tz={tz_name(self.tz)}>"

    def _spec(self) -> dict[str, str | float]:
        return {"cron": self.expression, "timezone": tz_name(self.tz)}

    def first(self, now: float) -> float | None:
        if self.start_at is not None and self.start_at > now:
            return self._bound(self.next_after(self.start_at - 1e-6))
        return self._bound(self.next_after(now))

    def following(self, fire_at: float, after: float) -> float | None:
        return self._bound(self.next_after(max(fire_at, after)))

    def _match_after(self, naive: datetime) -> datetime | None:
        """The first wall time strictly after *naive* that the expression matches."""
        it = self._iter
        it.set_current(naive, force=True)
        try:
            result = it.get_next(datetime)
        except (CroniterBadDateError, OverflowError, ValueError):
            return None  # no match left before the year 9999
        assert isinstance(result, datetime)
        return result

    def next_after(self, after: float) -> float | None:
        """The first fire instant strictly after *after*, by the DST rule above."""
        tz = self.tz
        if tz is _UTC:
            naive = datetime.fromtimestamp(after, _UTC).replace(tzinfo=None)
            match = self._match_after(naive)
            return None if match is None else match.replace(tzinfo=_UTC).timestamp()
        local = datetime.fromtimestamp(after, tz)
        start = local.replace(tzinfo=None, fold=0)
        u0, u1 = _instants(start, tz)
        extra: float | None = None
        if u0 < u1:  # *after* lies in a repeated (fall-back) hour
            shift = u1 - u0
            if local.fold == 0:
                t = _transition(tz, math.floor(after), math.ceil(after + shift))
                repeat_start = _naive(t, tz)
                if self.frequent:
                    w = self._match_after(repeat_start - timedelta(seconds=1))
                    if w is not None and w < repeat_start + timedelta(seconds=shift):
                        extra = _instants(w, tz)[1]
            elif not self.frequent:
                t = _transition(tz, math.floor(after - shift), math.ceil(after))
                repeat_end = _naive(t, tz) + timedelta(seconds=shift)
                start = max(start, repeat_end - timedelta(seconds=1))
        result = self._walk(start, after)
        if extra is not None and (result is None or extra < result):
            return extra
        return result

    def _walk(self, start: datetime, after: float) -> float | None:
        tz = self.tz
        w: datetime | None = start
        for _ in range(_MAX_CANDIDATES):
            assert w is not None
            w = self._match_after(w)
            if w is None:
                return None
            u0, u1 = _instants(w, tz)
            if u0 == u1:
                instant = u0
            elif u0 < u1:  # repeated wall time
                if u0 > after:
                    instant = u0
                elif self.frequent and u1 > after:
                    instant = u1
                else:
                    continue
            else:  # inside a spring-forward gap
                gap_end = _transition(tz, math.floor(u1), math.ceil(u0))
                if self.frequent:
                    w = _naive(gap_end, tz) - timedelta(seconds=1)
                    continue
                instant = float(gap_end)
            if instant > after:
                return instant
        return None


def _check_day_exists(
    expression: str,
    days: set[int] | None,
    months: set[int] | None,
    weekdays: set[int] | None,
) -> None:
    """Refuse a day-of-month that no chosen month has (``0 0 30 2 *``).

    Only when the day of the week is unrestricted: with both fields restricted,
    cron fires when either matches, so the weekdays still fire.
    """
    if days is None or months is None or weekdays != set(range(7)):
        return
    if any(day <= _MONTH_DAYS[month - 1] for month in months for day in days):
        return
    names = ", ".join(MONTH_NAMES[month] for month in sorted(months))
    listed = ",".join(str(day) for day in sorted(days))
    raise ConfigError(
        f"invalid cron schedule {expression!r}: day-of-month {listed} never occurs "
        f"in {names}, so it would never fire"
    )


def _instants(naive: datetime, tz: tzinfo) -> tuple[float, float]:
    """The instants of a wall time for fold=0 and fold=1 (equal unless DST)."""
    return (
        naive.replace(tzinfo=tz, fold=0).timestamp(),
        naive.replace(tzinfo=tz, fold=1).timestamp(),
    )


def _naive(ts: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(ts, tz).replace(tzinfo=None, fold=0)


def _transition(tz: tzinfo, lo: int, hi: int) -> int:
    """The first whole second in (lo, hi] whose UTC offset is that of *hi*."""
    target = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


class IntervalSchedule(Schedule):
    """Every *interval* of elapsed time (DST does not apply)."""

    __slots__ = ("interval",)

    def __init__(
        self,
        interval: timedelta | float,
        *,
        start_at: float | None = None,
        end_at: float | None = None,
    ) -> None:
        super().__init__(start_at=start_at, end_at=end_at)
        self.interval = check_duration("interval", interval, positive=True)

    def __repr__(self) -> str:
        return f"<IntervalSchedule every {self.interval:g}s>"

    def _spec(self) -> dict[str, str | float]:
        return {"interval": self.interval}

    def first(self, now: float) -> float | None:
        if self.start_at is None:
            return self._bound(now + self.interval)
        if self.start_at >= now:
            return self._bound(self.start_at)
        return self.following(self.start_at, now - 1e-9)

    def following(self, fire_at: float, after: float) -> float | None:
        steps = max(1, math.floor((after - fire_at) / self.interval) + 1)
        when = fire_at + steps * self.interval
        if when <= after:  # floating-point rounding
            when += self.interval
        return self._bound(when)


class OnceSchedule(Schedule):
    """A single run at *at* (already past: runs at once)."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.start_at = self.end_at = None  # no window: nothing to check
        if type(at) is not float or not 0.0 <= at <= MAX_TIMESTAMP:
            at = checked_moment("execute_at", at, at)
        self.at = at

    def __repr__(self) -> str:
        when = datetime.fromtimestamp(self.at, _UTC).isoformat()
        return f"<OnceSchedule at {when}>"

    def _spec(self) -> dict[str, str | float]:
        return {"at": self.at}

    def first(self, now: float) -> float | None:
        return self.at

    def following(self, fire_at: float, after: float) -> float | None:
        return None


def _number(spec: Mapping[str, object], key: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"schedule field {key!r} must be a number, got {value!r}")
    return float(value)


def schedule_from_spec(spec: Mapping[str, object]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_spec`."""
    start_at = _number(spec, "start_at")
    end_at = _number(spec, "end_at")
    if "cron" in spec:
        tz = spec.get("timezone")
        return CronSchedule(
            str(spec["cron"]),
            timezone=tz if isinstance(tz, str) else None,
            start_at=start_at,
            end_at=end_at,
        )
    interval = _number(spec, "interval")
    if interval is not None:
        return IntervalSchedule(interval, start_at=start_at, end_at=end_at)
    at = _number(spec, "at")
    if at is not None:
        return OnceSchedule(at)
    raise ConfigError(f"not a schedule description: {dict(spec)!r}")

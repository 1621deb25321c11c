"""Pure next-fire-time functions: a table of expressions, zones and DST days."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from aiohttp_jobs import ConfigError
from aiohttp_jobs._tasks.schedules import (
    CronSchedule,
    IntervalSchedule,
    OnceSchedule,
    schedule_from_spec,
)
from aiohttp_jobs._tasks.zones import parse_timezone


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _fires(expr: str, tz: str, after: str, n: int) -> list[str]:
    sched = CronSchedule(expr, timezone=tz)
    zone = parse_timezone(tz)
    t = _ts(after)
    out = []
    for _ in range(n):
        nxt = sched.next_after(t)
        assert nxt is not None
        assert nxt > t
        t = nxt
        out.append(datetime.fromtimestamp(t, zone).isoformat())
    return out


# (expression, zone, strictly after (an instant), the next fire times as local ISO)
TABLE = [
    # -- plain UTC ----------------------------------------------------------------
    (
        "*/15 * * * *",
        "UTC",
        "2024-01-01T00:07:00+00:00",
        ["2024-01-01T00:15:00+00:00", "2024-01-01T00:30:00+00:00"],
    ),
    (
        "* * * * * */10",
        "UTC",
        "2024-01-01T00:00:00+00:00",
        ["2024-01-01T00:00:10+00:00", "2024-01-01T00:00:20+00:00"],
    ),
    (
        "0 9 * * mon-fri",
        "UTC",
        "2024-01-05T10:00:00+00:00",
        ["2024-01-08T09:00:00+00:00", "2024-01-09T09:00:00+00:00"],
    ),
    (
        "0 0 29 2 *",
        "UTC",
        "2024-03-01T00:00:00+00:00",
        ["2028-02-29T00:00:00+00:00"],
    ),
    (
        "@daily",
        "UTC",
        "2024-01-01T00:00:00+00:00",
        ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"],
    ),
    (
        "0 9 * * *",
        "Asia/Kolkata",
        "2024-01-01T00:00:00+00:00",
        ["2024-01-01T09:00:00+05:30", "2024-01-02T09:00:00+05:30"],
    ),
    # -- Europe/Berlin: 2024-03-31 02:00 -> 03:00, 2024-10-27 03:00 -> 02:00 ------
    (  # fixed hour inside the gap: runs at the end of the gap, the day is kept
        "30 2 * * *",
        "Europe/Berlin",
        "2024-03-30T00:00:00+01:00",
        [
            "2024-03-30T02:30:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-04-01T02:30:00+02:00",
        ],
    ),
    (  # several gap times merge into one run
        "*/20 2 * * *",
        "Europe/Berlin",
        "2024-03-31T00:00:00+01:00",
        ["2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"],
    ),
    (  # frequent: the gap does not exist, the next match is on time
        "*/30 * * * *",
        "Europe/Berlin",
        "2024-03-31T01:00:00+01:00",
        [
            "2024-03-31T01:30:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T03:30:00+02:00",
        ],
    ),
    (  # fixed hour in the repeated hour: the first occurrence only
        "30 2 * * *",
        "Europe/Berlin",
        "2024-10-26T12:00:00+02:00",
        ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
    ),
    (  # frequent: both passes of the repeated hour
        "0 * * * *",
        "Europe/Berlin",
        "2024-10-27T00:30:00+02:00",
        [
            "2024-10-27T01:00:00+02:00",
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T03:00:00+01:00",
        ],
    ),
    (  # starting inside the first pass
        "*/20 * * * *",
        "Europe/Berlin",
        "2024-10-27T02:50:00+02:00",
        ["2024-10-27T02:00:00+01:00", "2024-10-27T02:20:00+01:00"],
    ),
    (  # starting inside the second pass, fixed hour: nothing repeats
        "30 2 * * *",
        "Europe/Berlin",
        "2024-10-27T02:10:00+01:00",
        ["2024-10-28T02:30:00+01:00"],
    ),
    (  # starting inside the second pass, frequent
        "*/20 * * * *",
        "Europe/Berlin",
        "2024-10-27T02:10:00+01:00",
        ["2024-10-27T02:20:00+01:00", "2024-10-27T02:40:00+01:00"],
    ),
    # -- America/New_York: 2024-03-10 02:00 -> 03:00, 2024-11-03 02:00 -> 01:00 ---
    (
        "0 2 * * *",
        "America/New_York",
        "2024-03-09T00:00:00-05:00",
        [
            "2024-03-09T02:00:00-05:00",
            "2024-03-10T03:00:00-04:00",
            "2024-03-11T02:00:00-04:00",
        ],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2024-11-03T00:00:00-04:00",
        ["2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        "2024-11-03T00:45:00-04:00",
        [
            "2024-11-03T01:00:00-04:00",
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ],
    ),
    (
        "*/10 1 * * *",
        "America/New_York",
        "2024-11-03T01:45:00-04:00",
        ["2024-11-03T01:50:00-04:00", "2024-11-04T01:00:00-05:00"],
    ),
    # -- Australia/Sydney: 2024-04-07 03:00 -> 02:00, 2024-10-06 02:00 -> 03:00 ---
    (
        "15 2 * * *",
        "Australia/Sydney",
        "2024-10-05T00:00:00+10:00",
        [
            "2024-10-05T02:15:00+10:00",
            "2024-10-06T03:00:00+11:00",
            "2024-10-07T02:15:00+11:00",
        ],
    ),
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2024-04-06T00:00:00+11:00",
        [
            "2024-04-06T02:30:00+11:00",
            "2024-04-07T02:30:00+11:00",
            "2024-04-08T02:30:00+10:00",
        ],
    ),
    # -- Australia/Lord_Howe: half-hour shifts -----------------------------------
    (
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2024-10-05T12:00:00+10:30",
        ["2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"],
    ),
    (
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2024-04-06T12:00:00+11:00",
        ["2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"],
    ),
    # -- America/Santiago: the clocks change at midnight -------------------------
    (  # 2024-09-08 00:00 -> 01:00: midnight does not exist
        "0 0 * * *",
        "America/Santiago",
        "2024-09-06T12:00:00-04:00",
        [
            "2024-09-07T00:00:00-04:00",
            "2024-09-08T01:00:00-03:00",
            "2024-09-09T00:00:00-03:00",
        ],
    ),
    (  # 2024-04-07 00:00 -> 2024-04-06 23:00: 23:30 happens twice, runs once
        "30 23 * * *",
        "America/Santiago",
        "2024-04-05T12:00:00-03:00",
        [
            "2024-04-05T23:30:00-03:00",
            "2024-04-06T23:30:00-03:00",
            "2024-04-07T23:30:00-04:00",
        ],
    ),
]


@pytest.mark.parametrize(("expr", "tz", "after", "expected"), TABLE)
def test_next_fire_times(expr: str, tz: str, after: str, expected: list[str]) -> None:
    assert _fires(expr, tz, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Berlin", "2024-03-31"),
        ("Europe/Berlin", "2024-10-27"),
        ("America/New_York", "2024-03-10"),
        ("America/New_York", "2024-11-03"),
        ("Australia/Sydney", "2024-04-07"),
        ("Australia/Sydney", "2024-10-06"),
        ("Australia/Lord_Howe", "2024-04-07"),
        ("America/Santiago", "2024-09-08"),
    ],
)
@pytest.mark.parametrize("hour", range(24))
def test_fixed_time_daily_runs_exactly_once_per_day_across_dst(
    zone: str, day: str, hour: int
) -> None:
    sched = CronSchedule(f"30 {hour} * * *", timezone=zone)
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(day).replace(tzinfo=tz) - timedelta(days=2)
    t = start.timestamp()
    dates = []
    for _ in range(5):
        nxt = sched.next_after(t)
        assert nxt is not None
        t = nxt
        dates.append(datetime.fromtimestamp(t, tz).date())
    # five consecutive calendar days: none doubled, none skipped
    assert [(d - dates[0]).days for d in dates] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("*/61 * * * *", "invalid cron schedule '*/61 * * * *': minute field '*/61'"),
        ("0 25 * * *", "hour field '25': hour must be in 0-23"),
        ("0 0 32 * *", "day-of-month field '32'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("0 0 * * * 60", "second field '60'"),
        ("* * *", "expected 5 fields"),
        ("* * * * * * *", "got 7"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "minute field 'x'"),
        ("? * * * *", "'?' is only allowed"),
    ],
)
def test_invalid_cron_quotes_the_expression_and_the_field(
    expr: str, message: str
) -> None:
    with pytest.raises(ConfigError, match="invalid cron schedule") as info:
        CronSchedule(expr)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 * * mon-fri",
        "0 0 1 jan *",
        "@hourly",
        "0 0 L * *",
        "0 0 * * 5#2",
        "0 0 * * 7",
    ],
)
def test_valid_cron_forms(expr: str) -> None:
    CronSchedule(expr)


def test_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        CronSchedule("* * * * *", timezone="Mars/Olympus")


def test_window_bounds_cron_fire_times() -> None:
    start = _ts("2024-01-01T10:00:00+00:00")
    end = _ts("2024-01-01T12:00:00+00:00")
    sched = CronSchedule("0 * * * *", start_at=start, end_at=end)
    assert sched.first(_ts("2024-01-01T00:00:00+00:00")) == start
    assert sched.following(start, start) == start + 3600
    assert sched.following(end, end) is None


@pytest.mark.parametrize(
    ("fire_at", "after", "expected"),
    [
        (100.0, 100.0, 110.0),
        (100.0, 105.0, 110.0),
        (100.0, 110.0, 120.0),
        (100.0, 155.5, 160.0),
    ],
)
def test_interval_following_keeps_the_phase(
    fire_at: float, after: float, expected: float
) -> None:
    assert IntervalSchedule(10).following(fire_at, after) == expected


def test_interval_first_and_window() -> None:
    assert IntervalSchedule(timedelta(seconds=5)).first(1000.0) == 1005.0
    sched = IntervalSchedule(5, start_at=2000.0, end_at=2012.0)
    assert sched.first(1000.0) == 2000.0
    assert sched.first(2003.0) == 2005.0
    assert sched.following(2010.0, 2010.0) is None


@pytest.mark.parametrize("bad", [0, -1, float("inf"), "5", True])
def test_interval_must_be_positive_seconds(bad: object) -> None:
    with pytest.raises(ConfigError, match="interval"):
        IntervalSchedule(bad)  # type: ignore[arg-type]


def test_once_fires_once_even_when_overdue() -> None:
    sched = OnceSchedule(50.0)
    assert sched.first(100.0) == 50.0
    assert sched.following(50.0, 100.0) is None


@pytest.mark.parametrize(
    "sched",
    [
        CronSchedule(
            "*/5 * * * *", timezone="Europe/Berlin", start_at=10.0, end_at=9e9
        ),
        IntervalSchedule(2.5, start_at=3.0),
        OnceSchedule(1234.5),
    ],
)
def test_specs_round_trip(
    sched: CronSchedule | IntervalSchedule | OnceSchedule,
) -> None:
    spec = sched.to_spec()
    assert schedule_from_spec(spec) == sched
    assert schedule_from_spec(spec).to_spec() == spec


def test_end_before_start_is_rejected() -> None:
    with pytest.raises(ConfigError, match="end_at must not be before start_at"):
        IntervalSchedule(1, start_at=10.0, end_at=5.0)


def test_naive_and_aware_timezones() -> None:
    assert parse_timezone(None) is UTC
    assert parse_timezone("utc") is UTC
    assert parse_timezone("Europe/Berlin") == ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("given", "name"),
    [
        (timezone(timedelta(hours=2)), "UTC+02:00"),
        (timezone(timedelta(hours=-5, minutes=-30)), "UTC-05:30"),
        (timezone(timedelta(hours=5, minutes=45), "NPT"), "UTC+05:45"),
        ("UTC+02:00", "UTC+02:00"),
        ("UTC-09:30", "UTC-09:30"),
        (timezone(timedelta(0)), "UTC"),
        ("UTC+00:00", "UTC"),
    ],
)
def test_fixed_offsets_are_stored_by_name_and_read_back(
    given: str | timezone, name: str
) -> None:
    sched = CronSchedule("0 12 * * *", timezone=given)
    assert sched.to_spec()["timezone"] == name
    assert schedule_from_spec(sched.to_spec()) == sched
    assert name in repr(sched)
    offset = parse_timezone(given).utcoffset(None)
    assert offset is not None
    noon = datetime(2024, 1, 1, 12, tzinfo=timezone(offset)).timestamp()
    assert sched.next_after(noon - 1) == noon


@pytest.mark.parametrize("value", ["UTC+24:00", "UTC+02:60", "UTC+2", "GMT+02:00"])
def test_malformed_offsets_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"time zone|fixed offset"):
        parse_timezone(value)


def test_a_zone_that_cannot_be_stored_is_refused_at_once() -> None:
    class Nameless(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(hours=1)

        def dst(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

        def tzname(self, dt: datetime | None) -> str:
            return "nameless"

    with pytest.raises(ConfigError, match="cannot be stored with a schedule"):
        parse_timezone(Nameless())


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 30 2 *", "day-of-month 30 never occurs in February"),
        ("0 0 31 4 *", "day-of-month 31 never occurs in April"),
        ("0 0 31 4,6,9,11 *", "never occurs in April, June, September, November"),
        ("0 0 30,31 feb *", "day-of-month 30,31 never occurs in February"),
        ("0 0 30 2 * 0", "never occurs in February"),
    ],
)
def test_cron_dates_that_never_exist_are_refused(expression: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CronSchedule(expression)


@pytest.mark.parametrize(
    "expression",
    ["0 0 29 2 *", "0 0 31 * *", "0 0 30 2 mon", "0 0 L 2 *", "0 0 31 1-4 *"],
)
def test_rare_but_real_cron_dates_are_accepted(expression: str) -> None:
    sched = CronSchedule(expression)
    assert sched.next_after(_ts("2024-03-01T00:00:00+00:00")) is not None


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: OnceSchedule(math.nan), "execute_at"),
        (lambda: OnceSchedule(math.inf), "execute_at"),
        (lambda: OnceSchedule(1e12), "execute_at must be no later than 9999"),
        (lambda: IntervalSchedule(1e300), "interval"),
        (lambda: IntervalSchedule(math.nan), "interval"),
        (lambda: IntervalSchedule(60, start_at=math.inf), "start_at"),
        (lambda: CronSchedule("* * * * *", end_at=math.nan), "end_at"),
    ],
)
def test_times_no_datetime_can_show_are_refused(
    make: Callable[[], object], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        make()


def test_a_schedule_ends_at_the_last_instant_a_datetime_can_show() -> None:
    assert (
        CronSchedule("0 0 1 1 *").next_after(_ts("9999-06-01T00:00:00+00:00")) is None
    )
    yearly = IntervalSchedule(365 * 86400.0, start_at=_ts("9999-06-01T00:00:00+00:00"))
    assert yearly.following(yearly.start_at or 0.0, yearly.start_at or 0.0) is None

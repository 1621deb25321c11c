"""Schedules for people: cron in words, the next fire times with daylight-saving
changes marked, and links relative to the page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import make_mocked_request

from aiohttp_jobs.dashboard._links import relative
from aiohttp_jobs.dashboard._schedule import cron_words, next_fires, schedule_words


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * * * *", "every minute"),
        ("*/5 * * * *", "every 5 minutes"),
        ("0 * * * *", "every hour at minute 0"),
        ("30 2 * * *", "at 02:30 every day"),
        ("@daily", "at 00:00 every day"),
        ("@hourly", "every hour at minute 0"),
        ("0 9 * * 1-5", "at 09:00 on Monday through Friday"),
        ("0 9 * * mon-fri", "at 09:00 on Monday through Friday"),
        ("0 0 * * 0", "at 00:00 on Sunday"),
        ("0 0 * * 7", "at 00:00 on Sunday"),
        ("15 10 1 * *", "at 10:15 on day 1 of the month"),
        ("0 0 1 jan *", "at 00:00 on day 1 of the month in January"),
        ("0 8,20 * * *", "at minute 0 of hour 8 and 20"),
        ("*/10 9-17 * * *", "every 10 minutes during hour 9 through 17"),
        ("0 0 L * *", "0 0 L * *"),  # unknown to the reader: shown as written
        ("not cron", "not cron"),
    ],
)
def test_cron_in_words(expression: str, words: str) -> None:
    assert cron_words(expression) == words


def test_schedules_in_words() -> None:
    assert schedule_words({"interval": 60.0}, None) == "every minute"
    assert schedule_words({"interval": 7200.0}, None) == "every 2 hours"
    assert schedule_words({"interval": 90.0}, None) == "every 90 seconds"
    assert schedule_words({"at": 1.0}, None) == "once"
    assert schedule_words(None, "paid") == "when the keyword 'paid' is fired"
    assert schedule_words(None, None) == "on demand"


def test_next_fires_mark_the_daylight_saving_changes() -> None:
    now = datetime(2026, 10, 23, 12, tzinfo=UTC).timestamp()  # Berlin: back on 25th
    fires = next_fires({"cron": "0 12 * * *", "timezone": "Europe/Berlin"}, None, now)
    assert [f["local"] for f in fires] == [
        "2026-10-24 12:00:00 CEST",
        "2026-10-25 12:00:00 CET",
        "2026-10-26 12:00:00 CET",
        "2026-10-27 12:00:00 CET",
        "2026-10-28 12:00:00 CET",
    ]
    assert [f["dst_change"] for f in fires] == [False, True, False, False, False]
    assert [f["offset"] for f in fires[:2]] == ["+0200", "+0100"]
    interval = next_fires({"interval": 60.0}, now + 30, now)
    assert [f["at"] for f in interval] == [now + 30 + 60 * n for n in range(5)]
    assert next_fires({"at": now + 5}, now + 5, now)[0]["at"] == now + 5
    assert len(next_fires({"at": now + 5}, now + 5, now)) == 1
    assert next_fires(None, None, now) == []
    assert next_fires({"bogus": 1}, None, now) == []


@pytest.mark.parametrize(
    ("page", "target", "link"),
    [
        ("/jobs/", "/jobs/jobs", "./jobs"),
        ("/jobs/", "/jobs/", "./"),
        ("/jobs/jobs", "/jobs/", "./"),
        ("/jobs/jobs", "/jobs/jobs/ab-1?x=1", "./jobs/ab-1?x=1"),
        ("/jobs/jobs/ab-1", "/jobs/jobs", "../jobs"),
        ("/jobs/jobs/ab-1", "/jobs/static/d.css", "../static/d.css"),
        ("/jobs/jobs/ab-1/cancel", "/jobs/jobs/ab-1", "../ab-1"),
        ("/a/b/jobs/tasks", "/a/b/jobs/tasks/run", "./tasks/run"),
        ("/jobs/tasks/run", "/jobs/tasks?done=1", "../tasks?done=1"),
    ],
)
def test_links_are_relative_to_the_page(page: str, target: str, link: str) -> None:
    assert relative(make_mocked_request("GET", page), target) == link

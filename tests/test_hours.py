"""Opening hours and a texter's unsafe hours (bot/hours.py), table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.hours import in_unsafe_hours, parse_hours

CHICAGO = "mon-fri 09:00-17:00; sat 10:00-14:00 America/Chicago"
NIGHT = "fri-sat 22:00-02:00 UTC"  # windows that cross midnight


def at(text: str, zone: str = "UTC") -> datetime:
    """A moment written in a zone: "2026-12-07 09:00" (7 December 2026 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("spec", "moment", "zone", "open_"),
    [
        ("24/7", "2026-12-06 03:00", "UTC", True),
        ("", "2026-12-06 03:00", "UTC", True),
        (CHICAGO, "2026-12-07 09:00", "America/Chicago", True),  # Monday, opening minute
        (CHICAGO, "2026-12-07 08:59", "America/Chicago", False),
        (CHICAGO, "2026-12-07 17:00", "America/Chicago", False),  # closing minute is closed
        (CHICAGO, "2026-12-07 16:59", "America/Chicago", True),
        (CHICAGO, "2026-12-12 10:30", "America/Chicago", True),  # Saturday
        (CHICAGO, "2026-12-12 14:00", "America/Chicago", False),
        (CHICAGO, "2026-12-13 12:00", "America/Chicago", False),  # Sunday
        (CHICAGO, "2026-12-07 15:30", "UTC", True),  # 09:30 in Chicago
        (CHICAGO, "2026-12-07 14:59", "UTC", False),  # 08:59 in Chicago
        (NIGHT, "2026-12-11 23:00", "UTC", True),  # Friday night
        (NIGHT, "2026-12-12 01:59", "UTC", True),  # still Friday's window
        (NIGHT, "2026-12-12 02:00", "UTC", False),
        (NIGHT, "2026-12-13 01:00", "UTC", True),  # Saturday's window, into Sunday
        (NIGHT, "2026-12-14 01:00", "UTC", False),  # Sunday night: no window
        ("mon 00:00-24:00 UTC", "2026-12-07 23:59", "UTC", True),
    ],
)
def test_is_open(spec: str, moment: str, zone: str, open_: bool) -> None:
    """Opening hours in the helpline's zone, whatever zone the clock is read in; windows
    may cross midnight; the closing minute is closed."""
    assert parse_hours(spec).is_open(at(moment, zone)) is open_


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("mon-fri 9-5", "HH:MM-HH:MM"),
        ("funday 09:00-17:00", "unknown day"),
        ("mon-fri 09:00-25:00", "bad time"),
        ("mon-fri 09:00-17:00 Mars/Olympus", "unknown time zone"),
        ("mon-fri", "expected 'days HH:MM-HH:MM'"),
    ],
)
def test_bad_hours_say_what_is_wrong(spec: str, problem: str) -> None:
    """A bad HAVEN_HOURS is refused with the reason (settings turns it into a start-up
    error)."""
    with pytest.raises(ValueError, match=problem):
        parse_hours(spec)


@pytest.mark.parametrize(
    ("spec", "language", "text"),
    [
        ("24/7", "en", "24/7"),
        (CHICAGO, "en", "Mon-Fri 09:00-17:00; Sat 10:00-14:00 (Chicago time)"),
        (CHICAGO, "es", "lun-vie 09:00-17:00; sab 10:00-14:00 (hora de Chicago)"),
    ],
)
def test_describe(spec: str, language: str, text: str) -> None:
    """Hours as a texter reads them, in their language (Spanish stays GSM-7: "sab")."""
    assert parse_hours(spec).describe(language) == text


@pytest.mark.parametrize(
    ("unsafe", "clock", "inside"),
    [
        (None, "12:00", False),
        ("", "12:00", False),
        ("18:00-22:00", "18:00", True),
        ("18:00-22:00", "21:59", True),
        ("18:00-22:00", "22:00", False),
        ("18:00-22:00", "17:59", False),
        ("22:00-07:00", "23:30", True),  # across midnight
        ("22:00-07:00", "06:59", True),
        ("22:00-07:00", "07:00", False),
        ("22:00-07:00", "12:00", False),
        ("whenever he is home", "12:00", True),  # unreadable: err on the side of silence
    ],
)
def test_unsafe_hours(unsafe: str | None, clock: str, inside: bool) -> None:
    """A texter's unsafe hours, in the helpline's zone, may cross midnight; anything
    unreadable counts as unsafe, so Haven stays silent rather than guess."""
    zone = ZoneInfo("America/Chicago")
    now = datetime.fromisoformat(f"2026-12-07 {clock}").replace(tzinfo=zone).astimezone(UTC)
    assert in_unsafe_hours(unsafe, now, zone) is inside

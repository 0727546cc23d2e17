"""Opening hours from HSDS schedule rows: open now and open 24 hours, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.resources.schedule import Schedule, ScheduleError, parse_row

CHICAGO = ZoneInfo("America/Chicago")
WEEKDAYS = "MO,TU,WE,TH,FR"
EVERY_DAY = "MO,TU,WE,TH,FR,SA,SU"


def local(text: str) -> datetime:
    """A Chicago wall-clock time (2025-03-03 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=CHICAGO)


def schedule(*rows: dict[str, str], said_24h: bool = False) -> Schedule:
    rules = [parse_row(r) for r in rows]
    return Schedule(tuple(r for r in rules if r is not None), said_24h)


def row(byday: str = "", opens: str = "", closes: str = "", **more: str) -> dict[str, str]:
    return {"byday": byday, "opens_at": opens, "closes_at": closes, **more}


OPEN_NOW = [
    # (why, rows, local time, open now?)
    ("weekday office, inside", [row(WEEKDAYS, "09:00", "17:00")], "2025-03-03 10:00", True),
    ("opening minute is open", [row(WEEKDAYS, "09:00", "17:00")], "2025-03-03 09:00", True),
    ("closing minute is closed", [row(WEEKDAYS, "09:00", "17:00")], "2025-03-03 17:00", False),
    ("weekday office, Saturday", [row(WEEKDAYS, "09:00", "17:00")], "2025-03-08 10:00", False),
    ("blank byday is every day", [row("", "09:00", "17:00")], "2025-03-09 12:00", True),
    ("overnight, evening part", [row(EVERY_DAY, "19:00", "07:00")], "2025-03-03 23:30", True),
    ("overnight, morning part", [row(EVERY_DAY, "19:00", "07:00")], "2025-03-04 06:59", True),
    ("overnight, daytime gap", [row(EVERY_DAY, "19:00", "07:00")], "2025-03-04 12:00", False),
    ("overnight from Friday only", [row("FR", "22:00", "02:00")], "2025-03-08 01:00", True),
    ("...not Thursday night", [row("FR", "22:00", "02:00")], "2025-03-07 01:00", False),
    ("23:59 runs to midnight", [row("MO", "20:00", "23:59")], "2025-03-03 23:59", True),
    ("24:00 runs to midnight", [row("MO", "20:00", "24:00")], "2025-03-03 23:59", True),
    ("...but not into Tuesday", [row("MO", "20:00", "24:00")], "2025-03-04 00:01", False),
    (
        "two rows: second applies",
        [row("TU", "09:00", "12:00"), row("SA", "10:00", "14:00")],
        "2025-03-08 11:00",
        True,
    ),
    ("explicit UTC offset wins", [row("MO", "15:00Z", "16:00Z")], "2025-03-03 09:30", True),
    (
        "offset with seconds",
        [row("MO", "09:00:00-06:00", "10:00:00-06:00")],
        "2025-03-03 09:30",
        True,
    ),
    (
        "timezone column (hours)",
        [row("MO", "10:00", "11:00", timezone="-5")],
        "2025-03-03 09:30",
        True,
    ),
    (
        "valid_to in the past",
        [row(EVERY_DAY, "00:00", "23:59", valid_to="2025-02-28")],
        "2025-03-03 12:00",
        False,
    ),
    (
        "valid_from in the future",
        [row(EVERY_DAY, "09:00", "17:00", valid_from="2025-04-01")],
        "2025-03-03 12:00",
        False,
    ),
    (
        "monthly second Monday",
        [row("2MO", "09:00", "17:00", freq="MONTHLY")],
        "2025-03-10 12:00",
        True,
    ),
    (
        "monthly, first Monday is not second",
        [row("2MO", "09:00", "17:00", freq="MONTHLY")],
        "2025-03-03 12:00",
        False,
    ),
    (
        "monthly last Friday",
        [row("-1FR", "09:00", "17:00", freq="MONTHLY")],
        "2025-03-28 12:00",
        True,
    ),
    (
        "monthly day 1",
        [row("", "09:00", "17:00", freq="MONTHLY", bymonthday="1")],
        "2025-03-01 12:00",
        True,
    ),
    (
        "every other week from dtstart",
        [row("MO", "09:00", "17:00", interval="2", dtstart="2025-02-24")],
        "2025-03-03 12:00",
        False,
    ),
    (
        "...and the week after",
        [row("MO", "09:00", "17:00", interval="2", dtstart="2025-02-24")],
        "2025-03-10 12:00",
        True,
    ),
    (
        "24 hours said, no times, weekdays",
        [row(WEEKDAYS, description="Staffed 24 hours")],
        "2025-03-04 03:00",
        True,
    ),
]


@pytest.mark.parametrize(
    ("why", "rows", "when", "expected"), OPEN_NOW, ids=[c[0] for c in OPEN_NOW]
)
def test_open_now(why: str, rows: list[dict[str, str]], when: str, expected: bool) -> None:
    """Each schedule row shape reads as open or closed at the given Chicago time."""
    assert schedule(*rows).open_now(local(when), CHICAGO) is expected, why


OPEN_24H = [
    ("00:00-23:59 every day", [row(EVERY_DAY, "00:00", "23:59")], True),
    ("00:00-24:00, blank byday", [row("", "00:00", "24:00")], True),
    ("00:00-00:00 every day", [row(EVERY_DAY, "00:00", "00:00")], True),
    ("two halves that meet", [row("", "09:00", "18:00"), row("", "18:00", "09:00")], True),
    ("description only: 24/7", [row("", description="Answered 24/7")], True),
    ("Spanish: 24 horas", [row("", description="Abierto 24 horas")], True),
    ("weekdays only", [row(WEEKDAYS, "00:00", "23:59")], False),
    ("a five-minute gap", [row("", "00:00", "11:55"), row("", "12:00", "23:59")], False),
    ("office hours", [row(WEEKDAYS, "09:00", "17:00")], False),
    ("overnight only", [row(EVERY_DAY, "19:00", "07:00")], False),
    ("no schedule at all", [], False),
    ("description without times or 24h words", [row("", description="Call first")], False),
]


@pytest.mark.parametrize(("why", "rows", "expected"), OPEN_24H, ids=[c[0] for c in OPEN_24H])
def test_open_24h(why: str, rows: list[dict[str, str]], expected: bool) -> None:
    """Open 24 hours means no closed moment in the coming week (or said so)."""
    s = schedule(*rows)
    assert s.open_24h(local("2025-03-05 13:00"), CHICAGO) is expected, why
    if expected:
        assert s.open_now(local("2025-03-05 03:33"), CHICAGO) is True


def test_no_schedule_is_unknown_not_closed() -> None:
    """A site without hours is neither open nor closed now: None."""
    assert Schedule().open_now(datetime(2025, 3, 3, tzinfo=UTC), CHICAGO) is None


def test_a_taxonomy_24_hours_marker_makes_it_24_hours() -> None:
    """said_24h (from a term or attribute) is open 24 hours with no rows at all."""
    s = Schedule((), said_24h=True)
    assert s.open_24h(local("2025-03-05 13:00"), CHICAGO)
    assert s.open_now(local("2025-03-05 13:00"), CHICAGO) is True


def test_schedules_survive_their_json_round_trip() -> None:
    """What is stored reads back as the same schedule."""
    s = schedule(row("2MO", "09:00Z", "17:00Z", freq="MONTHLY"), row("", "19:00", "07:00"))
    assert Schedule.from_json(s.to_json()) == s


BAD = [
    ({"opens_at": "9am", "closes_at": "17:00"}, "opens_at"),
    ({"opens_at": "09:00", "closes_at": "25:00"}, "closes_at"),
    ({"opens_at": "09:00"}, "closes_at"),
    ({"byday": "MON", "opens_at": "09:00", "closes_at": "10:00"}, "byday"),
    ({"freq": "DAILY", "opens_at": "09:00", "closes_at": "10:00"}, "freq"),
    ({"valid_to": "31/12/2025", "opens_at": "09:00", "closes_at": "10:00"}, "valid_to"),
    ({"timezone": "CST", "opens_at": "09:00", "closes_at": "10:00"}, "timezone"),
]


@pytest.mark.parametrize(("cells", "column"), BAD)
def test_unreadable_cells_name_their_column(cells: dict[str, str], column: str) -> None:
    """A cell that cannot be read is an error naming that column."""
    with pytest.raises(ScheduleError) as caught:
        parse_row(cells)
    assert caught.value.column == column

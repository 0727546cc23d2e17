"""Opening hours from HSDS 3.0 schedules (RFC 5545 RRULE-style rows): open now, open 24 hours.

What is read, per schedules.csv row:
- `freq` WEEKLY (or blank) with `byday` (`MO,TU,...`; blank means every day) and
  `interval` (every n weeks counted from `dtstart`); MONTHLY with `byday` ordinals (`2MO`,
  `-1FR`) or `bymonthday` (`1,15,-1`);
- `opens_at`/`closes_at` as `HH:MM[:SS]`, optionally with `Z` or `±HH:MM`. A closing time
  at or before the opening time runs past midnight into the next day; `closes_at` 23:59
  or 24:00 means to the end of the day. A row with neither time but a description saying
  24 hours is open all day on its days;
- `valid_from`/`valid_to` (inclusive dates) and `timezone` (a UTC offset in hours);
- a row with no times whose description or notes say "24 hours" ("24/7", "24 horas") is
  open all day on its days.
Times with no offset are in the site's zone (its ZIP's, from the `zipcodes` data).

Open 24 hours: the rules leave no closed moment in the coming week (00:00-23:59 every day,
or 18:00-09:00 with 09:00-18:00, ...), or the service's taxonomy terms or attributes say
"24 hours".
Open now is None when a site has no schedule at all (unknown, not closed).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # datetime.weekday() order
END_OF_DAY = 24 * 60
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
ALL_DAY_WORDS = re.compile(
    r"\b24\s*(?:/\s*7|x\s*7|\s*-?\s*hours?|\s*-?\s*hrs?|\s*-?\s*horas?|\s*h)\b"
    r"|\b(?:open|abierto)\s+(?:all\s+day|around\s+the\s+clock|todo\s+el\s+dia)",
    re.IGNORECASE,
)


class ScheduleError(ValueError):
    """A schedules.csv cell that cannot be read; `column` names it."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Rule:
    """One schedule row, parsed. Times are minutes after local midnight."""

    opens: int
    closes: int  # <= opens: runs past midnight; END_OF_DAY: to the end of the day
    weekdays: tuple[int, ...] = ()  # 0=Monday; () with no monthly parts means every day
    nth_weekdays: tuple[tuple[int, int], ...] = ()  # MONTHLY (n, weekday): 2MO, -1FR
    month_days: tuple[int, ...] = ()  # MONTHLY: 1, 15, -1
    offset_minutes: int | None = None  # a fixed UTC offset; None: the site's zone
    valid_from: str | None = None  # ISO dates, inclusive
    valid_to: str | None = None
    interval: int = 1  # WEEKLY every n weeks from dtstart
    dtstart: str | None = None

    def _zone(self, site_zone: tzinfo) -> tzinfo:
        if self.offset_minutes is None:
            return site_zone
        return timezone(timedelta(minutes=self.offset_minutes))

    def valid_on(self, day: date) -> bool:
        if self.valid_from and day < date.fromisoformat(self.valid_from):
            return False
        return not (self.valid_to and day > date.fromisoformat(self.valid_to))

    def runs_on(self, day: date) -> bool:
        """Whether an opening of this rule starts on `day` (validity included)."""
        if not self.valid_on(day):
            return False
        monthly = self.nth_weekdays or self.month_days
        if monthly:
            last = calendar.monthrange(day.year, day.month)[1]
            if any(day.day == (d if d > 0 else last + 1 + d) for d in self.month_days):
                return True
            for n, weekday in self.nth_weekdays:
                if day.weekday() != weekday:
                    continue
                nth = (day.day - 1) // 7 + 1 if n > 0 else -((last - day.day) // 7 + 1)
                if n in (0, nth):
                    return True
            return False
        if self.weekdays and day.weekday() not in self.weekdays:
            return False
        if self.interval > 1 and self.dtstart:
            start = date.fromisoformat(self.dtstart)
            weeks = (
                (day - timedelta(days=day.weekday())) - (start - timedelta(days=start.weekday()))
            ).days // 7
            return weeks >= 0 and weeks % self.interval == 0
        return True

    def is_open(self, now: datetime, site_zone: tzinfo) -> bool:
        local = now.astimezone(self._zone(site_zone))
        minute = local.hour * 60 + local.minute
        today = local.date()
        overnight = self.closes <= self.opens
        if self.runs_on(today) and (
            self.opens <= minute < (END_OF_DAY if overnight else self.closes)
        ):
            return True
        # An opening that started yesterday and runs past midnight.
        return overnight and self.runs_on(today - timedelta(days=1)) and minute < self.closes


@dataclass(frozen=True)
class Schedule:
    """A site's rules, plus whether its directory entry says it is open around the clock
    (a taxonomy term or attribute such as "24 hours")."""

    rules: tuple[Rule, ...] = ()
    said_24h: bool = False

    @property
    def known(self) -> bool:
        return bool(self.rules) or self.said_24h

    def open_24h(self, now: datetime, site_zone: tzinfo) -> bool:
        if self.said_24h:
            return True
        if not self.rules:
            return False
        # Open around the clock for the coming week: a gap in the union of openings begins
        # where some opening ends, so being open at every closing instant (and now) is
        # enough; this also sees 18:00-09:00 plus 09:00-18:00 as 24 hours.
        instants = [now]
        for rule in self.rules:
            rule_zone = rule._zone(site_zone)
            today = now.astimezone(rule_zone).date()
            for i in range(8):
                midnight = datetime.combine(today + timedelta(days=i), time(0), rule_zone)
                instants.append(midnight + timedelta(minutes=rule.closes))
        return all(any(r.is_open(t, site_zone) for r in self.rules) for t in instants)

    def open_now(self, now: datetime, site_zone: tzinfo) -> bool | None:
        if not self.known:
            return None
        return self.open_24h(now, site_zone) or any(r.is_open(now, site_zone) for r in self.rules)

    def to_json(self) -> str:
        return json.dumps(
            {"rules": [asdict(r) for r in self.rules], "said_24h": self.said_24h},
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        raw = json.loads(text)
        if isinstance(raw, list):  # the column's empty default
            return cls()
        rules = []
        for r in raw["rules"]:
            r["weekdays"] = tuple(r["weekdays"])
            r["nth_weekdays"] = tuple(tuple(p) for p in r["nth_weekdays"])
            r["month_days"] = tuple(r["month_days"])
            rules.append(Rule(**r))
        return cls(tuple(rules), bool(raw["said_24h"]))


def zone(name: str) -> tzinfo:
    """A stored zone name as a tzinfo (UTC when the name is unknown to this system)."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):
        return UTC


def _minutes(column: str, value: str) -> tuple[int, int | None]:
    """`HH:MM[:SS][Z|±HH:MM]` as (minutes after midnight, UTC offset minutes or None)."""
    m = _TIME.match(value.strip())
    if not m:
        raise ScheduleError(column, f"{value!r} is not a time like 09:00 or 09:00-05:00")
    hours, minutes = int(m[1]), int(m[2])
    if not (hours < 24 and minutes < 60) and (hours, minutes) != (24, 0):
        raise ScheduleError(column, f"{value!r} is not a time of day")
    offset: int | None = None
    if m[4]:
        suffix = m[4].upper().replace(":", "")
        offset = (
            0
            if suffix == "Z"
            else int(suffix[0] + "1") * (int(suffix[1:3]) * 60 + int(suffix[3:5]))
        )
    total = hours * 60 + minutes
    # 23:59 is how HSDS says "to the end of the day" (its spec's advice for 24h opening).
    return (END_OF_DAY if total >= 23 * 60 + 59 else total), offset


def _date(column: str, value: str) -> str | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        raise ScheduleError(column, f"{value!r} is not a date like 2025-01-31") from None


def parse_row(row: Mapping[str, str]) -> Rule | None:
    """One schedules.csv row as a rule; None when it gives no times and does not say it is
    open 24 hours (a description-only row tells us nothing we can compute with)."""

    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    said_24h = any(ALL_DAY_WORDS.search(cell(c)) for c in ("description", "notes"))
    freq = cell("freq").upper()
    if freq not in ("", "WEEKLY", "MONTHLY"):
        raise ScheduleError("freq", f"{freq!r} is not WEEKLY or MONTHLY")
    weekdays: list[int] = []
    nth: list[tuple[int, int]] = []
    for part in filter(None, (p.strip().upper() for p in cell("byday").split(","))):
        m = _BYDAY.match(part)
        if not m:
            raise ScheduleError("byday", f"{part!r} is not a day like MO or 2MO")
        day = DAYS.index(m[2])
        if m[1] and freq == "MONTHLY":
            nth.append((int(m[1]), day))
        elif freq == "MONTHLY":
            nth.append((0, day))  # every such weekday of the month
        else:
            weekdays.append(day)
    month_days: list[int] = []
    for part in filter(None, (p.strip() for p in cell("bymonthday").split(","))):
        try:
            month_days.append(int(part))
        except ValueError:
            raise ScheduleError("bymonthday", f"{part!r} is not a day of the month") from None
    interval_text = cell("interval") or "1"
    try:
        interval = max(1, int(float(interval_text)))
    except ValueError:
        raise ScheduleError("interval", f"{interval_text!r} is not a number") from None
    opens_text, closes_text = cell("opens_at"), cell("closes_at")
    valid_from, valid_to = (
        _date("valid_from", cell("valid_from")),
        _date("valid_to", cell("valid_to")),
    )
    dtstart = _date("dtstart", cell("dtstart"))
    if not opens_text and not closes_text:
        if not said_24h:
            return None
        # "24 hours" on given days, with no times: a whole-day rule on those days.
        opens, closes, offset = 0, END_OF_DAY, None
    elif not (opens_text and closes_text):
        column = "closes_at" if opens_text else "opens_at"
        raise ScheduleError(column, "opens_at and closes_at go together")
    else:
        opens, offset = _minutes("opens_at", opens_text)
        if opens == END_OF_DAY:
            opens = 0  # "24:00" opening is the start of a day
        closes, close_offset = _minutes("closes_at", closes_text)
        offset = offset if offset is not None else close_offset
    if offset is None and cell("timezone"):
        try:
            offset = round(float(cell("timezone")) * 60)
        except ValueError:
            raise ScheduleError("timezone", f"{cell('timezone')!r} is not a UTC offset") from None
    rule = Rule(
        opens=opens,
        closes=closes,
        weekdays=tuple(sorted(set(weekdays))),
        nth_weekdays=tuple(nth),
        month_days=tuple(month_days),
        offset_minutes=offset,
        valid_from=valid_from,
        valid_to=valid_to,
        interval=interval,
        dtstart=dtstart,
    )
    return rule

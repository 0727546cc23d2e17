"""Opening hours (HAVEN_HOURS) and texters' unsafe hours.

Format: "24/7", or day ranges with times separated by ";" and an optional IANA time zone at the
end, e.g. "mon-fri 09:00-17:00; sat 10:00-14:00 America/Chicago". A time range may cross
midnight ("fri 18:00-02:00"): the hours after midnight belong to the day the range starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "es": ("lun", "mar", "mié", "jue", "vie", "sab", "dom"),
}
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Window:
    day: int  # 0 = Monday
    start: time
    end: time  # end <= start means the window runs past midnight


@dataclass(frozen=True)
class Hours:
    always: bool
    windows: tuple[Window, ...]
    zone: ZoneInfo
    text: str

    def describe(self, language: str) -> str:
        """The hours as a texter reads them: "Mon-Fri 09:00-17:00 (Chicago time)", or
        "lun-vie 09:00-17:00 (hora de Chicago)"."""
        if self.always:
            return "24/7"
        names = _DAY_NAMES.get(language, _DAY_NAMES["en"])
        spec = self.text
        if spec.split()[-1] == self.zone.key:
            spec = spec[: -len(self.zone.key)].strip()
        spec = re.sub(
            r"[a-z]+",
            lambda m: names[DAYS.index(m[0][:3])] if m[0][:3] in DAYS else m[0],
            spec.lower(),
        )
        spec = "; ".join(part.strip() for part in spec.split(";"))
        city = self.zone.key.rsplit("/", 1)[-1].replace("_", " ")
        where = f"hora de {city}" if language == "es" else f"{city} time"
        return f"{spec} ({where})"

    def is_open(self, now: datetime) -> bool:
        if self.always:
            return True
        local = now.astimezone(self.zone)
        for w in self.windows:
            for day_offset in (0, 1):  # a window that started yesterday may still run
                start_day = local.date() - timedelta(days=day_offset)
                if start_day.weekday() != w.day:
                    continue
                start = datetime.combine(start_day, w.start, self.zone)
                end_day = start_day if w.end > w.start else start_day + timedelta(days=1)
                end = datetime.combine(end_day, w.end, self.zone)
                if start <= local < end:
                    return True
        return False


def _parse_time(hours: str, minutes: str) -> time:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return time(23, 59, 59)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"bad time {hours}:{minutes}")
    return time(h, m)


def _parse_days(spec: str) -> list[int]:
    days: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (x.strip()[:3] for x in part.split("-", 1))
            if a not in DAYS or b not in DAYS:
                raise ValueError(f"unknown day in {part!r}")
            i, j = DAYS.index(a), DAYS.index(b)
            days.extend(DAYS.index(DAYS[k % 7]) for k in range(i, i + (j - i) % 7 + 1))
        else:
            if part[:3] not in DAYS:
                raise ValueError(f"unknown day {part!r}")
            days.append(DAYS.index(part[:3]))
    return days


def parse_hours(spec: str) -> Hours:
    text = spec.strip()
    if not text or text.lower() in ("24/7", "always"):
        return Hours(True, (), ZoneInfo("UTC"), "24/7")
    zone = ZoneInfo("UTC")
    tokens = text.split()
    if "/" in tokens[-1] or tokens[-1].upper() == "UTC":
        try:
            zone = ZoneInfo(tokens[-1])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tokens[-1]!r}") from None
        text = " ".join(tokens[:-1])
    windows: list[Window] = []
    for chunk in text.split(";"):
        parts = chunk.strip().lower().split()
        if len(parts) != 2:
            raise ValueError(f"expected 'days HH:MM-HH:MM', got {chunk.strip()!r}")
        match = _RANGE.match(parts[1])
        if not match:
            raise ValueError(f"expected HH:MM-HH:MM, got {parts[1]!r}")
        start = _parse_time(match[1], match[2])
        end = _parse_time(match[3], match[4])
        windows.extend(Window(day, start, end) for day in _parse_days(parts[0]))
    return Hours(False, tuple(windows), zone, spec.strip())


def in_unsafe_hours(unsafe: str | None, now: datetime, zone: ZoneInfo) -> bool:
    """A texter's unsafe hours, "HH:MM-HH:MM" in the helpline's zone (may cross midnight)."""
    if not unsafe:
        return False
    match = _RANGE.match(unsafe.strip())
    if not match:
        return True  # unreadable: err on the side of silence
    start = _parse_time(match[1], match[2])
    end = _parse_time(match[3], match[4])
    local = now.astimezone(zone).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end

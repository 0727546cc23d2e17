"""US ZIP code centroids and time zones, from the `zipcodes` package's bundled data (no
network, ever), and distances in miles.

Memory: `zipcodes` materialises its whole table (42,000 dicts of every field) and keeps it,
with its extension's own parsed copy, for the life of the process: about 140 MB of a
server's RSS for three numbers per ZIP. So the table is read in a short-lived child
process, which hands back only the ZIP, latitude, longitude and time zone of each, packed
in arrays (under 1 MB here); the server never loads `zipcodes` itself. Should the child
fail (a platform that cannot start one), the same table is built in process.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import subprocess
import sys
from array import array
from dataclasses import dataclass
from functools import cache
from typing import Any

EARTH_MILES = 3958.8
MILES_PER_DEGREE = 69.0  # of latitude, everywhere (and of longitude at the equator)
_ZIP = re.compile(r"(?<!\d)(\d{5})(?:-\d{4})?(?!\d)")
CHILD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Place:
    zip_code: str
    latitude: float
    longitude: float
    timezone: str  # IANA name, "" when the data has none


@dataclass(frozen=True)
class _Table:
    """Every placed ZIP, ascending: ZIP as an int, centroid, index into `zones`."""

    codes: array[int]  # "l"
    latitudes: array[float]  # "d"
    longitudes: array[float]  # "d"
    zone_of: array[int]  # "H"
    zones: list[str]

    def place(self, zip_code: str) -> Place | None:
        code = int(zip_code)
        i = bisect.bisect_left(self.codes, code)
        if i == len(self.codes) or self.codes[i] != code:
            return None
        return Place(zip_code, self.latitudes[i], self.longitudes[i], self.zones[self.zone_of[i]])


def pack() -> bytes:
    """The table as bytes (what the child writes): a JSON header line (the count and the
    time zone names), then the four arrays' machine bytes. Imports `zipcodes`."""
    import zipcodes

    rows = []
    for z in zipcodes.list_all():
        try:
            lat, lon = float(z["lat"]), float(z["long"])
        except (KeyError, TypeError, ValueError):
            continue
        rows.append((int(z["zip_code"]), lat, lon, z.get("timezone") or ""))
    rows.sort()
    zones = sorted({r[3] for r in rows})
    index = {name: i for i, name in enumerate(zones)}
    head = json.dumps({"count": len(rows), "zones": zones}).encode() + b"\n"
    return head + b"".join(
        (
            array("l", [r[0] for r in rows]).tobytes(),
            array("d", [r[1] for r in rows]).tobytes(),
            array("d", [r[2] for r in rows]).tobytes(),
            array("H", [index[r[3]] for r in rows]).tobytes(),
        )
    )


def unpack(data: bytes) -> _Table:
    head, _, body = data.partition(b"\n")
    meta = json.loads(head)
    n, at = int(meta["count"]), 0

    def take(part: array[Any]) -> array[Any]:
        nonlocal at
        size = n * part.itemsize
        part.frombytes(body[at : at + size])  # a short slice: ValueError or a short array
        at += size
        if len(part) != n:
            raise ValueError("the ZIP table is cut short")
        return part

    table = _Table(take(array("l")), take(array("d")), take(array("d")), take(array("H")), [])
    if at != len(body):
        raise ValueError("the ZIP table has bytes after its arrays")
    table.zones.extend(meta["zones"])
    return table


def _from_child() -> bytes:
    script = "import sys; from bot.resources.geo import pack; sys.stdout.buffer.write(pack())"
    # The child finds `bot` where this process did, however it was started.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        timeout=CHILD_TIMEOUT_S,
        env=env,
    )
    return done.stdout


@cache
def _table() -> _Table:
    try:
        return unpack(_from_child())
    except (OSError, subprocess.SubprocessError, ValueError):
        return unpack(pack())  # no child here: the same table, at the memory cost above


def warm() -> None:
    """Load the ZIP table now (about 2 s, blocking): call at start-up, not mid-webhook."""
    _table()


def zip_in(text: str) -> str | None:
    """The first five-digit ZIP in `text` ("60601", "60601-1234", "Chicago 60601")."""
    m = _ZIP.search(text or "")
    return m[1] if m else None


def place(text: str) -> Place | None:
    """The centroid of the ZIP in `text`, or None when there is none or it is unknown."""
    zip_code = zip_in(text)
    return None if zip_code is None else _table().place(zip_code)


def miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_MILES * math.asin(min(1.0, math.sqrt(a)))


def box(lat: float, lon: float, radius: float) -> tuple[float, float, float, float]:
    """(south, north, west, east) of a box holding every point within `radius` miles
    (a little larger: a cheap filter before the exact distance)."""
    dlat = radius / MILES_PER_DEGREE
    cos = max(math.cos(math.radians(min(89.0, abs(lat) + dlat))), 0.01)
    dlon = min(180.0, radius / (MILES_PER_DEGREE * cos))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon

"""US ZIP code centroids and time zones, from the `zipcodes` package's bundled data (no
network, ever), and distances in miles."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache

import zipcodes

EARTH_MILES = 3958.8
MILES_PER_DEGREE = 69.0  # of latitude, everywhere (and of longitude at the equator)
_ZIP = re.compile(r"(?<!\d)(\d{5})(?:-\d{4})?(?!\d)")


@dataclass(frozen=True)
class Place:
    zip_code: str
    latitude: float
    longitude: float
    timezone: str  # IANA name, "" when the data has none


@cache
def _places() -> dict[str, Place]:
    # zipcodes loads its whole table on first use (a few seconds); index it once.
    places = {}
    for z in zipcodes.list_all():
        try:
            lat, lon = float(z["lat"]), float(z["long"])
        except (KeyError, TypeError, ValueError):
            continue
        places[z["zip_code"]] = Place(z["zip_code"], lat, lon, z.get("timezone") or "")
    return places


def warm() -> None:
    """Load the ZIP table now (about 3 s, blocking): call at start-up, not mid-webhook."""
    _places()


def zip_in(text: str) -> str | None:
    """The first five-digit ZIP in `text` ("60601", "60601-1234", "Chicago 60601")."""
    m = _ZIP.search(text or "")
    return m[1] if m else None


def place(text: str) -> Place | None:
    """The centroid of the ZIP in `text`, or None when there is none or it is unknown."""
    zip_code = zip_in(text)
    return None if zip_code is None else _places().get(zip_code)


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

"""Searching the local resource directory: services nearest a ZIP, by need, with whether
they are open now and open 24 hours; and the one short line an SMS carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.resources import geo
from bot.resources.needs import NEEDS
from bot.resources.schedule import Schedule, zone
from bot.store.base import ResourceSite, Tx
from flows import copy
from flows.sms_segments import GSM7_SINGLE, count

# Search rings, in miles: widen until enough services are found (the last is everywhere).
_RINGS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 3000.0, 13000.0)


class UnknownZip(ValueError):
    """No ZIP code in the text, or one the bundled ZIP data does not know."""


@dataclass(frozen=True)
class Resource:
    """One directory service, as a texter or an advocate is shown it."""

    service_id: str
    name: str
    organization: str
    phone: str
    address: str
    miles: float  # from the ZIP's centroid, to 0.1 mile
    needs: list[str]
    open_24h: bool
    open_now: bool | None  # None: the directory gives no hours

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "organization": self.organization,
            "phone": self.phone,
            "address": self.address,
            "miles": self.miles,
            "needs": self.needs,
            "open_24h": self.open_24h,
            "open_now": self.open_now,
            "service_id": self.service_id,
        }


def _resource(site: ResourceSite, distance: float, now: datetime) -> Resource:
    schedule = Schedule.from_json(site.schedule)
    site_zone = zone(site.timezone)
    return Resource(
        service_id=site.service_id,
        name=site.name,
        organization=site.organization,
        phone=site.phone,
        address=site.address,
        miles=round(distance, 1),
        needs=list(site.needs),
        open_24h=schedule.open_24h(now, site_zone),
        open_now=schedule.open_now(now, site_zone),
    )


async def _nearest(
    tx: Tx, origin: geo.Place, need: str | None, enough: int, within: float | None
) -> list[tuple[float, ResourceSite]]:
    """Sites by distance, each service once (at its nearest place), widening the search
    ring until `enough` services are in it or `within` miles is reached."""
    rings = [r for r in _RINGS if within is None or r < within] + ([within] if within else [])
    best: dict[str, tuple[float, ResourceSite]] = {}
    for radius in rings:
        best = {}
        south, north, west, east = geo.box(origin.latitude, origin.longitude, radius)
        for site in await tx.resource_sites_in_box(south, north, west, east, need):
            assert site.latitude is not None and site.longitude is not None
            d = geo.miles(origin.latitude, origin.longitude, site.latitude, site.longitude)
            if d <= radius and (site.service_id not in best or d < best[site.service_id][0]):
                best[site.service_id] = (d, site)
        if len(best) >= enough:
            break
    return sorted(best.values(), key=lambda pair: (pair[0], pair[1].name, pair[1].id))


def _origin(zip_code: str) -> geo.Place:
    origin = geo.place(zip_code)
    if origin is None:
        raise UnknownZip(f"no known US ZIP code in {zip_code!r}")
    return origin


async def near(
    tx: Tx, zip_code: str, *, need: str | None = None, limit: int = 10, now: datetime
) -> list[Resource]:
    """Up to `limit` services nearest the ZIP's centroid (optionally only those meeting
    `need`, one of NEEDS), nearest first. Raises UnknownZip, or ValueError for a bad need."""
    if need is not None and need not in NEEDS:
        raise ValueError(f"need must be one of {', '.join(NEEDS)}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    found = await _nearest(tx, _origin(zip_code), need, limit, None)
    return [_resource(site, d, now) for d, site in found[:limit]]


async def nearest_open_24h(
    tx: Tx, zip_code: str, *, within_miles: float = 50, now: datetime
) -> Resource | None:
    """The nearest service open 24 hours within `within_miles` of the ZIP, or None (also
    None when the text holds no known ZIP: the caller has nothing to add then)."""
    try:
        origin = _origin(zip_code)
    except UnknownZip:
        return None
    for d, site in await _nearest(tx, origin, None, 10**9, within_miles):
        resource = _resource(site, d, now)
        if resource.open_24h:
            return resource
    return None


def as_text(resource: Resource, language: str) -> str:
    """One short SMS line: name, phone and, when so, "open 24 hours" in the texter's
    language. A name too long for 160 characters is cut (with "...") so the line fits."""
    tail = f": {resource.phone}" if resource.phone else ""
    if resource.open_24h:
        tail += f" ({copy.render('fragment_open_24h', language, {})})"
    text = resource.name + tail
    name = resource.name
    while count(text).units > GSM7_SINGLE and len(name) > 1:
        name = name[:-1].rstrip()
        text = f"{name}...{tail}"
    return text

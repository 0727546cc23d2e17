"""Read an Open Referral HSDS 3.0 tabular data package (a folder of CSV files) into the
directory's flat rows, checking it whole first: a malformed package raises PackageError
naming the file, the row (counting the header as row 1, as a spreadsheet does) and the
column, and nothing is imported.

Files, by their HSDS 3.0 names (older names accepted where given):
- required: organizations.csv, services.csv, locations.csv, service_at_locations.csv
  (HSDS 2: services_at_location.csv);
- optional: phones.csv, addresses.csv (HSDS 2: physical_addresses.csv), schedules.csv,
  attributes.csv with taxonomy_terms.csv;
- datapackage.json, when present, may point a table at another file (`resources[].name`
  and `path`, inside the folder).
Only services whose `status` is active (or blank) are listed; one directory row is made per
service_at_location. A site is placed by its location's latitude/longitude, else by its
address's ZIP centroid; a site with neither is kept but never found by distance.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.resources import geo
from bot.resources.needs import needs_in, parse_needs
from bot.resources.schedule import ALL_DAY_WORDS, Rule, Schedule, ScheduleError, parse_row
from bot.store.base import ResourceSite


class PackageError(ValueError):
    """What is wrong with a package, and where."""

    def __init__(
        self, file: str, message: str, row: int | None = None, column: str | None = None
    ) -> None:
        where = file + (f" row {row}" if row is not None else "")
        where += f", column {column}" if column else ""
        super().__init__(f"{where}: {message}")
        self.file, self.row, self.column = file, row, column


@dataclass(frozen=True)
class Table:
    files: tuple[str, ...]  # the HSDS 3.0 name first, then older names
    columns: tuple[str, ...]  # must be in the header
    required: bool = False


TABLES = {
    "organizations": Table(("organizations.csv",), ("id", "name"), True),
    "services": Table(("services.csv",), ("id", "name"), True),
    "locations": Table(("locations.csv",), ("id",), True),
    "service_at_locations": Table(
        ("service_at_locations.csv", "services_at_location.csv"),
        ("id", "service_id", "location_id"),
        True,
    ),
    "phones": Table(("phones.csv",), ("id", "number")),
    "addresses": Table(("addresses.csv", "physical_addresses.csv"), ("id", "location_id")),
    "schedules": Table(("schedules.csv",), ("id",)),
    "attributes": Table(("attributes.csv",), ("id", "link_id")),
    "taxonomy_terms": Table(("taxonomy_terms.csv",), ("id", "name")),
}
ACTIVE = ("", "active")


@dataclass
class Rows:
    """One table's rows as (row number, cells), every cell a stripped string."""

    file: str
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def error(self, message: str, row: int | None = None, column: str | None = None) -> None:
        raise PackageError(self.file, message, row, column)

    def by_id(self) -> dict[str, tuple[int, dict[str, str]]]:
        return {cells["id"]: (n, cells) for n, cells in self.rows}


@dataclass
class Package:
    sites: list[ResourceSite]
    organizations: int
    services: int

    @property
    def placed(self) -> int:
        return sum(1 for s in self.sites if s.latitude is not None)


def _table_paths(folder: Path) -> dict[str, Path]:
    """Where each table is: datapackage.json's word first, then the standard names."""
    paths: dict[str, Path] = {}
    manifest = folder / "datapackage.json"
    if manifest.exists():
        try:
            resources = json.loads(manifest.read_text(encoding="utf-8-sig")).get("resources", [])
        except (ValueError, AttributeError) as exc:
            raise PackageError("datapackage.json", f"not a JSON data package ({exc})") from None
        for entry in resources if isinstance(resources, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                continue
            name = str(entry.get("name", ""))
            key = name if name in TABLES else f"{name}s"
            if key not in TABLES:
                continue  # a table Haven does not read
            path = (folder / entry["path"]).resolve()
            if not path.is_relative_to(folder.resolve()):
                raise PackageError("datapackage.json", f"{name}: {entry['path']} is outside")
            paths[key] = path
    for key, table in TABLES.items():
        if key not in paths:
            for file in table.files:
                if (folder / file).exists():
                    paths[key] = folder / file
                    break
    return paths


def _read(path: Path, table: Table) -> Rows:
    out = Rows(path.name)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            for column in table.columns:
                if column not in header:
                    out.error("the header has no such column", 1, column)
            seen: set[str] = set()
            for number, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue  # a blank line
                if len(values) != len(header):
                    out.error(f"{len(values)} fields where the header has {len(header)}", number)
                cells = {h: v.strip() for h, v in zip(header, values, strict=True)}
                if not cells["id"]:
                    out.error("the id is empty", number, "id")
                if cells["id"] in seen:
                    out.error(f"id {cells['id']!r} appears twice", number, "id")
                seen.add(cells["id"])
                out.rows.append((number, cells))
    except UnicodeDecodeError as exc:
        out.error(f"not UTF-8 text ({exc.reason})")
    except csv.Error as exc:
        out.error(f"not a readable CSV file ({exc})")
    return out


def _check_refs(
    rows: Rows, refs: Mapping[str, Iterable[str]], required: Sequence[str] = ()
) -> None:
    """Each reference column, when filled (or always, if required), names a known id."""
    known = {column: set(ids) for column, ids in refs.items()}
    for number, cells in rows.rows:
        for column, ids in known.items():
            value = cells.get(column, "")
            if not value and column not in required:
                continue
            if value not in ids:
                target = column.removesuffix("_id")
                rows.error(f"no {target} {value!r} in the package", number, column)


def _float(rows: Rows, number: int, cells: dict[str, str], column: str, limit: float) -> float:
    try:
        value = float(cells[column])
    except ValueError:
        rows.error(f"{cells[column]!r} is not a number", number, column)
    if not -limit <= value <= limit:
        rows.error(f"{value} is out of range", number, column)
    return value


def _address(cells: dict[str, str]) -> str:
    street = ", ".join(p for p in (cells.get("address_1", ""), cells.get("address_2", "")) if p)
    region = " ".join(
        p for p in (cells.get("state_province", ""), cells.get("postal_code", "")) if p
    )
    return ", ".join(p for p in (street, cells.get("city", ""), region) if p)


def read_package(folder: Path, default_timezone: str = "UTC") -> Package:
    """Read and check a whole package; PackageError on the first problem found."""
    if not folder.is_dir():
        raise PackageError(str(folder), "not a folder")
    paths = _table_paths(folder)
    tables: dict[str, Rows] = {}
    for key, table in TABLES.items():
        if key in paths and paths[key].exists():
            tables[key] = _read(paths[key], table)
        elif table.required:
            raise PackageError(table.files[0], "the file is missing from the package")
        else:
            tables[key] = Rows(table.files[0])
    orgs, services, locations = tables["organizations"], tables["services"], tables["locations"]
    sals, phones, addresses = (
        tables["service_at_locations"],
        tables["phones"],
        tables["addresses"],
    )
    schedules, attributes, terms = (
        tables["schedules"],
        tables["attributes"],
        tables["taxonomy_terms"],
    )
    org_ids, service_ids, location_ids = (
        orgs.by_id().keys(),
        services.by_id().keys(),
        locations.by_id().keys(),
    )
    sal_ids = sals.by_id().keys()
    _check_refs(services, {"organization_id": org_ids})
    _check_refs(
        sals,
        {"service_id": service_ids, "location_id": location_ids},
        ("service_id", "location_id"),
    )
    _check_refs(locations, {"organization_id": org_ids})
    _check_refs(addresses, {"location_id": location_ids})
    everything = {
        "service_id": service_ids,
        "location_id": location_ids,
        "organization_id": org_ids,
        "service_at_location_id": sal_ids,
    }
    _check_refs(phones, everything)
    _check_refs(schedules, {k: v for k, v in everything.items() if k != "organization_id"})
    if terms.rows:
        _check_refs(attributes, {"taxonomy_term_id": terms.by_id().keys()})

    # -- needs and "24 hours" from each service's own words and its taxonomy ------------
    term_text = {
        cells["id"]: [cells.get(c, "") for c in ("name", "code", "description")]
        for _n, cells in terms.rows
    }
    service_terms: dict[str, list[str]] = defaultdict(list)
    for _n, cells in attributes.rows:
        if cells.get("link_entity", "service") not in ("", "service"):
            continue
        service_terms[cells["link_id"]] += term_text.get(cells.get("taxonomy_term_id", ""), [])
        service_terms[cells["link_id"]] += [cells.get("value", ""), cells.get("label", "")]
    needs: dict[str, list[str]] = {}
    for number, cells in services.rows:
        try:
            explicit = parse_needs(cells.get("needs", ""))
        except ValueError as exc:
            services.error(str(exc), number, "needs")
        own_words = [cells["name"], cells.get("alternate_name", ""), cells.get("description", "")]
        needs[cells["id"]] = explicit or needs_in(service_terms[cells["id"]]) or needs_in(own_words)

    # -- places ---------------------------------------------------------------------------
    coords: dict[str, tuple[float, float]] = {}
    for number, cells in locations.rows:
        lat, lon = cells.get("latitude", ""), cells.get("longitude", "")
        if bool(lat) != bool(lon):
            column = "longitude" if lat else "latitude"
            locations.error("latitude and longitude go together", number, column)
        if lat:
            coords[cells["id"]] = (
                _float(locations, number, cells, "latitude", 90),
                _float(locations, number, cells, "longitude", 180),
            )
    address_of: dict[str, dict[str, str]] = {}
    rank = {"physical": 0, "": 1, "postal": 2}
    for _n, cells in sorted(
        addresses.rows, key=lambda r: rank.get(r[1].get("address_type", ""), 3)
    ):
        if cells.get("address_type", "") != "virtual":
            address_of.setdefault(cells["location_id"], cells)

    # -- opening hours --------------------------------------------------------------------
    by_sal: dict[str, list[Rule]] = defaultdict(list)
    by_service: dict[tuple[str, str], list[Rule]] = defaultdict(list)  # (service, location|"")
    by_location: dict[str, list[Rule]] = defaultdict(list)
    for number, cells in schedules.rows:
        try:
            rule = parse_row(cells)
        except ScheduleError as exc:
            schedules.error(str(exc), number, exc.column)
        if rule is None:
            continue
        sal_id, service_id, location = (
            cells.get("service_at_location_id", ""),
            cells.get("service_id", ""),
            cells.get("location_id", ""),
        )
        if sal_id:
            by_sal[sal_id].append(rule)
        elif service_id:
            by_service[(service_id, location)].append(rule)
        elif location:
            by_location[location].append(rule)

    # -- one site per service at a location -------------------------------------------------
    org_name = {k: cells["name"] for k, (_n, cells) in orgs.by_id().items()}
    service_by_id = {k: v[1] for k, v in services.by_id().items()}
    phone_rows = [cells for _n, cells in phones.rows if cells.get("type", "").lower() != "fax"]
    sites: list[ResourceSite] = []
    for _n, sal in sals.rows:
        service = service_by_id[sal["service_id"]]
        if service.get("status", "").lower() not in ACTIVE:
            continue
        location_id = sal["location_id"]
        address = address_of.get(location_id, {})
        zip_code = geo.zip_in(address.get("postal_code", "")) or ""
        zip_place = geo.place(zip_code) if zip_code else None
        lat_lon = coords.get(location_id) or (
            (zip_place.latitude, zip_place.longitude) if zip_place else None
        )
        rules = (
            by_sal.get(sal["id"])
            or by_service.get((service["id"], location_id))
            or by_service.get((service["id"], ""))
            or by_location.get(location_id)
            or []
        )
        said_24h = any(ALL_DAY_WORDS.search(t) for t in service_terms[service["id"]] if t)
        sites.append(
            ResourceSite(
                id=sal["id"],
                service_id=service["id"],
                name=service["name"],
                organization=org_name.get(service.get("organization_id", ""), ""),
                phone=_phone(phone_rows, sal["id"], service, location_id),
                address=_address(address),
                postal_code=zip_code,
                latitude=lat_lon[0] if lat_lon else None,
                longitude=lat_lon[1] if lat_lon else None,
                needs=needs[service["id"]],
                timezone=(zip_place.timezone if zip_place else "") or default_timezone,
                schedule=Schedule(tuple(rules), said_24h).to_json(),
            )
        )
    active = sum(1 for s in service_by_id.values() if s.get("status", "").lower() in ACTIVE)
    return Package(sites, len(orgs.rows), active)


def _phone(
    rows: list[dict[str, str]], sal_id: str, service: dict[str, str], location_id: str
) -> str:
    """The most specific number: this service here, the service, the place, the provider
    (a place's or provider's number only when it is not another service's)."""
    keys = (
        ("service_at_location_id", sal_id, ()),
        ("service_id", service["id"], ("service_at_location_id",)),
        ("location_id", location_id, ("service_id", "service_at_location_id")),
        (
            "organization_id",
            service.get("organization_id", ""),
            ("service_id", "service_at_location_id", "location_id"),
        ),
    )
    for column, value, unset in keys:
        for cells in rows:
            if value and cells.get(column) == value and not any(cells.get(u) for u in unset):
                ext = cells.get("extension", "")
                return cells["number"] + (f" ext. {ext}" if ext else "")
    return ""

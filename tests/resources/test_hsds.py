"""Importing an Open Referral HSDS 3.0 package: the sample, malformed packages (named by
file, row and column, nothing imported), and re-import replacing the directory whole."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.resources.hsds import PackageError, read_package
from bot.resources.schedule import Schedule
from tests.helpers import SAMPLE
from tests.helpers import TEST_SECRET as SECRET


def edit(path: Path, row_id: str, **cells: str) -> None:
    """Change cells of the row with this id in a CSV file."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0].keys())
    for r in rows:
        if r["id"] == row_id:
            r.update(cells)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_the_sample_package_reads_whole() -> None:
    """Every active service at its location becomes a site: the inactive one is left out,
    the Evanston office is placed by its ZIP, needs come from words or taxonomy, and the
    most specific phone number wins (never the fax)."""
    package = read_package(SAMPLE, "America/Chicago")
    sites = {s.service_id: s for s in package.sites}
    assert (package.organizations, package.services, len(sites), package.placed) == (5, 8, 8, 8)
    assert "svc-old-program" not in sites
    rent = sites["svc-north-rent"]
    assert (rent.postal_code, rent.timezone, rent.needs) == (
        "60201",
        "America/Chicago",
        ["housing", "financial"],
    )
    assert rent.latitude is not None and abs(rent.latitude - 42.05) < 0.1
    assert rent.phone == "847-555-0106"  # the organization's voice line, not its fax
    assert rent.address == "900 Example Blvd, Evanston, IL 60201"  # physical, not the PO box
    assert sites["svc-north-clinic"].needs == ["health"]  # from its taxonomy term only
    assert sites["svc-casa-immigration"].needs == ["legal", "immigration"]  # Spanish words
    assert sites["svc-westside-beds"].phone == "773-555-0108"  # the location's number
    assert sites["svc-harbor-shelter"].needs == ["shelter"]
    assert len(Schedule.from_json(sites["svc-casa-immigration"].schedule).rules) == 2


BREAKAGES = [
    # (what to break, the file, row, column the error names)
    ("services.csv", "svc-loop-orders", {"organization_id": "org-nobody"}, 4, "organization_id"),
    ("service_at_locations.csv", "sal-casa-youth", {"location_id": "loc-x"}, 6, "location_id"),
    ("locations.csv", "loc-casa", {"latitude": "north"}, 4, "latitude"),
    ("locations.csv", "loc-casa", {"longitude": ""}, 4, "longitude"),
    ("locations.csv", "loc-loop", {"latitude": "95"}, 3, "latitude"),
    ("schedules.csv", "sch-3", {"opens_at": "9am"}, 4, "opens_at"),
    ("schedules.csv", "sch-4", {"byday": "TUES"}, 5, "byday"),
    ("phones.csv", "ph-3", {"service_id": "svc-gone"}, 4, "service_id"),
    ("addresses.csv", "addr-2", {"location_id": "loc-gone"}, 3, "location_id"),
    ("services.csv", "svc-casa-youth", {"id": "svc-loop-orders"}, 6, "id"),
    ("attributes.csv", "attr-1", {"taxonomy_term_id": "term-x"}, 2, "taxonomy_term_id"),
]


@pytest.mark.parametrize(("file", "row_id", "cells", "row", "column"), BREAKAGES)
def test_a_bad_row_is_named_by_file_row_and_column(
    package: Path, file: str, row_id: str, cells: dict[str, str], row: int, column: str
) -> None:
    """Each kind of bad cell stops the import with its file, row and column."""
    edit(package / file, row_id, **cells)
    with pytest.raises(PackageError) as caught:
        read_package(package)
    err = caught.value
    assert (err.file, err.row, err.column) == (file, row, column)
    assert f"{file} row {row}, column {column}:" in str(err)


def test_a_missing_file_is_named(package: Path) -> None:
    """Without services.csv there is no package, and the message says which file."""
    (package / "services.csv").unlink()
    (package / "datapackage.json").unlink()
    with pytest.raises(PackageError, match=r"^services\.csv: the file is missing"):
        read_package(package)


def test_a_missing_column_and_a_short_row_are_named(package: Path) -> None:
    """A header without a required column, and a row with too few fields, are refused."""
    text = (package / "organizations.csv").read_text()
    (package / "organizations.csv").write_text(text.replace("id,name,", "id,title,", 1))
    with pytest.raises(PackageError, match=r"^organizations\.csv row 1, column name:"):
        read_package(package)
    (package / "organizations.csv").write_text(text + "org-short,Short\n")
    with pytest.raises(PackageError, match=r"^organizations\.csv row 7: 2 fields"):
        read_package(package)


def test_older_file_names_and_a_datapackage_path_are_followed(package: Path) -> None:
    """HSDS 2 names (physical_addresses.csv) are read, and datapackage.json may point a
    table at another file; a malformed datapackage.json is an error naming it."""
    (package / "addresses.csv").rename(package / "physical_addresses.csv")
    manifest = json.loads((package / "datapackage.json").read_text())
    manifest["resources"] = [r for r in manifest["resources"] if r["name"] != "address"]
    (package / "datapackage.json").write_text(json.dumps(manifest))
    (package / "phones.csv").rename(package / "numbers.csv")
    for r in manifest["resources"]:
        if r["name"] == "phone":
            r["path"] = "numbers.csv"
    (package / "datapackage.json").write_text(json.dumps(manifest))
    sites = {s.service_id: s for s in read_package(package).sites}
    assert sites["svc-north-rent"].postal_code == "60201"
    assert sites["svc-loop-orders"].phone == "312-555-0103"
    (package / "datapackage.json").write_text("{not json")
    with pytest.raises(PackageError, match=r"^datapackage\.json:"):
        read_package(package)


def test_an_unknown_need_in_the_needs_column_is_named(package: Path) -> None:
    """The Haven `needs` column takes only our words; a typo is an error, a good value
    replaces keyword matching."""
    text = (package / "services.csv").read_text().splitlines()
    text[0] += ",needs"
    text[1:] = [line + "," for line in text[1:]]
    (package / "services.csv").write_text("\n".join(text) + "\n")
    edit(package / "services.csv", "svc-casa-youth", needs="youth; hotline")
    sites = {s.service_id: s for s in read_package(package).sites}
    assert sites["svc-casa-youth"].needs == ["youth", "hotline"]
    edit(package / "services.csv", "svc-casa-youth", needs="youth; shelters")
    with pytest.raises(PackageError, match=r"row 6, column needs: unknown need 'shelters'"):
        read_package(package)


def cli(args: list[str], db_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("HAVEN_SECRET_KEY", SECRET)
    return main(args)


def near_names(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    capsys.readouterr()
    assert cli(["resources", "near", "60601", "--json", "--limit", "50"], db_url, monkeypatch) == 0
    return [r["name"] for r in json.loads(capsys.readouterr().out)]


def test_a_malformed_reimport_changes_nothing_and_a_good_one_replaces(
    package: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI: the sample imports; a broken package exits 2 with the file and row
    and leaves the old directory as it was; a good smaller package replaces it whole."""
    assert cli(["resources", "import", str(SAMPLE)], db_url, monkeypatch) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"organizations": 5, "services": 8, "sites": 8, "placed": 8}
    before = near_names(db_url, monkeypatch, capsys)
    assert len(before) == 8

    edit(package / "service_at_locations.csv", "sal-north-clinic", service_id="svc-nope")
    assert cli(["resources", "import", str(package)], db_url, monkeypatch) == 2
    assert "service_at_locations.csv row 8, column service_id" in capsys.readouterr().err
    assert near_names(db_url, monkeypatch, capsys) == before

    edit(package / "service_at_locations.csv", "sal-north-clinic", service_id="svc-north-clinic")
    edit(package / "services.csv", "svc-loop-orders", status="defunct")
    edit(package / "services.csv", "svc-harbor-line", name="Harbor Line (renamed)")
    assert cli(["resources", "import", str(package)], db_url, monkeypatch) == 0
    after = near_names(db_url, monkeypatch, capsys)
    assert "Protective Order Help Desk" not in after and "Safe Harbor Crisis Line" not in after
    assert "Harbor Line (renamed)" in after and len(after) == 7

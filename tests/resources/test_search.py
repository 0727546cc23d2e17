"""Searching the directory: nearest first, by need, with a limit; the nearest service
open 24 hours; the SMS line; and the CLI's JSON through a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.resources import NEEDS, Resource, UnknownZip, as_text, near, nearest_open_24h
from bot.resources.hsds import read_package
from bot.resources.needs import needs_in
from bot.store import Store
from flows.sms_segments import count
from tests.helpers import ROOT, SAMPLE
from tests.helpers import TEST_SECRET as SECRET

# Monday 2025-03-03, 10:00 in Chicago: offices open, the overnight shelter closed.
MONDAY_10AM = datetime(2025, 3, 3, 10, 0, tzinfo=ZoneInfo("America/Chicago"))


@pytest.fixture
async def directory(store: Store) -> Store:
    async with store.transaction() as tx:
        await tx.replace_resources(read_package(SAMPLE).sites, MONDAY_10AM)
    return store


async def test_nearest_first_with_miles_hours_and_needs(directory: Store) -> None:
    """From 60601 (the Loop) the Loop office is first, Evanston last; distances rise; each
    service once; open now and open 24 hours read from its schedule at the given time."""
    async with directory.transaction() as tx:
        found = await near(tx, "60601", now=MONDAY_10AM)
    assert [r.miles for r in found] == sorted(r.miles for r in found)
    assert found[0].name == "Protective Order Help Desk" and found[0].miles < 1
    assert found[-1].miles > 10 and "Evanston" in found[-1].address
    assert len({r.service_id for r in found}) == len(found) == 8
    by_name = {r.name: r for r in found}
    shelter = by_name["Safe Harbor Emergency Shelter"]
    assert (shelter.open_24h, shelter.open_now, shelter.phone) == (True, True, "312-555-0101")
    assert by_name["Protective Order Help Desk"].open_now is True
    assert by_name["Westside Overnight Beds"].open_now is False
    assert by_name["Westside Overnight Beds"].open_24h is False
    assert by_name["North Shore Family Clinic"].open_now is None


async def test_need_filter_and_limit(directory: Store) -> None:
    """--need keeps only services tagged with it; --limit keeps the nearest N."""
    async with directory.transaction() as tx:
        shelters = await near(tx, "60601", need="shelter", now=MONDAY_10AM)
        two = await near(tx, "60623", limit=2, now=MONDAY_10AM)
        everything = await near(tx, "60623", limit=50, now=MONDAY_10AM)
    assert [r.name for r in shelters] == [
        "Safe Harbor Emergency Shelter",
        "Westside Overnight Beds",
    ]
    assert all("shelter" in r.needs for r in shelters)
    assert two == everything[:2]
    # The overnight beds are nearest; the two Casa Puerta services share one place, so the
    # tie goes by name and only the first makes the limit.
    assert [r.name for r in two] == ["Westside Overnight Beds", "Casa Puerta Immigration Help"]
    assert everything[2].name == "Casa Puerta Youth Drop-In"


async def test_far_away_zip_still_finds_the_nearest(directory: Store) -> None:
    """The search ring widens: from Los Angeles the Chicago services are found, ~1700 mi."""
    async with directory.transaction() as tx:
        found = await near(tx, "90012", limit=1, now=MONDAY_10AM)
    assert len(found) == 1 and 1600 < found[0].miles < 1900


async def test_bad_zip_or_need_is_refused(directory: Store) -> None:
    """An unknown ZIP or need is an error for near(); nearest_open_24h just finds none."""
    async with directory.transaction() as tx:
        with pytest.raises(UnknownZip):
            await near(tx, "00000", now=MONDAY_10AM)
        with pytest.raises(ValueError, match="need must be one of"):
            await near(tx, "60601", need="food", now=MONDAY_10AM)
        assert await nearest_open_24h(tx, "Chicago", now=MONDAY_10AM) is None


async def test_nearest_open_24h_within_the_radius(directory: Store) -> None:
    """From 60623 the nearest 24-hour service is the Safe Harbor pair (~6 mi), not the
    nearer overnight beds; beyond 50 miles (Milwaukee, ~80 mi) there is none; a radius
    smaller than the distance finds none."""
    async with directory.transaction() as tx:
        found = await nearest_open_24h(tx, "60623", now=MONDAY_10AM)
        assert found is not None and found.open_24h
        assert found.name in {"Safe Harbor Emergency Shelter", "Safe Harbor Crisis Line"}
        assert 4 < found.miles < 8
        assert await nearest_open_24h(tx, "53202", now=MONDAY_10AM) is None
        assert await nearest_open_24h(tx, "60623", within_miles=3, now=MONDAY_10AM) is None


def resource(name: str, phone: str = "312-555-0101", open_24h: bool = True) -> Resource:
    return Resource("svc", name, "Org", phone, "", 1.0, ["shelter"], open_24h, True)


def test_as_text_is_one_short_line_in_either_language() -> None:
    """The line carries name, phone and the 24-hour note in the texter's language."""
    r = resource("Safe Harbor Emergency Shelter")
    assert as_text(r, "en") == "Safe Harbor Emergency Shelter: 312-555-0101 (open 24 hours)"
    assert as_text(r, "es") == "Safe Harbor Emergency Shelter: 312-555-0101 (abierto 24 horas)"
    assert (
        as_text(replace(r, open_24h=False), "en") == "Safe Harbor Emergency Shelter: 312-555-0101"
    )


@pytest.mark.parametrize("language", ["en", "es"])
def test_as_text_fits_one_gsm7_segment_even_with_a_long_name(language: str) -> None:
    """A 300-character name is cut so the line is one GSM-7 segment, phone kept whole."""
    text = as_text(resource("Community Services " * 16), language)
    c = count(text)
    assert (c.encoding, c.segments) == ("GSM-7", 1) and c.units <= 160
    assert text.endswith("312-555-0101 (open 24 hours)" if language == "en" else "horas)")
    assert "..." in text


NEED_WORDS = [
    ("Emergency shelter for families", ["shelter"]),
    ("Refugio de emergencia", ["shelter"]),
    ("Asesoría legal y órdenes de protección", ["legal"]),
    ("Help with eviction and rental deposits", ["housing"]),
    ("Emergency cash assistance", ["financial"]),
    ("Mental health counseling", ["health"]),
    ("U visa and asylum help", ["immigration"]),
    ("Drop-in for teens", ["youth"]),
    ("24-hour crisis hotline", ["hotline"]),
    ("Courtesy van to the market", []),  # "court" is a word, not a prefix
    ("Food pantry", []),
]


@pytest.mark.parametrize(("text", "expected"), NEED_WORDS)
def test_keywords_map_words_to_needs(text: str, expected: list[str]) -> None:
    """Keyword matching, English and Spanish, accents optional, whole words."""
    assert needs_in([text]) == expected
    assert set(expected) <= set(NEEDS)


def test_cli_near_json_through_a_real_subprocess(tmp_path: Path) -> None:
    """`python -m bot resources import` then `near 60601 --need shelter --json` in an empty
    folder: one JSON list, nearest first, each item with the documented keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "TWILIO_"))}
    env.pop("DATABASE_URL", None)
    env.update({"PYTHONPATH": str(ROOT), "HAVEN_SECRET_KEY": SECRET})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "resources", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    imported = run("import", str(SAMPLE))
    assert imported.returncode == 0, imported.stderr
    result = run("near", "60601", "--need", "shelter", "--json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [i["name"] for i in items] == [
        "Safe Harbor Emergency Shelter",
        "Westside Overnight Beds",
    ]
    keys = {"name", "phone", "miles", "needs", "open_24h", "open_now", "organization", "address"}
    assert all(keys <= set(i) for i in items)
    assert items[0]["open_24h"] is True and items[0]["open_now"] is True
    assert items[0]["miles"] < items[1]["miles"]
    text = run("near", "60601", "--limit", "1")
    assert text.returncode == 0 and "Protective Order Help Desk" in text.stdout
    assert "mi" in text.stdout and "312-555-0103" in text.stdout

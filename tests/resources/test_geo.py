"""bot.resources.geo: the compact ZIP table read through a child process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import zipcodes

from bot.resources import geo


def test_every_zip_places_as_the_zipcodes_data_says() -> None:
    """Each ZIP in the `zipcodes` data is found with its own centroid and time zone (the
    packed table loses nothing: same floats, same names), and a ZIP the data has no
    centroid for, or does not have at all, is unknown."""
    checked = 0
    for z in zipcodes.list_all():
        try:
            lat, lon = float(z["lat"]), float(z["long"])
        except (KeyError, TypeError, ValueError):
            assert geo.place(z["zip_code"]) is None
            continue
        expected = geo.Place(z["zip_code"], lat, lon, z.get("timezone") or "")
        assert geo.place(f"near {z['zip_code']} please") == expected
        checked += 1
    assert checked > 40_000
    assert geo.place("00000") is None
    assert geo.place("no zip here") is None


def test_the_server_process_never_holds_zipcodes_own_table() -> None:
    """After warm() the process has the table but has not imported `zipcodes` (whose
    materialised table is what cost ~140 MB of RSS): the child read it."""
    script = (
        "import sys; from bot.resources import geo; geo.warm();"
        " assert geo.place('60601').timezone == 'America/Chicago';"
        " assert 'zipcodes' not in sys.modules, 'zipcodes was imported'"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_table_cut_short_is_refused() -> None:
    """A child that died mid-write leaves a short table: refused (then built in process),
    never read as a table with ZIPs shifted onto other ZIPs' centroids."""
    data = geo.pack()
    assert geo.unpack(data).place("60601") == geo.place("60601")
    with pytest.raises(ValueError):
        geo.unpack(data[:-3])

"""`python -m bot resources import PATH` and `python -m bot resources near ZIP`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.hours import parse_hours
from bot.resources.hsds import read_package
from bot.resources.needs import NEEDS
from bot.resources.search import Resource, near
from bot.settings import Settings
from bot.store.base import Store

OpenStore = Callable[[Settings], AbstractAsyncContextManager[Store]]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    resources = sub.add_parser("resources", help="the local resource directory (Open Referral)")
    actions = resources.add_subparsers(dest="resources_command", required=True)
    load = actions.add_parser("import", help="replace the directory with an HSDS data package")
    load.add_argument("path", type=Path, help="a folder of HSDS 3.0 CSV files")
    load.add_argument(
        "--timezone",
        help="IANA zone for hours of places with no ZIP (default: HAVEN_HOURS's zone)",
    )
    find = actions.add_parser("near", help="services nearest a ZIP code")
    find.add_argument("zip_code", metavar="ZIP")
    find.add_argument("--need", choices=NEEDS)
    find.add_argument("--limit", type=int, default=10)
    find.add_argument("--json", action="store_true", help="one JSON list")


def _describe(r: Resource) -> str:
    hours = (
        "open 24 hours"
        if r.open_24h
        else {True: "open now", False: "closed now", None: "hours unknown"}[r.open_now]
    )
    who = f" ({r.organization})" if r.organization and r.organization != r.name else ""
    needs = f"  [{', '.join(r.needs)}]" if r.needs else ""
    return f"{r.miles:6.1f} mi  {r.name}{who}  {r.phone or 'no phone'}  {hours}{needs}"


async def run(
    args: argparse.Namespace, settings: Settings, opened_store: OpenStore, out: TextIO
) -> int:
    if args.resources_command == "import":
        zone = args.timezone or parse_hours(settings.hours).zone.key
        package = read_package(args.path, zone)  # checked whole before anything is written
        async with opened_store(settings) as store, store.transaction() as tx:
            await tx.replace_resources(package.sites, datetime.now(UTC))
        summary = {
            "organizations": package.organizations,
            "services": package.services,
            "sites": len(package.sites),
            "placed": package.placed,
        }
        print(json.dumps(summary), file=out)
        return 0
    async with opened_store(settings) as store, store.transaction() as tx:
        found = await near(
            tx, args.zip_code, need=args.need, limit=args.limit, now=datetime.now(UTC)
        )
        empty = not found and await tx.count_resource_sites() == 0
    if args.json:
        print(json.dumps([r.as_json() for r in found], ensure_ascii=False), file=out)
    elif empty:
        print("The directory is empty: run `python -m bot resources import PATH`.", file=out)
    elif not found:
        print("No services found.", file=out)
    for r in [] if args.json else found:
        print(_describe(r), file=out)
    return 0

"""`python -m bot programs add|list`: the programs that share this Haven (bot/programs.py)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TextIO

from bot import programs
from bot.settings import Settings
from bot.store.base import Conflict, Store

OpenStore = Callable[[Settings], AbstractAsyncContextManager[Store]]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("programs", help="programs sharing this Haven, each with its number")
    commands = parser.add_subparsers(dest="programs_command", required=True)
    add = commands.add_parser("add", help="add a program")
    add.add_argument("slug", help="short id, e.g. harbor or freedom-network")
    add.add_argument("--name", required=True, help="the name its texters see")
    add.add_argument("--number", required=True, help="its texting number, E.164")
    add.add_argument("--hours", help="opening hours, as HAVEN_HOURS (default: HAVEN_HOURS)")
    add.add_argument(
        "--lines", help="national lines, comma-separated (default: HAVEN_NATIONAL_LINES)"
    )
    add.add_argument("--name-services", action="store_true", help="its texts may name the services")
    listing = commands.add_parser("list", help="list programs")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")


def _lines(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [x.strip() for x in raw.split(",") if x.strip()]


async def run(
    args: argparse.Namespace, settings: Settings, opened_store: OpenStore, out: TextIO
) -> int:
    async with opened_store(settings) as store:
        if args.programs_command == "add":
            try:
                program = await programs.add_program(
                    store,
                    args.slug,
                    args.name,
                    args.number,
                    datetime.now(UTC),
                    hours=args.hours,
                    lines=_lines(args.lines),
                    name_services=args.name_services,
                )
            except Conflict as exc:
                raise ValueError(str(exc)) from None
            print(json.dumps({"id": program.id, "slug": program.slug}), file=out)
            return 0
        async with store.transaction() as tx:
            book = await programs.book(tx, settings)
        rows = [programs.default_view(settings), *(book.of(p.id) for p in book.programs)]
        numbers = {p.id: p.number for p in book.programs}
        for view in rows:
            row = {
                "slug": view.slug,
                "name": view.name,
                "number": numbers.get(view.id, "") if view.id is not None else "",
                "hours": view.hours.text,
                "lines": list(view.lines),
                "name_services": view.name_services,
            }
            if args.json:
                print(json.dumps(row), file=out)
            else:
                print(
                    f"{row['slug']:<16} {row['number']:<14} {row['name']:<30} {row['hours']}",
                    file=out,
                )
        return 0

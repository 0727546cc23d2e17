"""python -m bot <command>: serve (default), migrate, chat, triage, users, purge, stats,
flow-diagram, resources, rekey."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TextIO

from bot import logs
from bot.crypto import Crypto
from bot.settings import Settings, SettingsError, ensure_secret_key
from bot.store import open_store
from bot.store.base import Store

log = logs.get_logger("haven.cli")


@asynccontextmanager
async def opened_store(settings: Settings, migrate: bool = True) -> AsyncIterator[Store]:
    store = open_store(settings, Crypto(settings.secret_key))
    await store.open()
    try:
        if migrate:
            await store.migrate()
        elif pending := await store.pending_migrations():
            raise SettingsError(f"migrations {pending} are pending: run `python -m bot migrate`")
        from bot.rekey import check_key

        await check_key(store, settings)  # a wrong key is refused here as at `serve`
        yield store
    finally:
        await store.close()


def _warm() -> None:
    from bot.resources import geo
    from bot.triage import warm

    warm()
    geo.warm()


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (a dependency: the webhook's loop does
    less work per request, see benchmarks/RESULTS.md), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def cmd_serve(settings: Settings) -> int:
    from aiohttp import web

    from bot.app import create_app

    settings, created = ensure_secret_key(settings)
    if created:
        log.warning("secret_key_created", file=str(settings.secret_file))
    from bot.app import preflight, startup_error_line

    def listening(_banner: str) -> None:
        """aiohttp calls this once every site listens: "serving" is never logged before a
        start-up that then fails (aiohttp's own banner is not printed)."""
        log.info(
            "serving",
            url=settings.public_url,
            database="sqlite" if settings.sqlite_path else "postgresql",
            twilio=settings.twilio_enabled,
            loop=type(loop).__module__.split(".")[0],
        )

    try:
        # Everything that can stop start-up is checked first, in seconds, before the slow
        # part (compiling the lexicon) and before listening.
        asyncio.run(preflight(settings))
        # Lexicon, model, patterns and ZIP centroids load lazily. They load beside the
        # server, which listens at once: a texter who writes in the first seconds is still
        # read in full (what is not loaded yet loads on first use), only a little slower.
        threading.Thread(target=_warm, name="warm-up", daemon=True).start()
        loop = event_loop()
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            access_log=None,
            print=listening,
            loop=loop,
        )
    except Exception as exc:
        # Rule for operators: one clear line and a non-zero exit, never a traceback/hang.
        print(f"error: {startup_error_line(exc, settings)}", file=sys.stderr)
        return 1
    return 0


async def cmd_migrate(settings: Settings) -> int:
    store = open_store(settings, Crypto(settings.secret_key))
    await store.open()
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    print(json.dumps({"applied": applied}))
    return 0


async def cmd_chat(settings: Settings, number: str, stdin: TextIO, stdout: TextIO) -> int:
    """Be the texter: each line you type is an inbound text to the real engine and store."""
    from bot.engine import Engine
    from bot.events import Events
    from bot.sms.webhook import InboundSms

    crypto = Crypto(settings.secret_key)
    async with opened_store(settings) as store:
        engine = Engine(settings, store, crypto.lookup_hash, Events())
        interactive = stdin.isatty()
        if interactive:
            print("You are the texter. Type a message; Ctrl-D to leave.", file=stdout)
        while True:
            if interactive:
                print("you> ", end="", file=stdout, flush=True)
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            sms = InboundSms(f"SMchat{uuid.uuid4().hex}", number, "+10000000000", line.rstrip("\n"))
            outcome = await engine.handle_inbound(sms)
            for text in outcome.texts:
                print(f"{settings.org_name}> {text}", file=stdout, flush=True)
            if not outcome.texts:
                print("(no reply)", file=stdout, flush=True)
    return 0


def read_password(from_stdin: bool, prompt: str) -> str | None:
    """One line of stdin, or asked twice at the terminal; None (said on stderr) when the two
    differ."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(prompt)
    if password != getpass.getpass("Again: "):
        print("error: the passwords differ", file=sys.stderr)
        return None
    return password


async def cmd_users_add(
    settings: Settings,
    name: str,
    role: str,
    teams: list[str],
    password_stdin: bool,
    program_slugs: Sequence[str] = (),
) -> int:
    from bot import programs
    from bot.dashboard.accounts import add_user_cli

    if program_slugs:  # unknown programs stop it before a password is asked for
        async with opened_store(settings) as store, store.transaction() as tx:
            await programs.program_ids_for(tx, program_slugs)

    password = read_password(password_stdin, "Password: ")
    if password is None:
        return 2
    async with opened_store(settings) as store:
        user = await add_user_cli(store, name, role, password, teams)
        if program_slugs:  # --program: the programs whose conversations they see
            async with store.transaction() as tx:
                await tx.set_user_programs(
                    user.id, await programs.program_ids_for(tx, program_slugs)
                )
    print(json.dumps({"id": user.id, "name": user.name, "role": user.role}))
    return 0


async def cmd_users_change(settings: Settings, args: argparse.Namespace) -> int:
    """users list | disable NAME | set-password NAME | set-role NAME ROLE | totp NAME [--off]."""
    from bot.dashboard import accounts

    password: str | None = ""
    if args.users_command == "set-password":
        password = read_password(args.password_stdin, "New password: ")
        if password is None:
            return 2
    async with opened_store(settings) as store:
        if args.users_command == "list":
            for row in await accounts.list_users_cli(store):
                print(json.dumps(row))
            return 0
        if args.users_command == "totp":
            uri = await accounts.set_totp_cli(store, args.name, enable=not args.off)
            # The secret is shown this once (as a URI for an authenticator app), never again.
            print(uri if uri else json.dumps({"name": args.name, "totp": False}))
            return 0
        if args.users_command == "disable":
            user = await accounts.disable_user_cli(store, args.name)
        elif args.users_command == "set-password":
            user = await accounts.set_password_cli(store, args.name, password or "")
        else:
            user = await accounts.set_role_cli(store, args.name, args.role)
    print(json.dumps({"name": user.name, "role": user.role, "active": user.active}))
    return 0


async def cmd_purge(settings: Settings) -> int:
    from bot.app import apply_retention
    from bot.engine import utcnow

    async with opened_store(settings) as store, store.transaction() as tx:
        removed, audit = await apply_retention(tx, settings, utcnow())
    print(json.dumps({"conversations_removed": removed, "audit_removed": audit}))
    return 0


def day_start(text: str) -> datetime:
    """A YYYY-MM-DD date as the start of that day in UTC (argparse's type for --since)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


async def cmd_stats(
    settings: Settings,
    program: str | None = None,
    as_csv: bool = False,
    since: datetime | None = None,
) -> int:
    if program is None and not as_csv and since is None:
        async with opened_store(settings) as store, store.transaction() as tx:
            print(json.dumps(await tx.stats(), sort_keys=True))
        return 0
    import csv

    from bot import reports

    async with opened_store(settings) as store:  # per program (bot.reports.figures)
        rows = await reports.figures(store, settings, program, since)
    if not as_csv:  # one program's figures, or (--since alone) every program's
        print(json.dumps(rows[0] if program else rows, sort_keys=True))
        return 0
    writer = csv.DictWriter(sys.stdout, fieldnames=reports.figure_columns())
    writer.writeheader()
    writer.writerows(rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Haven SMS helpline")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the web service (the default)")
    sub.add_parser("migrate", help="apply database migrations")
    chat = sub.add_parser("chat", help="be the texter in this terminal (no Twilio)")
    chat.add_argument("--from", dest="number", default="+15555550123", help="your pretend number")
    triage = sub.add_parser("triage", help="triage messages, one per line on stdin")
    triage.add_argument("--eval", metavar="FILE", help="score a labelled JSONL file")
    users = sub.add_parser("users", help="manage dashboard accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["advocate", "supervisor", "admin"])
    add.add_argument("--team", action="append", default=[], help="a team (repeatable)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--program", action="append", default=[], help="a program they work for (repeatable)"
    )
    users_sub.add_parser("list", help="every account as JSON lines (no password hashes)")
    disable = users_sub.add_parser("disable", help="stop an account signing in (ends sessions)")
    disable.add_argument("name")
    set_password = users_sub.add_parser("set-password", help="a new password (ends sessions)")
    set_password.add_argument("name")
    set_password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    set_role = users_sub.add_parser("set-role", help="change an account's role")
    set_role.add_argument("name")
    set_role.add_argument("role")
    totp = users_sub.add_parser(
        "totp", help="require an authenticator code at sign-in (prints its otpauth:// URI once)"
    )
    totp.add_argument("name")
    totp.add_argument("--off", action="store_true", help="remove the second factor")
    sub.add_parser("purge", help="apply retention now")
    stats = sub.add_parser("stats", help="counts for operators, as JSON")
    stats.add_argument("--program", help="one program's figures (a slug, or 'default')")
    stats.add_argument("--csv", action="store_true", help="figures per program, as CSV")
    stats.add_argument(
        "--since", type=day_start, help="only conversations started on or after this date"
    )
    sub.add_parser("flow-diagram", help="the intake flow as mermaid text")
    from bot.resources.cli import add_parser as add_resources_parser

    add_resources_parser(sub)
    rekey = sub.add_parser(
        "rekey", help="move stored data from HAVEN_PREVIOUS_SECRET_KEYS to HAVEN_SECRET_KEY"
    )
    rekey.add_argument("--batch", type=int, default=500, help="rows per transaction")
    from bot.programs_cli import add_parser as add_programs_parser

    add_programs_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    if command == "triage":  # no settings, no database: pure text in, JSON out
        from bot.triage.cli import run

        return run(["--eval", args.eval] if args.eval else [], sys.stdin, sys.stdout)
    if command == "flow-diagram":
        from flows.intake import INTAKE

        print(INTAKE.diagram())
        return 0
    try:
        settings = Settings.from_env()
        quiet = command in ("chat", "stats", "migrate", "purge", "users", "rekey", "programs")
        logs.configure(settings.log_format, "warning" if quiet else settings.log_level)
        if command == "serve":
            return cmd_serve(settings)
        settings, _created = ensure_secret_key(settings)
        if command == "migrate":
            return asyncio.run(cmd_migrate(settings))
        if command == "chat":
            return asyncio.run(cmd_chat(settings, args.number, sys.stdin, sys.stdout))
        if command == "users" and args.users_command != "add":
            return asyncio.run(cmd_users_change(settings, args))
        if command == "users":
            return asyncio.run(
                cmd_users_add(
                    settings, args.name, args.role, args.team, args.password_stdin, args.program
                )
            )
        if command == "purge":
            return asyncio.run(cmd_purge(settings))
        if command == "stats":
            return asyncio.run(cmd_stats(settings, args.program, args.csv, args.since))
        if command == "resources":
            from bot.resources.cli import run as run_resources

            return asyncio.run(run_resources(args, settings, opened_store, sys.stdout))
        if command == "rekey":
            from bot.rekey import rekey

            print(json.dumps(asyncio.run(rekey(settings, batch=max(1, args.batch)))))
            return 0
        if command == "programs":
            from bot.programs_cli import run as run_programs

            return asyncio.run(run_programs(args, settings, opened_store, sys.stdout))
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. bot.rekey.KeyRefused: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())

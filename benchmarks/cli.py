"""python -m benchmarks [--quick] [--json]: every figure beside its baseline, as a table.

Exit status 0 when every figure was measured and every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from benchmarks import backends, queue_bench, triage_bench, webhook_bench
from benchmarks.report import Figure, Report, render_table
from bot.settings import Settings

SettingsFactory = Callable[[], contextlib.AbstractAsyncContextManager[Settings]]


@dataclass(frozen=True)
class Counts:
    triage_rounds: int
    texters: int
    messages: int
    concurrency: int
    queued: int
    queue_repeats: int
    time_limit_s: float


DEFAULT = Counts(
    triage_rounds=20,
    texters=80,
    messages=len(webhook_bench.SCRIPT),
    concurrency=8,
    queued=200,
    queue_repeats=20,
    time_limit_s=15.0,
)
QUICK = Counts(
    triage_rounds=1,
    texters=3,
    messages=3,
    concurrency=2,
    queued=10,
    queue_repeats=3,
    time_limit_s=5.0,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Haven's benchmarks: each figure beside its baseline, with the ratio.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke run)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--only",
        choices=("triage", "webhook", "queue"),
        action="append",
        help="run only these figures (repeatable)",
    )
    parser.add_argument("--texters", type=int, help="webhook: texters (default 80)")
    parser.add_argument("--concurrency", type=int, help="webhook: texters at once (default 8)")
    parser.add_argument("--queued", type=int, help="queue: waiting conversations (default 200)")
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="skip PostgreSQL even when HAVEN_BENCH_POSTGRES or HAVEN_TEST_POSTGRES is set",
    )
    args = parser.parse_args(argv)
    for name in ("texters", "concurrency", "queued"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def counts_for(args: argparse.Namespace) -> Counts:
    base = QUICK if args.quick else DEFAULT
    return Counts(
        triage_rounds=base.triage_rounds,
        texters=args.texters or base.texters,
        messages=base.messages,
        concurrency=args.concurrency or base.concurrency,
        queued=args.queued or base.queued,
        queue_repeats=base.queue_repeats,
        time_limit_s=base.time_limit_s,
    )


def quiet_logs() -> None:
    """The app logs every request; render those lines as the service would (their cost is
    part of the figure) but write them nowhere, so stdout and stderr stay readable."""
    from bot import logs

    sink = open(os.devnull, "w")  # kept open: the log handler writes here until exit
    with contextlib.redirect_stderr(sink):
        logs.configure("json", "info")


async def collect(counts: Counts, only: set[str], use_postgres: bool, mode: str) -> Report:
    report = Report(
        meta={
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "mode": mode,
        }
    )

    async def attempt(name: str, work: Callable[[], Awaitable[Figure]]) -> None:
        try:
            report.figures.append(await work())
        except Exception as exc:
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)

    if "triage" in only:

        async def triage() -> Figure:
            return await asyncio.to_thread(triage_bench.run, counts.triage_rounds)

        await attempt("triage", triage)

    databases: list[tuple[str, SettingsFactory]] = [("sqlite", backends.sqlite_settings)]
    pg_url = backends.postgres_url()
    if pg_url and use_postgres:
        databases.append(("postgres", lambda: backends.postgres_settings(pg_url)))
    elif only & {"webhook", "queue"}:
        why = "--no-postgres" if pg_url else "HAVEN_BENCH_POSTGRES / HAVEN_TEST_POSTGRES not set"
        report.skipped["postgres"] = why

    load = webhook_bench.Load(
        texters=counts.texters,
        messages=counts.messages,
        concurrency=counts.concurrency,
        time_limit_s=counts.time_limit_s,
    )
    for backend, make in databases:
        if "webhook" in only:

            async def webhook(backend: str = backend, make: SettingsFactory = make) -> Figure:
                async with make() as settings:
                    return await webhook_bench.measure(settings, backend, load)

            await attempt(f"webhook [{backend}]", webhook)
        if "queue" in only:

            async def queue(backend: str = backend, make: SettingsFactory = make) -> Figure:
                async with make() as settings:
                    return await queue_bench.measure(
                        settings,
                        backend,
                        queued=counts.queued,
                        repeats=counts.queue_repeats,
                        limit_s=counts.time_limit_s,
                    )

            await attempt(f"queue [{backend}]", queue)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = counts_for(args)
    only = set(args.only or ("triage", "webhook", "queue"))
    quiet_logs()
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    report = asyncio.run(collect(counts, only, not args.no_postgres, mode))
    report.meta["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(render_table(report))
    checks_ok = all(f.check is None or f.check.passed for f in report.figures)
    return 0 if checks_ok and not report.failed else 1

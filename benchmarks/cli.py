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
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from benchmarks import (
    backends,
    burst_bench,
    fanout_bench,
    procs,
    queue_bench,
    scale_bench,
    serve_bench,
    triage_bench,
)
from benchmarks.report import Figure, Report, render_table
from bot.settings import Settings

SettingsFactory = Callable[[], contextlib.AbstractAsyncContextManager[Settings]]
CHOICES = ("triage", "webhook", "queue", "fanout", "scale", "burst")


@dataclass(frozen=True)
class Counts:
    triage_rounds: int
    queued: int
    queue_repeats: int
    time_limit_s: float
    webhook: serve_bench.WebhookLoad
    fanout: fanout_bench.FanoutLoad
    scale: scale_bench.ScaleLoad
    burst: burst_bench.BurstLoad


DEFAULT = Counts(
    triage_rounds=20,
    queued=200,
    queue_repeats=20,
    time_limit_s=15.0,
    webhook=serve_bench.WebhookLoad(),
    fanout=fanout_bench.FanoutLoad(),
    scale=scale_bench.ScaleLoad(),
    burst=burst_bench.BurstLoad(),
)
QUICK = Counts(
    triage_rounds=1,
    queued=10,
    queue_repeats=3,
    time_limit_s=5.0,
    webhook=serve_bench.WebhookLoad(
        texters=200, connections=10, warm_s=0.3, closed_s=1.0, rate=100.0, open_s=1.0, drain_s=5.0
    ),
    fanout=fanout_bench.FanoutLoad(
        clients=5,
        supervisors=2,
        texters=20,
        rate=50.0,
        seconds=1.0,
        grace_s=0.5,
        late_limit_s=5.0,
    ),
    scale=scale_bench.ScaleLoad(texters=2_000, messages=20_000, queued=20, requests=5),
    burst=burst_bench.BurstLoad(
        texters=30,
        seconds=3.0,
        advocates=2,
        take_every_s=0.3,
        alarm_after_s=1,
        ask_after_s=0.5,
        start_taking_share=0.75,
    ),
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
        choices=CHOICES,
        action="append",
        help=(
            "run only these figures (repeatable): triage; webhook (serve vs bare aiohttp,"
            " closed and open loop, SQLite and PostgreSQL); queue (snapshot in process);"
            " fanout (dashboard WebSockets); scale (100k texters, 1M messages); burst"
            " (priority inversions, alarm time)"
        ),
    )
    parser.add_argument("--texters", type=int, help="webhook: distinct texters (10,000)")
    parser.add_argument("--concurrency", type=int, help="webhook: connections (50)")
    parser.add_argument("--rate", type=float, help="webhook: open-loop messages/s (1,000)")
    parser.add_argument("--queued", type=int, help="queue: waiting conversations (200)")
    parser.add_argument(
        "--time-factor",
        type=float,
        help="burst: its duration times this (0.1 plays 60 s in 6 s; --quick uses 4 s)",
    )
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="skip PostgreSQL even when HAVEN_BENCH_POSTGRES or HAVEN_TEST_POSTGRES is set",
    )
    args = parser.parse_args(argv)
    for name in ("texters", "concurrency", "queued", "rate", "time_factor"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def counts_for(args: argparse.Namespace) -> Counts:
    base = QUICK if args.quick else DEFAULT
    webhook = replace(
        base.webhook,
        texters=args.texters or base.webhook.texters,
        connections=args.concurrency or base.webhook.connections,
        rate=args.rate or base.webhook.rate,
    )
    burst = base.burst
    if args.time_factor:
        burst = replace(burst, seconds=burst.seconds * args.time_factor)
    return replace(base, queued=args.queued or base.queued, webhook=webhook, burst=burst)


def _commit() -> str:
    """The code measured: the checked-out commit, marked when the tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo").read().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": _commit(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
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

    pg_url = backends.postgres_url()
    if not (pg_url and use_postgres) and only & {"webhook", "queue"}:
        why = "--no-postgres" if pg_url else "HAVEN_BENCH_POSTGRES / HAVEN_TEST_POSTGRES not set"
        report.skipped["postgres"] = why
    backends_run = ["sqlite"] + (["postgres"] if pg_url and use_postgres else [])

    async def many(name: str, work: Callable[[], Awaitable[list[Figure]]]) -> None:
        try:
            report.figures.extend(await work())
        except Exception as exc:
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)

    for backend in backends_run:
        if "webhook" in only:

            async def webhook(backend: str = backend) -> list[Figure]:
                load = counts.webhook
                if backend == "postgres":  # floor 2: two serve processes share the database
                    load = replace(load, servers=2)
                return await serve_bench.measure(backend, load, pg_url)

            await many(f"webhook [{backend}]", webhook)
        if "queue" in only:
            make: SettingsFactory = backends.sqlite_settings
            if backend == "postgres":
                make = lambda: backends.postgres_settings(pg_url)  # noqa: E731

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
    if "fanout" in only:
        await attempt("fanout", lambda: fanout_bench.measure(counts.fanout))
    if "scale" in only:
        await many("scale", lambda: scale_bench.measure(counts.scale))
    if "burst" in only:
        await many("burst", lambda: burst_bench.measure(counts.burst))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = counts_for(args)
    only = set(args.only or CHOICES)
    if args.quick:
        procs.SETTLE_LIMIT_S = 0.0  # a smoke run: do not wait for servers to go idle
    quiet_logs()
    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    report = asyncio.run(collect(counts, only, not args.no_postgres, mode))
    report.meta["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(render_table(report))
    checks_ok = all(c.passed for f in report.figures for c in f.checks)
    return 0 if checks_ok and not report.failed else 1

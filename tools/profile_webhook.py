"""The inbound webhook's cost per message, in process, on SQLite (issue 11's profile).

    python -m tools.profile_webhook count [--show]   SQL statements per inbound message
    python -m tools.profile_webhook time [--cprofile]  wall and CPU per message, one at a time

Both drive the real app over loopback HTTP with Twilio-signed requests (the benchmark's
settings), one message at a time after a warm-up, so nothing queues behind anything and
the figures are the per-message cost itself. Statements are counted by SQLite's own trace
callback on the store's connection(s), so every statement the database ran is seen,
BEGIN and COMMIT included. Findings: benchmarks/PROFILE-webhook.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from benchmarks.backends import AUTH_TOKEN, PUBLIC_URL, base_settings

SCRIPT = ("hi", "yes", "1", "no", "skip", "60601", "thanks", "hello?")
PATH = "/twilio/sms"
_sids = itertools.count(1)


def _params(number: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": f"SM{next(_sids):032d}",
        "AccountSid": "AC" + "0" * 32,
        "From": number,
        "To": "+15559990000",
        "Body": body,
        "NumMedia": "0",
    }


class Session:
    def __init__(self, folder: Path) -> None:
        from bot.app import create_app

        settings = base_settings(folder, f"sqlite:///{folder / 'haven.db'}")
        self.app = create_app(settings)
        self.client = TestClient(TestServer(self.app, host="127.0.0.1"))
        self.validator = RequestValidator(AUTH_TOKEN)

    async def __aenter__(self) -> Session:
        with contextlib.redirect_stdout(io.StringIO()):
            await self.client.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            await self.client.close()

    def signed(self, number: str, body: str) -> tuple[dict[str, str], str]:
        params = _params(number, body)
        return params, self.validator.compute_signature(PUBLIC_URL + PATH, params)

    async def post(self, params: dict[str, str], signature: str) -> None:
        response = await self.client.post(
            PATH, data=params, headers={"X-Twilio-Signature": signature}
        )
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"webhook answered {response.status}")

    def store(self) -> Any:
        from bot.store.base import Store

        return next(v for v in self.app._state.values() if isinstance(v, Store))


async def count(texters: int, show: bool) -> dict[str, float]:
    from benchmarks.cli import quiet_logs

    quiet_logs()
    per_body: dict[str, list[int]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as folder:
        async with Session(Path(folder)) as s:
            seen: list[str] = []
            await s.store().trace(seen.append)
            for texter in range(texters):
                for body in SCRIPT:
                    signed = s.signed(f"+1555300{texter:04d}", body)
                    seen.clear()
                    await s.post(*signed)
                    # Background ticks (outbox, timers) may run statements meanwhile;
                    # they are not the message's: keep those that name no texter work.
                    mine = [q for q in seen if not _background(q)]
                    per_body[body].append(len(mine))
                    if show and texter == 1:
                        print(f"--- {body!r}: {len(mine)} statements")
                        for q in mine:
                            print("    " + " ".join(q.split())[:140])
    means = {body: sum(v) / len(v) for body, v in per_body.items()}
    for body, v in per_body.items():
        print(f"{body!r:10} mean {sum(v) / len(v):5.2f}  min {min(v):2}  max {max(v):2}")
    allv = [n for v in per_body.values() for n in v]
    print(f"overall: {sum(allv) / len(allv):.2f} statements per inbound message ({len(allv)})")
    return means


_BACKGROUND = ("FROM outbox", "FROM redactions", "nudge_at <=", "FROM alarms", "UPDATE outbox")


def _background(statement: str) -> bool:
    return any(mark in statement for mark in _BACKGROUND)


async def timing(texters: int, profile: str | None) -> None:
    from benchmarks.cli import quiet_logs
    from bot.triage import triage

    quiet_logs()
    triage("warm up the lexicon and the model")
    with tempfile.TemporaryDirectory() as folder:
        async with Session(Path(folder)) as s:
            warm = [s.signed(f"+15550{t:05d}", b) for t in range(5) for b in SCRIPT]
            measured = [s.signed(f"+15551{t:05d}", b) for t in range(texters) for b in SCRIPT]
            for signed in warm:
                await s.post(*signed)
            prof = cProfile.Profile() if profile else None
            wall, cpu = time.perf_counter(), time.thread_time()
            if prof:
                prof.enable()
            for signed in measured:
                await s.post(*signed)
            if prof:
                prof.disable()
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    n = len(measured)
    print(
        f"{n} messages one at a time: wall {1000 * wall / n:.2f} ms/message,"
        f" main-thread CPU {1000 * cpu / n:.2f} ms/message (the HTTP client's share included)"
    )
    if prof and profile:
        pstats.Stats(prof).sort_stats(profile).print_stats(40)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.profile_webhook")
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("count", help="SQL statements per inbound message")
    c.add_argument("--texters", type=int, default=20)
    c.add_argument("--show", action="store_true", help="list one texter's statements")
    t = sub.add_parser("time", help="wall and CPU per inbound message")
    t.add_argument("--texters", type=int, default=100)
    t.add_argument("--cprofile", metavar="SORT", help="cProfile sorted by SORT")
    args = parser.parse_args(argv)
    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}")
    if args.what == "count":
        asyncio.run(count(args.texters, args.show))
    else:
        asyncio.run(timing(args.texters, args.cprofile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Floors 1 and 2: the inbound webhook of a real `python -m bot serve` (its own process,
pinned to core 0; on PostgreSQL two of them) beside a bare aiohttp app that parses the same
form and returns fixed TwiML (its own process, the same core). The load generator runs in
this process on core 1 (benchmarks.loadgen).

Two figures per backend:
- closed loop (`webhook`): `connections` connections back to back; requests/s and ratio.
- open loop (`webhook_open`): a fixed offered rate; p50/p99 from each request's due time.
Then the Haven server is killed with SIGKILL, as a crash would, and every message it
acknowledged is looked for in the database: none missing, none stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadgen, procs, staff
from benchmarks.report import Check, Figure, summarise

# A short intake: greeting, safe to text, a need, a screening answer, a skip, a place.
SCRIPT = ("hi", "yes", "1", "no", "skip", "60601")
RATE_SHARE = 0.20  # floor 1: at least 20 % of bare aiohttp's requests/s
P99_LIMIT_US = 25_000.0  # floor 1: p99 at most 25 ms at the offered rate


@dataclass(frozen=True)
class WebhookLoad:
    texters: int = 10_000
    connections: int = 50
    warm_s: float = 3.0
    closed_s: float = 10.0
    rate: float = 1000.0
    open_s: float = 10.0
    drain_s: float = 10.0
    servers: int = 1  # Haven serve processes (two on PostgreSQL)


def _prebuilt(inbound: loadgen.Inbound, ports: Sequence[int], n: int) -> list[loadgen.Prepared]:
    return inbound.take(n, ports)


class _Texters:
    """Haven's requests in order across phases, so each texter's messages follow the script
    (warm-up, closed loop, open loop continue one sequence)."""

    def __init__(self, inbound: loadgen.Inbound, ports: Sequence[int]) -> None:
        self.inbound = inbound
        self.ports = ports
        self.next = 0

    def take(self, n: int) -> list[loadgen.Prepared]:
        out = self.inbound.take(n, self.ports, start=self.next)
        self.next += n
        return out

    def stream(self, chunk: int = 500) -> Iterator[loadgen.Prepared]:
        while True:
            yield from self.take(chunk)


def _stored_sqlite(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT provider_sid FROM messages WHERE direction = 'in'").fetchall()
    return [r[0] for r in rows]


async def _stored_postgres(url: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT provider_sid FROM messages WHERE direction = 'in'")
    finally:
        await conn.close()
    return [r[0] for r in rows]


def durability(acked: Sequence[str], stored: Sequence[str]) -> tuple[int, int]:
    """(acknowledged but not stored, stored more than once) — both must be 0."""
    stored_set = set(stored)
    missing = sum(1 for sid in acked if sid not in stored_set)
    doubled = len(stored) - len(stored_set)
    return missing, doubled


async def measure(backend: str, load: WebhookLoad, pg_url: str = "") -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="haven-bench-") as tmp:
        folder = Path(tmp)
        async with AsyncExitStack() as stack:
            if backend == "postgres":
                from benchmarks.pg import fresh_database

                url = await stack.enter_async_context(fresh_database(pg_url))
            else:
                url = f"sqlite:///{folder / 'haven.db'}"
            bare_port = procs.free_port()
            bare = procs.Server(
                "bare",
                procs.bare_args(bare_port),
                procs.haven_env("", folder, bare_port),
                bare_port,
                folder,
            )
            havens: list[procs.Server] = []
            for i in range(load.servers):
                port = procs.free_port()
                havens.append(
                    procs.Server(
                        f"haven{i}",
                        procs.serve_args(),
                        procs.haven_env(url, folder, port),
                        port,
                        folder,
                    )
                )
            await staff.migrate(url)  # before the servers, so they can start side by side
            await asyncio.gather(*(stack.enter_async_context(s) for s in [bare, *havens]))
            figures, acked = await _run(backend, load, bare, havens)
            for server in havens:
                server.kill()  # as a crash would: what was acknowledged must be on disk
            if backend == "postgres":
                stored = await _stored_postgres(url)
            else:
                stored = await asyncio.to_thread(_stored_sqlite, folder / "haven.db")
            missing, doubled = durability(acked, stored)
            figures[0].notes["acknowledged_then_killed"] = (
                f"{len(acked)} acknowledged, SIGKILL, {missing} missing, {doubled} doubled"
            )
            figures[0].more_checks.append(
                Check(
                    "every acknowledged message stored once after kill -9",
                    not missing and not doubled,
                )
            )
            return figures


async def _run(
    backend: str, load: WebhookLoad, bare: procs.Server, havens: list[procs.Server]
) -> tuple[list[Figure], list[str]]:
    bare_ports = [bare.port]
    haven_ports = [s.port for s in havens]
    bare_in = loadgen.Inbound(load.texters, SCRIPT, run="B")
    haven = _Texters(loadgen.Inbound(load.texters, SCRIPT, run="H"), haven_ports)
    acked: list[str] = []
    with procs.load_generator_core() as where:
        # Warm up both (first connections, lazy imports, the lexicon loading beside serve).
        cycle = _prebuilt(bare_in, bare_ports, 2000)
        await loadgen.closed_loop(bare_ports, itertools.cycle(cycle), load.connections, load.warm_s)
        warm = await loadgen.closed_loop(haven_ports, haven.stream(), load.connections, load.warm_s)
        acked += warm.acked
        # Closed loop: requests/s.
        base_closed = await loadgen.closed_loop(
            bare_ports, itertools.cycle(cycle), load.connections, load.closed_s
        )
        cpu0 = [s.cpu_s() for s in havens]
        subj_closed = await loadgen.closed_loop(
            haven_ports, haven.stream(), load.connections, load.closed_s
        )
        server_cpu = sum(s.cpu_s() - c for s, c in zip(havens, cpu0, strict=True))
        acked += subj_closed.acked
        # Open loop: a fixed offered rate, latency from each request's due time.
        n = max(1, int(load.rate * load.open_s))
        base_open = await loadgen.open_loop(
            bare_ports,
            _prebuilt(bare_in, bare_ports, n),
            load.rate,
            load.connections,
            load.drain_s,
        )
        subj_open = await loadgen.open_loop(
            haven_ports, haven.take(n), load.rate, load.connections, load.drain_s
        )
        acked += subj_open.acked
    processes = f"{len(havens)} serve process{'es' if len(havens) > 1 else ''}"
    closed = Figure(
        name="webhook",
        backend=backend,
        detail=(
            f"closed loop, {load.connections} connections, {load.closed_s:g} s, signed"
            f" webhooks from {load.texters:,} texters; {processes} on core 0, bare aiohttp"
            f" on core 0, load generator on {where}"
        ),
        subject=summarise(
            "POST /twilio/sms (haven)",
            subj_closed.latencies_ns,
            subj_closed.wall_s,
            subj_closed.errors,
        ),
        baseline=summarise(
            "POST /twilio/sms (bare aiohttp)",
            base_closed.latencies_ns,
            base_closed.wall_s,
            base_closed.errors,
        ),
        headline="rate",
        notes={
            "load_generator_cpu": (
                f"{subj_closed.client_cpu:.0%} (haven run), {base_closed.client_cpu:.0%} (bare"
                " run); near 100 % the baseline is a lower bound"
            ),
            "haven_cpu_per_request_ms": round(
                1000 * server_cpu / max(1, len(subj_closed.latencies_ns)), 3
            ),
            "haven_start_s": round(max(s.started_s for s in havens), 1),
        },
    )
    rate_ok = closed.ratio_rate >= RATE_SHARE
    closed.check = Check(f"requests/s at least {RATE_SHARE:.0%} of bare aiohttp's", rate_ok)
    opened = Figure(
        name="webhook_open",
        backend=backend,
        detail=(
            f"open loop, {load.rate:,.0f} messages/s offered for {load.open_s:g} s over"
            f" {load.connections} connections; latency from each request's due time"
        ),
        subject=summarise(
            "POST /twilio/sms (haven)", subj_open.latencies_ns, subj_open.wall_s, subj_open.errors
        ),
        baseline=summarise(
            "POST /twilio/sms (bare aiohttp)",
            base_open.latencies_ns,
            base_open.wall_s,
            base_open.errors,
        ),
        check=None,
        notes={
            "answered_per_second": (
                f"{len(subj_open.latencies_ns) - subj_open.unanswered:,} in"
                f" {subj_open.wall_s:.1f} s (haven), unanswered at drain: {subj_open.unanswered}"
            ),
        },
    )
    p99_ok = subj_open.errors == 0 and opened.subject.p99_us <= P99_LIMIT_US
    opened.check = Check(
        f"p99 at most {P99_LIMIT_US / 1000:.0f} ms at {load.rate:,.0f}/s offered, no errors", p99_ok
    )
    return [closed, opened], acked

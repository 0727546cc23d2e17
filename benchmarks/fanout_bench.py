"""Floor 3: dashboard fan-out. Staff signed in through /login, each with the dashboard's
WebSocket open, while texters already in the queue write at a fixed rate: for each
acknowledged message, the time from its 2xx to its `message` event at the last of the
clients (p99 over messages; a delivery that never comes counts against it).

Baseline: the bare aiohttp app with a WebSocket that relays each posted message to every
socket before answering (benchmarks.bare), driven the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks import loadgen, procs, staff
from benchmarks.report import Check, Figure, summarise

P99_LIMIT_US = 250_000.0
SETUP = ("hi", "person")  # two texts put a texter in the queue (asked for a person)
WAITING = ("are you there?", "still here", "please hurry", "ok", "hello?")


@dataclass(frozen=True)
class FanoutLoad:
    clients: int = 50
    supervisors: int = 10  # the rest are advocates (who see queued texters' messages)
    texters: int = 200
    rate: float = 200.0
    seconds: float = 10.0
    grace_s: float = 3.0  # after the load, wait until no event came for this long
    late_limit_s: float = 30.0  # ... but no longer than this: what has not come is lost


@dataclass
class Listener:
    """One client's socket: when each message event (by key) arrived."""

    arrived: dict[str | int, int] = field(default_factory=dict)


async def _listen(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], listener: Listener
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(url, headers=headers, heartbeat=None)

    async def read() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT or '"kind":"message"' not in msg.data:
                continue
            now = time.perf_counter_ns()
            data = json.loads(msg.data)
            if data.get("direction") != "in":
                continue
            key = data.get("message_id", data.get("sid"))
            if isinstance(key, str | int):
                listener.arrived.setdefault(key, now)

    asyncio.get_running_loop().create_task(read())
    return ws


def _spread(
    acks: dict[str, int], keys: dict[str, str | int], listeners: Sequence[Listener]
) -> tuple[list[int], int, int]:
    """Per acknowledged message, 2xx to its event at the last client; (durations, missing
    deliveries, deliveries)."""
    worst: list[int] = []
    missing = deliveries = 0
    for sid, acked_ns in acks.items():
        key = keys.get(sid)
        latest = 0
        lost = False
        for listener in listeners:
            got = None if key is None else listener.arrived.get(key)
            if got is None:
                lost = True
                missing += 1
            else:
                deliveries += 1
                latest = max(latest, got - acked_ns)
        if not lost:
            worst.append(max(0, latest))
    return worst, missing, deliveries


def _message_ids(path: Path) -> dict[str, str | int]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT provider_sid, id FROM messages WHERE direction = 'in'")
        return {sid: mid for sid, mid in rows}


async def _drive(
    server: procs.Server,
    load: FanoutLoad,
    names: Sequence[str],
    run: str,
    haven: bool,
) -> tuple[dict[str, int], list[Listener], float, int]:
    """Sign in (haven), open the sockets, queue the texters, then the timed load. Returns
    the acknowledgements (sid -> ns), the listeners, the client CPU share, and errors."""
    inbound = loadgen.Inbound(load.texters, SETUP + WAITING, run=run)
    ports = [server.port]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        if haven:
            members = await staff.sign_in_all(server.base, names, session)
            headers = [m.headers for m in members]
        else:
            headers = [{} for _ in names]
        # Queue every texter (two texts each), not timed.
        setup = inbound.take(load.texters * len(SETUP), ports)
        await loadgen.closed_loop(ports, iter(setup), 20, 120.0)
        listeners = [Listener() for _ in names]
        sockets = [
            await _listen(session, server.base.replace("http", "ws") + "/ws", h, li)
            for h, li in zip(headers, listeners, strict=True)
        ]
        await asyncio.sleep(0.5)
        n = max(1, int(load.rate * load.seconds))
        requests = inbound.take(n, ports, start=load.texters * len(SETUP))
        acks: dict[str, int] = {}

        def on_ack(i: int, ns: int) -> None:
            acks[requests[i].sid] = ns

        result = await loadgen.open_loop(
            ports, requests, load.rate, 20, drain_s=10.0, on_ack=on_ack
        )
        # Late is not lost: wait until the sockets have been quiet for grace_s.
        waited = 0.0
        while waited < load.late_limit_s:
            before = sum(len(li.arrived) for li in listeners)
            await asyncio.sleep(load.grace_s)
            waited += load.grace_s
            if sum(len(li.arrived) for li in listeners) == before:
                break
        for ws in sockets:
            await ws.close()
    return acks, listeners, result.client_cpu, result.errors


async def measure(load: FanoutLoad) -> Figure:
    names = [f"bench_sup_{i}" for i in range(load.supervisors)] + [
        f"bench_adv_{i}" for i in range(load.clients - load.supervisors)
    ]
    roles = [("supervisor" if n.startswith("bench_sup") else "advocate") for n in names]
    with tempfile.TemporaryDirectory(prefix="haven-bench-") as tmp:
        folder = Path(tmp)
        db = folder / "haven.db"
        url = f"sqlite:///{db}"
        await staff.add_users(url, list(zip(names, roles, strict=True)))
        bare_port, haven_port = procs.free_port(), procs.free_port()
        bare = procs.Server(
            "bare",
            procs.bare_args(bare_port),
            procs.haven_env("", folder, bare_port),
            bare_port,
            folder,
        )
        haven = procs.Server(
            "haven",
            procs.serve_args(),
            procs.haven_env(url, folder, haven_port),
            haven_port,
            folder,
        )
        with procs.load_generator_core() as where:
            async with contextlib.AsyncExitStack() as stack:
                await asyncio.gather(*(stack.enter_async_context(s) for s in (bare, haven)))
                b_acks, b_listeners, b_cpu, b_errors = await _drive(bare, load, names, "F", False)
                bare.stop()  # idle from here: the core is Haven's
                h_acks, h_listeners, h_cpu, h_errors = await _drive(haven, load, names, "G", True)
        keys = await asyncio.to_thread(_message_ids, db)
    h_worst, h_missing, h_deliveries = _spread(h_acks, keys, h_listeners)
    b_worst, b_missing, b_deliveries = _spread(b_acks, {s: s for s in b_acks}, b_listeners)
    figure = Figure(
        name="fanout",
        backend="sqlite",
        detail=(
            f"{load.clients} signed-in WebSocket clients ({load.supervisors} supervisors,"
            f" {load.clients - load.supervisors} advocates), {load.rate:,.0f} inbound"
            f" messages/s for {load.seconds:g} s from {load.texters} queued texters: 2xx to"
            f" the event at the last client; load generator and clients on {where}"
        ),
        subject=summarise("haven /ws, 2xx -> every client", h_worst, None, h_errors + h_missing),
        baseline=summarise(
            "bare aiohttp relay, 2xx -> every client", b_worst, None, b_errors + b_missing
        ),
        notes={
            "deliveries": (
                f"haven {h_deliveries:,} delivered, {h_missing} missing;"
                f" bare {b_deliveries:,} delivered, {b_missing} missing"
            ),
            "client_cpu": f"{h_cpu:.0%} (haven run), {b_cpu:.0%} (bare run)",
        },
    )
    ok = h_errors == 0 and figure.subject.p99_us <= P99_LIMIT_US
    figure.check = Check(
        f"p99 2xx -> event at every client at most {P99_LIMIT_US / 1000:.0f} ms", ok
    )
    figure.more_checks.append(
        Check("every acknowledged message's event reached every client", h_missing == 0)
    )
    return figure

"""Inbound webhook under load: the real app on a loopback port, signed Twilio requests from
many texters at once, beside GET /healthz on the same server.

Client and server share one event loop in one process (loopback only, no other machine),
so the absolute latencies include the client's own work; the /healthz baseline carries the
same overhead, which is why the ratio is the figure to compare across machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from benchmarks.backends import AUTH_TOKEN, PUBLIC_URL
from benchmarks.report import Figure, summarise
from bot.settings import Settings

# A short intake: greeting, safe to text, a need, a screening answer, a skip, a place.
SCRIPT = ("hi", "yes", "1", "no", "skip", "60601")
PATH = "/twilio/sms"


@dataclass(frozen=True)
class Load:
    texters: int = 80
    messages: int = len(SCRIPT)  # per texter, the first n of SCRIPT (repeated if longer)
    concurrency: int = 8  # texters in flight at once
    time_limit_s: float = 20.0  # per side (subject, baseline): stop starting new requests

    def __post_init__(self) -> None:
        if self.texters < 1 or self.messages < 1 or self.concurrency < 1:
            raise ValueError("texters, messages and concurrency must be at least 1")
        if self.time_limit_s <= 0:
            raise ValueError("time_limit_s must be positive")


@dataclass
class Tally:
    durations_ns: list[int]
    errors: int = 0
    skipped: int = 0  # requests not sent because the time limit passed
    wall_s: float = 0.0


_sids = itertools.count(1)
_numbers = itertools.count(1)


def _params(number: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": f"SM{next(_sids):032d}",
        "AccountSid": "AC" + "0" * 32,
        "From": number,
        "To": "+15559990000",
        "Body": body,
        "NumMedia": "0",
    }


def _is_twiml(text: str) -> bool:
    try:
        return ET.fromstring(text).tag == "Response"
    except ET.ParseError:
        return False


Send = Callable[[int, int], Awaitable[tuple[bool, int]]]  # (texter, step) -> (ok, ns)


async def _drive(load: Load, send: Send) -> Tally:
    """Each texter sends its messages in order (one texter's messages are never
    concurrent, as on a phone); `load.concurrency` texters are in flight at once."""
    tally = Tally(durations_ns=[])
    gate = asyncio.Semaphore(load.concurrency)
    deadline = time.monotonic() + load.time_limit_s

    async def texter(index: int) -> None:
        async with gate:
            for step in range(load.messages):
                if time.monotonic() > deadline:
                    tally.skipped += load.messages - step
                    return
                ok, elapsed = await send(index, step)
                tally.durations_ns.append(elapsed)
                if not ok:
                    tally.errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(texter(i) for i in range(load.texters)))
    tally.wall_s = time.perf_counter() - started
    return tally


async def measure(settings: Settings, backend: str, load: Load) -> Figure:
    from bot.app import create_app  # late: the app imports triage, which may be mid-rewrite

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    # The console sender prints any unprompted text; keep it out of the report.
    with contextlib.redirect_stdout(io.StringIO()):
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            return await _measure_running(f"http://127.0.0.1:{port}", backend, load)
        finally:
            await runner.cleanup()


async def _measure_running(base: str, backend: str, load: Load) -> Figure:
    validator = RequestValidator(AUTH_TOKEN)
    connector = aiohttp.TCPConnector(limit=load.concurrency)
    run_id = next(_numbers)
    async with aiohttp.ClientSession(connector=connector) as session:

        def inbound(phase: int) -> Send:
            async def send(index: int, step: int) -> tuple[bool, int]:
                # A distinct number per phase, so warm-up texters are not reused.
                number = f"+1555{phase}{run_id % 100:02d}{index:05d}"
                params = _params(number, SCRIPT[step % len(SCRIPT)])
                # Signed before the clock starts: signing is Twilio's work, not ours.
                signature = validator.compute_signature(PUBLIC_URL + PATH, params)
                headers = {"X-Twilio-Signature": signature}
                started = time.perf_counter_ns()
                async with session.post(base + PATH, data=params, headers=headers) as response:
                    body = await response.text()
                    elapsed = time.perf_counter_ns() - started
                    return response.status == 200 and _is_twiml(body), elapsed

            return send

        async def healthz(_index: int, _step: int) -> tuple[bool, int]:
            started = time.perf_counter_ns()
            async with session.get(base + "/healthz") as response:
                await response.read()
                elapsed = time.perf_counter_ns() - started
                return response.status == 200, elapsed

        # Warm up both paths (first connections, first database pages, lazy imports).
        warm = Load(texters=2, messages=2, concurrency=2, time_limit_s=load.time_limit_s)
        await _drive(warm, healthz)
        await _drive(warm, inbound(1))
        baseline = await _drive(load, healthz)
        subject = await _drive(load, inbound(2))

    notes: dict[str, object] = {
        "texters": load.texters,
        "concurrency": load.concurrency,
        "script": list(SCRIPT[: load.messages]),
    }
    if subject.skipped or baseline.skipped:
        notes["not_sent_after_time_limit"] = subject.skipped + baseline.skipped
    return Figure(
        name="webhook",
        backend=backend,
        detail=(
            f"{load.texters} texters x {load.messages} signed messages,"
            f" {load.concurrency} texters at a time"
        ),
        subject=summarise("POST /twilio/sms", subject.durations_ns, subject.wall_s, subject.errors),
        baseline=summarise("GET /healthz", baseline.durations_ns, baseline.wall_s, baseline.errors),
        notes=notes,
    )

"""A real `python -m bot serve` in a subprocess, flooded and killed: 300 signed webhooks
from 30 texters at once are all answered and all stored; and after SIGKILL mid-flood and
a restart, every message that was acknowledged (2xx) before the kill is stored, and the
restarted server answers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from tests.helpers import AUTH_TOKEN, PUBLIC_URL, ROOT, TEST_SECRET, free_port, sign

TEXTERS = 30
EACH = 10  # messages per texter: 300 in all


def _environ(folder: Path, port: int) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "TWILIO_"))}
    environ.pop("DATABASE_URL", None)
    return environ | {
        "PYTHONPATH": str(ROOT),
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{folder / 'haven.db'}",
        "HAVEN_SECRET_KEY": TEST_SECRET,
        "HAVEN_PUBLIC_URL": PUBLIC_URL,  # what Twilio signs, as behind a TLS proxy
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HAVEN_LOG_FORMAT": "json",
    }


@contextmanager
def server(folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m bot serve` on `port`, its output in a file (a pipe could fill and stall
    it); stopped at the end unless the test killed it first."""
    with (folder / "serve.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=folder,
            env=_environ(folder, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def ready(port: int, proc: subprocess.Popen[bytes], folder: Path) -> None:
    """Wait (up to 60 s) until /readyz says 200."""
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, (folder / "serve.log").read_text()[-2000:]
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server never became ready: " + (folder / "serve.log").read_text())


def _params(texter: int, n: int, round_: int = 0) -> dict[str, str]:
    return {
        "MessageSid": f"SM{round_:04d}{texter:04d}{n:024d}",
        "AccountSid": "AC" + "0" * 32,
        "From": f"+1555{texter:07d}",
        "To": "+15559990000",
        "Body": "hi" if n == 0 else f"message {n}",
        "NumMedia": "0",
    }


async def post(session: aiohttp.ClientSession, port: int, params: dict[str, str]) -> int:
    headers = {"X-Twilio-Signature": sign("/twilio/sms", params)}
    url = f"http://127.0.0.1:{port}/twilio/sms"
    async with session.post(url, data=params, headers=headers) as response:
        await response.read()
        return response.status


KILL_AFTER = 60  # acknowledged messages before the kill


async def flood(
    port: int,
    round_: int,
    acked: list[str],
    statuses: list[int],
    enough: asyncio.Event | None = None,
) -> None:
    """30 texters at once, each sending its 10 messages in order (as one phone does).
    Records each acknowledged SID (and sets `enough` after KILL_AFTER of them); a refused
    connection (the server gone) ends a texter."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def texter(t: int) -> None:
            for n in range(EACH):
                params = _params(t, n, round_)
                try:
                    status = await post(session, port, params)
                except (TimeoutError, aiohttp.ClientError):
                    return
                statuses.append(status)
                if 200 <= status < 300:
                    acked.append(params["MessageSid"])
                    if enough is not None and len(acked) >= KILL_AFTER:
                        enough.set()

        await asyncio.gather(*(texter(t) for t in range(1, TEXTERS + 1)))


def stored_sids(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "haven.db") as db:
        rows = db.execute("SELECT provider_sid FROM messages WHERE direction = 'in'")
        return {r[0] for r in rows}


def test_flood_then_sigkill_mid_flood_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """One real server (two starts, to keep CI quick). First 300 signed webhooks from 30
    texters at once: every one gets 200 and is stored. Then a second flood, SIGKILLed
    mid-way: after a restart every message answered 2xx before the kill is stored, the
    restarted server answers a new texter, and `python -m bot stats` counts them all."""
    port = free_port()
    first: list[str] = []
    statuses: list[int] = []
    with server(tmp_path, port) as proc:
        asyncio.run(ready(port, proc, tmp_path))
        started = time.perf_counter()
        asyncio.run(flood(port, 1, first, statuses))
        took = time.perf_counter() - started
        assert statuses == [200] * TEXTERS * EACH, sorted(set(statuses))
        assert len(set(first)) == TEXTERS * EACH
        assert stored_sids(tmp_path) == set(first)

        acked: list[str] = []
        statuses.clear()

        async def flood_and_kill() -> None:
            enough = asyncio.Event()
            sending = asyncio.create_task(flood(port, 2, acked, statuses, enough))
            waiting = asyncio.create_task(enough.wait())
            await asyncio.wait([sending, waiting], return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            proc.send_signal(signal.SIGKILL)  # mid-flood: requests are in flight
            await sending

        asyncio.run(flood_and_kill())
        assert proc.wait(timeout=10) == -signal.SIGKILL
    assert KILL_AFTER <= len(acked) < TEXTERS * EACH, len(acked)  # killed mid-flood, not after
    assert set(statuses) == {200}, statuses

    newcomer = _params(TEXTERS + 1, 0, 3)
    with server(tmp_path, port) as proc:
        asyncio.run(ready(port, proc, tmp_path))
        lost = set(acked) - stored_sids(tmp_path)
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost"

        async def answer() -> int:
            async with aiohttp.ClientSession() as session:
                return await post(session, port, newcomer)

        assert asyncio.run(answer()) == 200
    stored = stored_sids(tmp_path)
    assert newcomer["MessageSid"] in stored
    stats = subprocess.run(
        [sys.executable, "-m", "bot", "stats"],
        cwd=tmp_path,
        env=_environ(tmp_path, port),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    counts = json.loads(stats.stdout.strip().splitlines()[-1])
    assert counts["messages_in"] == len(stored) >= TEXTERS * EACH + len(acked) + 1, counts
    assert counts["texters"] == TEXTERS + 1, counts
    print(f"flood: {TEXTERS * EACH} webhooks in {took:.2f} s; {len(acked)} acked before kill")

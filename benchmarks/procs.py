"""Servers in their own processes, pinned to one core, and the load generator on another.

`Server` starts a command (`python -m bot serve`, or the bare baseline) under
`taskset -c CORE`, waits for GET /healthz, reports its RSS, and stops it: gently
(SIGTERM) or as a crash would (SIGKILL, for the durability check).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import aiohttp

from benchmarks.backends import AUTH_TOKEN, PUBLIC_URL, SECRET

SERVER_CORE = 0
LOAD_CORE = 1
START_TIMEOUT_S = 60.0
# How long a server may take to go quiet after start-up (--quick sets 0: a smoke run).
SETTLE_LIMIT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cores() -> int:
    return len(os.sched_getaffinity(0))


def pin_prefix(core: int) -> list[str]:
    """`taskset -c core` when there is a second core to keep the load generator on."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


@contextlib.contextmanager
def load_generator_core() -> Iterator[str]:
    """Run this process (the load generator) on LOAD_CORE while the block runs; says where."""
    if (os.cpu_count() or 1) < 2:
        yield "unpinned (one core)"
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {LOAD_CORE})
    try:
        yield f"core {LOAD_CORE}"
    finally:
        os.sched_setaffinity(0, before)


def haven_env(database_url: str, folder: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment `python -m bot serve` runs with: development, signed webhooks with
    the benchmark's auth token, a fixed secret key, logs as JSON (written to a file)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HAVEN_", "TWILIO_")) and k != "DATABASE_URL"
    }
    env.update(
        HAVEN_ENV="development",
        DATABASE_URL=database_url,
        HAVEN_SECRET_KEY=SECRET,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        HAVEN_PUBLIC_URL=PUBLIC_URL,
        HAVEN_ORG_NAME="Harbor House",
        HAVEN_LOG_FORMAT="json",
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    env.update(extra)
    return env


class Server:
    """One server process. Use `async with Server(...) as server:`."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        port: int,
        cwd: Path,
        core: int = SERVER_CORE,
    ) -> None:
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"{name}.log"
        self._args = [*pin_prefix(core), sys.executable, *args]
        self._env = dict(env)
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0  # launch to first /healthz 200
        self.settled_s = 0.0  # then until its warm-up went quiet

    async def __aenter__(self) -> Server:
        await self.start()
        self.settled_s = await self.settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "wb") as log:
            return subprocess.Popen(
                self._args, env=self._env, cwd=self._cwd, stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        began = time.monotonic()
        self.proc = self._launch()
        deadline = began + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start-up: {self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.base + "/healthz") as response:
                        if response.status == 200:
                            break
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} not ready in {START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.05)
        self.started_s = time.monotonic() - began

    async def settle(
        self, quiet_cpu: float = 0.1, window_s: float = 0.5, limit_s: float = 30.0
    ) -> float:
        """Wait until the server is idle (its warm-up thread loads the lexicon beside the
        listening server): less than quiet_cpu of a core over window_s. Returns the wait."""
        began = time.monotonic()
        limit_s = SETTLE_LIMIT_S if limit_s is None else limit_s
        while time.monotonic() - began < limit_s:
            before = self.cpu_s()
            await asyncio.sleep(window_s)
            if (self.cpu_s() - before) / window_s < quiet_cpu:
                break
        return time.monotonic() - began

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def rss_mb(self) -> float:
        """Resident memory of the server (the Python process under taskset), in MB."""
        if self.proc is None:
            return float("nan")
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return float("nan")
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server and its child processes (the warm-up's
        ZIP-table reader) have used so far: running children count too, so `settle` waits
        for them."""
        if self.proc is None:
            return float("nan")
        try:
            return _cpu_with_children(self.proc.pid)
        except OSError:
            return float("nan")

    def kill(self) -> None:
        """As a crash would: SIGKILL, no shutdown, no flushing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


def serve_args() -> list[str]:
    return ["-m", "bot", "serve"]


def bare_args(port: int) -> list[str]:
    return ["-m", "benchmarks.bare", str(port)]


def _cpu_with_children(pid: int) -> float:
    """utime + stime of `pid`, of its children already waited for (cutime + cstime), and of
    those still running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    seconds = ticks / os.sysconf("SC_CLK_TCK")
    for child in children:
        with contextlib.suppress(OSError):  # it may have ended in between
            seconds += _cpu_with_children(int(child))
    return seconds

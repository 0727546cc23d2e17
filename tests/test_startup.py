"""Start-up as an operator meets it: a real `python -m bot serve` in a subprocess, with the
misconfigurations that used to print an error and hang. Each must exit non-zero within
seconds with one clear line on stderr and no traceback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import site
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, one_clear_line, serve

KEY = "startup-test-secret-key-0123456789abcdef"
SID = "AC" + "1" * 32
POSTGRES = os.environ.get("HAVEN_TEST_POSTGRES", "")


def _corrupt(folder: Path) -> dict[str, str]:
    (folder / "haven.db").write_bytes(b"this is not a database file at all" * 100)
    return {}


def _port_in_use(folder: Path) -> dict[str, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    _HELD.append(sock)
    return {"PORT": str(sock.getsockname()[1])}


def _pending_migrations_in_production(folder: Path) -> dict[str, str]:
    return {
        "HAVEN_ENV": "production",
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": "tok",
        "TWILIO_FROM_NUMBER": "+15005550006",
    }


_HELD: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _release(tmp_path: Path) -> Iterator[None]:
    yield
    tmp_path.chmod(0o700)
    for sock in _HELD:
        sock.close()
    _HELD.clear()


CASES: dict[str, tuple[Callable[[Path], dict[str, str]], str]] = {
    "bad port": (lambda _: {"PORT": "eighty"}, "PORT"),
    "bad timer": (lambda _: {"HAVEN_NUDGE_AFTER": "-5"}, "HAVEN_NUDGE_AFTER"),
    "bad hours": (lambda _: {"HAVEN_HOURS": "whenever"}, "HAVEN_HOURS"),
    "bad env": (lambda _: {"HAVEN_ENV": "prod"}, "HAVEN_ENV"),
    "short key": (lambda _: {"HAVEN_SECRET_KEY": "short"}, "HAVEN_SECRET_KEY"),
    "sid and token, no from-number": (
        lambda _: {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok"},
        "TWILIO_FROM_NUMBER",
    ),
    "production with a token but no account": (
        lambda _: {"HAVEN_ENV": "production", "TWILIO_AUTH_TOKEN": "tok"},
        "TWILIO_ACCOUNT_SID",
    ),
    "corrupt haven.db": (_corrupt, "haven.db"),
    "port in use": (_port_in_use, "in use"),
    "pending migrations in production": (_pending_migrations_in_production, "migrate"),
    "unreachable PostgreSQL": (
        lambda _: {"DATABASE_URL": f"postgresql://haven@127.0.0.1:{free_port()}/haven"},
        "PostgreSQL",
    ),
    "PostgreSQL that never answers": (
        # A routable address that drops packets: the connection attempt must time out.
        lambda _: {"DATABASE_URL": "postgresql://haven@10.255.255.1:5432/haven"},
        "PostgreSQL",
    ),
}


def said_serving(stderr: str) -> bool:
    """Whether a JSON log line with the event "serving" is on stderr."""
    events = []
    for line in stderr.splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line).get("event"))
    return "serving" in events


def test_serving_is_logged_once_the_server_listens(tmp_path: Path) -> None:
    """A start-up that works logs "serving" (with no number or secret in it), and only
    after the port accepts connections: the line means what it says."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "TWILIO_"))}
    environ.pop("DATABASE_URL", None)
    environ |= {"PYTHONPATH": str(ROOT), "HAVEN_LOG_FORMAT": "json", "PORT": str(port)}
    environ |= {"HAVEN_SECRET_KEY": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=environ,
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        seen = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
            if said_serving(line):
                # Listening already: a connection succeeds at once.
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                entry = json.loads(line)
                assert entry["database"] == "sqlite", entry
                # uvloop is a dependency: serve runs on it.
                assert entry["loop"] == "uvloop", entry
                return
        pytest.fail(f"no 'serving' line within 20 s:\n{seen}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("case", list(CASES))
def test_start_up_error_exits_fast_with_one_clear_line(tmp_path: Path, case: str) -> None:
    """Each misconfiguration ends `serve` with a non-zero exit code in under 10 s, with one
    'error:' line on stderr that names the problem, and no traceback."""
    make, named = CASES[case]
    env = {"HAVEN_SECRET_KEY": KEY, **make(tmp_path)}
    code, stderr, seconds = serve(tmp_path, env)
    assert code not in (0, -999), f"{case}: exit {code}\n{stderr}"
    assert seconds < 10, f"{case}: took {seconds:.1f} s"
    line = one_clear_line(stderr)
    assert named.lower() in line.lower(), line
    assert not said_serving(stderr), f"{case}: 'serving' logged before the error\n{stderr}"


# -- a haven.db the serving user cannot write, or cannot read ---------------------------------
# Root writes through permissions, so as root `serve` runs as nobody (uid and gid 65534).
NOBODY = 65534


def _python_for(uid: int) -> tuple[str, tuple[str, ...]]:
    """An interpreter `uid` can run with this checkout's packages: ours if it can reach it,
    else the system's of the same version with our site-packages on its path (ours may sit
    under a home folder only root may enter)."""
    ours = tuple(site.getsitepackages())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python, extra in ((sys.executable, ()), (f"/usr/bin/python{version}", ours)):
        try:
            probe = subprocess.run(
                [python, "-c", "import aiohttp, bot.app"],
                cwd="/",
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(ROOT), *extra])},
                capture_output=True,
                user=uid,
                group=uid,
                extra_groups=[],
            )
        except OSError:  # not even executable by that user
            continue
        if probe.returncode == 0:
            return python, extra
    pytest.fail(f"no Python interpreter that uid {uid} can run with Haven's packages")


@pytest.mark.parametrize("denied", ["write", "read"])
def test_a_haven_db_the_user_cannot_write_or_read_stops_start_up(denied: str) -> None:
    """A haven.db from an earlier run that the serving user may read but not write (file
    and folder), or may not read at all: `serve`, run as an unprivileged user (as root:
    uid/gid 65534), exits non-zero within 10 s with one 'error:' line naming haven.db and
    no traceback, instead of hanging."""
    if os.geteuid() == 0:
        uid: int | None = NOBODY
        python, extra = _python_for(NOBODY)
    else:
        uid, python, extra = None, sys.executable, ()  # already unprivileged
    folder = Path(tempfile.mkdtemp(prefix="haven-ro-"))
    try:
        code, stderr, _ = serve(folder, {"HAVEN_SECRET_KEY": KEY}, ("migrate",))
        assert code == 0, stderr
        db = folder / "haven.db"
        # Root's files: readable by all, or by root alone. One's own: read-only, or no access.
        if uid is not None:
            db.chmod(0o644 if denied == "write" else 0o600)
        else:
            db.chmod(0o444 if denied == "write" else 0o000)
        folder.chmod(0o755 if uid is not None else 0o555)  # no new -wal or -shm files either
        code, stderr, seconds = serve(
            folder, {"HAVEN_SECRET_KEY": KEY}, python=python, python_path=extra, uid=uid
        )
        assert code not in (0, -999), f"exit {code}\n{stderr}"
        assert seconds < 10, f"took {seconds:.1f} s"
        assert "haven.db" in one_clear_line(stderr)
        assert not said_serving(stderr), f"'serving' logged before the error\n{stderr}"
    finally:
        folder.chmod(0o700)
        shutil.rmtree(folder, ignore_errors=True)

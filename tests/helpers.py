"""Plain helpers the tests share (fixtures live in conftest.py files; nothing imports from
a conftest): signing webhooks as Twilio does, message SIDs, signing in to the dashboard,
and the PostgreSQL test database."""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import Store, open_store
from bot.store.base import Message, User

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
AUTH_TOKEN = "test-auth-token-12345"
PUBLIC_URL = "https://haven.example.org"
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[1]
# The fictional local resource directory the README's first run imports.
SAMPLE = ROOT / "examples" / "hsds-sample"
# The PostgreSQL database for the store suite (CI always sets it); empty: SQLite only.
PG_URL = os.environ.get("HAVEN_TEST_POSTGRES", "")

SignedPost = Callable[..., Awaitable[Any]]
MakeUser = Callable[..., Awaitable[User]]


@asynccontextmanager
async def pg_schema_url(prefix: str = "haven_app") -> AsyncIterator[str]:
    """A database URL for a fresh schema on HAVEN_TEST_POSTGRES (its search_path), dropped
    afterwards: for whole apps (several on one database) on PostgreSQL."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@dataclass
class Backend:
    name: str
    make: Callable[[], Store]  # a new, unopened Store on the same database (a "restart")
    raw_dump: Callable[[], Awaitable[bytes]]  # everything stored, as the database holds it


def sign(path: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature exactly as Twilio computes it."""
    return str(RequestValidator(token).compute_signature(PUBLIC_URL + path, dict(params)))


_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032d}"


_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
_CSRF_FIELD = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html) or _CSRF_FIELD.search(html)
    assert match, "page has no CSRF token"
    return match[1]


async def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the new session's CSRF token."""
    page = await client.get("/login")
    token = csrf_of(await page.text())
    response = await client.post(
        "/login",
        data={"name": name, "password": password, "_csrf": token},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    queue = await client.get("/dashboard/queue", headers={"Accept": "text/html"})
    assert queue.status == 200
    return csrf_of(await queue.text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secure_jar(port: int) -> CookieJar:
    """The app's cookie is Secure (the test public URL is https) while the test server
    speaks plain HTTP on 127.0.0.1, as a TLS-terminating proxy would see it; treat that
    origin as secure, as browsers treat localhost."""
    return CookieJar(unsafe=True, treat_as_secure_origin=[f"http://127.0.0.1:{port}"])


# -- the outbox: texts queued as the engine queues them ------------------------------------
OUTBOX_SECRET = "outbox-test-secret-key-0123456789abcdef"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


async def new_conversation(store: Store, phone: str = "+15551230042") -> int:
    async with store.transaction() as tx:
        texter = await tx.create_texter(Crypto(OUTBOX_SECRET).lookup_hash(phone), phone, "en", NOW)
        return (await tx.create_conversation(texter.id, "en", NOW)).id


async def queue_text(store: Store, conversation_id: int, body: str) -> int:
    async with store.transaction() as tx:
        conv = await tx.get_conversation(conversation_id)
        texter = await tx.get_texter(conv.texter_id)
        message = await tx.add_message(
            Message(conversation_id, "out", body, author="haven", status="queued")
        )
        assert message.id is not None
        await tx.enqueue_outbound(message.id, texter.phone, NOW)
        return message.id


async def message(store: Store, conversation_id: int, message_id: int) -> Message:
    async with store.transaction() as tx:
        (found,) = [m for m in await tx.list_messages(conversation_id) if m.id == message_id]
        return found


async def open_outbox_store(settings: Settings) -> Store:
    store = open_store(settings, Crypto(OUTBOX_SECRET))
    await store.open()
    await store.migrate()
    return store


# -- a real `python -m bot` in a subprocess ---------------------------------------------------
def serve(
    cwd: Path,
    env: dict[str, str],
    args: tuple[str, ...] = ("serve",),
    *,
    python: str = sys.executable,
    python_path: tuple[str, ...] = (),
    uid: int | None = None,
) -> tuple[int, str, float]:
    """Run `python -m bot serve`; return (exit code, stderr, seconds taken). A server that
    stays up past 20 s is killed and reported as exit code None's stand-in, -999. With
    `uid`, it runs as that user and group (same number), with no supplementary groups."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "TWILIO_"))}
    environ.pop("DATABASE_URL", None)
    environ |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT), *python_path]),
        "HAVEN_LOG_FORMAT": "json",
        "PORT": str(free_port()),
    }
    environ |= env
    as_user: dict[str, Any] = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [python, "-m", "bot", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=environ,
            timeout=20,
            **as_user,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return -999, err, time.perf_counter() - started
    return done.returncode, done.stderr, time.perf_counter() - started


def one_clear_line(stderr: str) -> str:
    """The error line: exactly one line that starts 'error:' and no traceback. Log lines
    (JSON, written before the failure) may precede it."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert all(line.startswith("{") for line in lines if line not in errors), stderr
    return errors[0]

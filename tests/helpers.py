"""Plain helpers the tests share (fixtures live in conftest.py files; nothing imports from
a conftest): signing webhooks as Twilio does, message SIDs, signing in to the dashboard,
and the PostgreSQL test database."""

from __future__ import annotations

import itertools
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from bot.store import Store
from bot.store.base import User

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

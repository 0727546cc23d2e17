"""Dashboard helpers: accounts made through the real `users add` code path, and sign-in
through the real login form (CSRF token and all)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from bot.dashboard.accounts import add_user_cli
from bot.keys import STORE
from bot.store.base import User

PASSWORD = "correct horse battery"
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


MakeUser = Callable[..., Awaitable[User]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def secure_jar(port: int) -> CookieJar:
    """The app's cookie is Secure (the test public URL is https) while the test server
    speaks plain HTTP on 127.0.0.1, as a TLS-terminating proxy would see it; treat that
    origin as secure, as browsers treat localhost."""
    return CookieJar(unsafe=True, treat_as_secure_origin=[f"http://127.0.0.1:{port}"])


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient:
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    made: TestClient = await aiohttp_client(server, cookie_jar=secure_jar(port))
    return made


@pytest.fixture
def make_user(client: TestClient) -> MakeUser:
    async def make(name: str, role: str = "advocate", teams: tuple[str, ...] = ()) -> User:
        return await add_user_cli(client.server.app[STORE], name, role, PASSWORD, teams)

    return make


@pytest.fixture
async def second_client(client: TestClient) -> AsyncIterator[TestClient]:
    """Another browser (its own cookie jar) against the same running app."""
    other: TestClient = TestClient(client.server, cookie_jar=secure_jar(client.port))
    await other.start_server()
    yield other
    await other.session.close()

"""Dashboard fixtures: accounts made through the real `users add` code path, and a second
browser (its own cookie jar) against the same running app. Signing in is
tests.helpers.sign_in, through the real login form (CSRF token and all)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from bot.dashboard.accounts import add_user_cli
from bot.keys import STORE
from bot.store.base import User
from tests.helpers import PASSWORD, MakeUser, secure_jar


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

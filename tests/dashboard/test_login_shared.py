"""The login throttle is shared by every process on one database (issue 10): two app
instances on one store (a SQLite file, or a PostgreSQL schema), like two `serve`
processes, count one budget of guesses between them, even when the guesses arrive at both
at once; and a stranger's guesses there still never lock a named user out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.dashboard.accounts import add_user_cli
from bot.keys import STORE
from bot.settings import Settings
from tests.dashboard.test_login_abuse import WRONG, _login, _token
from tests.helpers import PASSWORD, PG_URL, free_port, pg_schema_url, secure_jar

STRANGER = "203.0.113.7"
ANA_AT_WORK = "198.51.100.4"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shared_settings(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[Settings]:
    """Settings for one database both apps use; behind a proxy on this machine, so
    X-Forwarded-For tells browsers apart."""
    settings = settings.with_(trusted_proxies=("127.0.0.1/32",))
    if request.param == "sqlite":
        yield settings  # the test's haven.db file
        return
    if not PG_URL:
        pytest.skip("HAVEN_TEST_POSTGRES is not set")
    async with pg_schema_url("haven_login") as url:
        yield settings.with_(database_url=url)


@pytest.fixture
async def two_apps(shared_settings: Settings, aiohttp_client: Any) -> list[TestClient]:
    """Two app instances (each its own store connection, throttle and sessions) on the
    same database, each with a browser of its own."""
    clients = []
    for _ in range(2):
        port = free_port()
        server = TestServer(create_app(shared_settings), host="127.0.0.1", port=port)
        clients.append(await aiohttp_client(server, cookie_jar=secure_jar(port)))
    await add_user_cli(clients[0].server.app[STORE], "ana", "advocate", PASSWORD)
    return clients


async def test_sixty_guesses_at_two_processes_at_once_check_at_most_five(
    two_apps: list[TestClient],
) -> None:
    """60 guesses for one name sent at once, alternating between the two apps, the right
    password at #45: at most 5 are checked between both (a per-process count allowed 5 at
    each), the rest get 429, and #45 does not get in."""
    tokens = [await _token(c) for c in two_apps]
    passwords = [WRONG] * 60
    passwords[45] = PASSWORD
    statuses = await asyncio.gather(
        *(_login(two_apps[i % 2], tokens[i % 2], "ana", p) for i, p in enumerate(passwords))
    )
    checked = [s for s in statuses if s in (401, 303)]
    assert len(checked) <= 5, statuses
    assert statuses[45] == 429, statuses


async def test_fifty_wrong_guesses_at_two_processes_get_exactly_five_checks(
    two_apps: list[TestClient],
) -> None:
    """50 wrong guesses at once, alternating between the apps: exactly 5 are checked
    (401) and 45 refused (429) in all."""
    tokens = [await _token(c) for c in two_apps]
    statuses = await asyncio.gather(
        *(_login(two_apps[i % 2], tokens[i % 2], "ana", WRONG) for i in range(50))
    )
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 45, statuses


async def test_a_stranger_locked_at_one_process_is_locked_at_the_other_not_ana(
    two_apps: list[TestClient],
) -> None:
    """A stranger's five wrong guesses for 'ana' at the first app lock the stranger out at
    the second too (even with the right password), while Ana, from her own address, signs
    in at the second."""
    first, second = two_apps
    token = await _token(first)
    for _ in range(5):
        assert await _login(first, token, "ana", WRONG, STRANGER) == 401
    token = await _token(second)
    assert await _login(second, token, "ana", PASSWORD, STRANGER) == 429
    assert await _login(second, token, "ana", PASSWORD, ANA_AT_WORK) == 303

"""Account changes end the account's open sessions (issue 10): enrolling in TOTP, a new
password, a new role and disabling each bump the user's session epoch, which every request
checks, so a session signed in before the change (in any browser) is signed out at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from bot.dashboard import accounts
from bot.keys import STORE
from bot.store.base import Store
from tests.helpers import MakeUser, secure_jar, sign_in

Change = Callable[[Store, str], Awaitable[object]]

CHANGES: dict[str, Change] = {
    "enrol in totp": lambda store, name: accounts.set_totp_cli(store, name),
    "totp off": lambda store, name: accounts.set_totp_cli(store, name, enable=False),
    "new password": lambda store, name: accounts.set_password_cli(store, name, "another pass 123"),
    "new role": lambda store, name: accounts.set_role_cli(store, name, "advocate"),
    "disabled": lambda store, name: accounts.disable_user_cli(store, name),
}


async def _signed_in(client: TestClient) -> bool:
    response = await client.get("/dashboard/queue", allow_redirects=False)
    await response.read()
    return response.status == 200


@pytest.mark.parametrize("change", list(CHANGES))
async def test_an_account_change_ends_its_open_sessions(
    client: TestClient, second_client: TestClient, make_user: MakeUser, change: str
) -> None:
    """Two browsers signed in as one supervisor, a colleague signed in too; after the
    change (made at the console) both of the supervisor's sessions get 401, the
    colleague's goes on."""
    await make_user("sue", role="supervisor")
    await sign_in(client, "sue")
    await sign_in(second_client, "sue")
    await make_user("ana")
    other: TestClient = TestClient(client.server, cookie_jar=secure_jar(client.port))
    await other.start_server()
    try:
        await sign_in(other, "ana")
        assert await _signed_in(client) and await _signed_in(second_client)
        await CHANGES[change](client.server.app[STORE], "sue")
        assert not await _signed_in(client)
        assert not await _signed_in(second_client)
        assert await _signed_in(other)
    finally:
        await other.session.close()

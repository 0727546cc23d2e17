"""Login behind a trusted proxy (HAVEN_TRUSTED_PROXIES names 127.0.0.1, where the test
client connects from), so X-Forwarded-For tells browsers apart: a guesser is stopped at their
own address, and a stranger's guesses never lock a named user out (issue 10)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from bot.settings import Settings, SettingsError
from tests.dashboard.test_login_abuse import WRONG, _login, _token
from tests.helpers import PASSWORD, MakeUser

STRANGER = "203.0.113.7"
ANA_AT_WORK = "198.51.100.4"


# Haven behind a proxy on this machine: the test client's address is the proxy's.
pytestmark = pytest.mark.settings(trusted_proxies=("127.0.0.1/32",))


async def test_forwarded_for_is_believed_from_a_trusted_proxy(
    client: TestClient, make_user: MakeUser
) -> None:
    """The hop the proxy appended names the browser: one browser's spray of twenty names
    locks that browser, not a colleague signing in from another."""
    await make_user("ana")
    token = await _token(client)
    for i in range(20):
        assert await _login(client, token, f"guess{i}", WRONG, STRANGER) == 401
    assert await _login(client, token, "ana", PASSWORD, STRANGER) == 429
    assert await _login(client, token, "ana", PASSWORD, ANA_AT_WORK) == 303


async def test_a_strangers_guesses_do_not_lock_the_named_user_out(
    client: TestClient, make_user: MakeUser
) -> None:
    """A stranger's wrong guesses for 'ana' from one address stop the stranger (even the
    right password is refused there) but Ana, from an address that has not been failing,
    still signs in with her password."""
    await make_user("ana")
    token = await _token(client)
    statuses = [await _login(client, token, "ana", WRONG, STRANGER) for _ in range(12)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert await _login(client, token, "ana", PASSWORD, STRANGER) == 429
    assert await _login(client, token, "ana", PASSWORD, ANA_AT_WORK) == 303


async def test_many_addresses_guessing_one_name_get_one_guess_each_once_it_is_hot(
    client: TestClient, make_user: MakeUser
) -> None:
    """Guessing spread over many addresses is bounded too: once a name has had its soft
    limit of failures, an address that has failed is refused for it at once, while a clean
    address (Ana's) is still checked."""
    await make_user("ana")
    token = await _token(client)
    # Ten addresses fail twice each: twenty failures for 'ana', never five from one place.
    for i in range(10):
        for _ in range(2):
            assert await _login(client, token, "ana", WRONG, f"192.0.2.{i}") in (401, 429)
    assert await _login(client, token, "ana", WRONG, "192.0.2.3") == 429
    assert await _login(client, token, "ana", PASSWORD, ANA_AT_WORK) == 303


def test_trusted_proxies_are_parsed_and_checked() -> None:
    """HAVEN_TRUSTED_PROXIES takes addresses and CIDRs (none by default); anything else
    stops start-up naming the variable."""
    assert Settings.from_env({}).trusted_proxies == ()
    proxied = Settings.from_env({"HAVEN_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert proxied.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    assert len(proxied.trusted_networks) == 2
    with pytest.raises(SettingsError, match="HAVEN_TRUSTED_PROXIES"):
        Settings.from_env({"HAVEN_TRUSTED_PROXIES": "proxy.example"})

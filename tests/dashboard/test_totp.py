"""The optional TOTP second factor (issue 10), through the real login form: an enrolled
account needs a current authenticator code, a missing, wrong or stale one is the same 401 as
a wrong password (and counted by the login throttle), others sign in as before, and the
secret is encrypted at rest on both backends."""

from __future__ import annotations

import time
import urllib.parse

import pyotp
import pytest
from aiohttp.test_utils import TestClient

from bot.__main__ import build_parser, cmd_users_change
from bot.dashboard.accounts import AccountError, add_user_cli, set_totp_cli
from bot.keys import STORE
from bot.settings import Settings
from bot.store.base import Store
from tests.helpers import PASSWORD, Backend, MakeUser, csrf_of, sign_in


def _secret_of(uri: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]


async def _enrolled(client: TestClient, name: str, role: str = "supervisor") -> str:
    """An account made by `users add` and enrolled by `users totp`; its secret."""
    store = client.server.app[STORE]
    await add_user_cli(store, name, role, PASSWORD)
    uri = await set_totp_cli(store, name)
    assert uri is not None
    return _secret_of(uri)


async def _login(client: TestClient, name: str, code: str | None) -> int:
    token = csrf_of(await (await client.get("/login")).text())
    data = {"name": name, "password": PASSWORD, "_csrf": token}
    if code is not None:
        data["code"] = code
    response = await client.post("/login", data=data, allow_redirects=False)
    await response.read()
    return response.status


async def test_login_form_offers_the_code_field(client: TestClient) -> None:
    """The sign-in page always shows the optional authenticator code field."""
    page = await (await client.get("/login")).text()
    assert 'name="code"' in page and "Authenticator code (if set up)" in page


async def test_enrolled_supervisor_needs_a_current_code(client: TestClient) -> None:
    """With TOTP on, the right password alone is a 401, as is a wrong code or one from
    three windows ago; the current code signs in (and the queue opens)."""
    secret = await _enrolled(client, "sue")
    totp = pyotp.TOTP(secret)
    assert await _login(client, "sue", None) == 401
    assert await _login(client, "sue", "") == 401
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    assert await _login(client, "sue", wrong) == 401
    assert await _login(client, "sue", totp.at(time.time() - 90)) == 401
    assert await _login(client, "sue", totp.now()) == 303
    queue = await client.get("/dashboard/queue", headers={"Accept": "text/html"})
    assert queue.status == 200


async def test_a_code_from_the_previous_window_is_accepted(client: TestClient) -> None:
    """valid_window=1: a code from the 30-second window just past still works (clock drift)."""
    secret = await _enrolled(client, "ada", role="admin")
    assert await _login(client, "ada", pyotp.TOTP(secret).at(time.time() - 30)) == 303


async def test_missing_codes_are_counted_by_the_login_throttle(client: TestClient) -> None:
    """Attempts refused for want of a code count like wrong passwords: after five, even the
    right password and code wait (429), so codes cannot be guessed without limit."""
    secret = await _enrolled(client, "sue")
    for _ in range(5):
        assert await _login(client, "sue", "000000" if _ else None) == 401
    assert await _login(client, "sue", pyotp.TOTP(secret).now()) == 429


async def test_unenrolled_users_sign_in_as_before(client: TestClient, make_user: MakeUser) -> None:
    """Without TOTP, name and password suffice, and a stray code is ignored; `--off` takes
    an enrolled account back to that."""
    await make_user("ana")
    await sign_in(client, "ana")
    other = await _enrolled(client, "sue")
    assert other
    assert await set_totp_cli(client.server.app[STORE], "sue", enable=False) is None
    client.session.cookie_jar.clear()
    assert await _login(client, "sue", "123456") == 303


async def test_users_totp_command_prints_the_uri_and_off_removes_it(
    client: TestClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`users totp NAME` prints an otpauth:// URI whose secret signs in; `--off` removes
    it; an unknown name is an AccountError; both changes are audited."""
    store = client.server.app[STORE]
    await add_user_cli(store, "sue", "supervisor", PASSWORD)
    args = build_parser().parse_args(["users", "totp", "sue"])
    assert await cmd_users_change(settings, args) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]  # after any log lines
    assert uri.startswith("otpauth://totp/") and "issuer=Haven" in uri
    assert await _login(client, "sue", None) == 401
    assert await _login(client, "sue", pyotp.TOTP(_secret_of(uri)).now()) == 303
    args = build_parser().parse_args(["users", "totp", "sue", "--off"])
    assert await cmd_users_change(settings, args) == 0
    assert "otpauth" not in capsys.readouterr().out
    async with store.transaction() as tx:
        user = await tx.get_user_by_name("sue")
        assert user is not None and await tx.get_totp_secret(user.id) is None
        actions = [a.action for a in await tx.list_audit()]
    assert actions[:3] == ["user_totp_off", "login", "user_totp_on"]
    with pytest.raises(AccountError):
        await set_totp_cli(store, "nobody")


async def test_secret_is_encrypted_at_rest(store: Store, backend: Backend) -> None:
    """The stored secret reads back through the store, but the raw database (SQLite file or
    every PostgreSQL row) never holds it in plaintext; removing it stores NULL."""
    user = await add_user_cli(store, "sue", "supervisor", PASSWORD)
    secret = pyotp.random_base32()
    async with store.transaction() as tx:
        await tx.set_totp_secret(user.id, secret)
    async with store.transaction() as tx:
        assert await tx.get_totp_secret(user.id) == secret
    assert secret.encode() not in await backend.raw_dump()
    async with store.transaction() as tx:
        await tx.set_totp_secret(user.id, None)
        assert await tx.get_totp_secret(user.id) is None


async def test_a_code_is_good_once(client: TestClient, second_client: TestClient) -> None:
    """A code that signed in cannot sign in again, from another browser, within its window
    (a shoulder-surfed or phished code is spent); nor can an older code after a newer one;
    the next window's code works."""
    secret = await _enrolled(client, "sue")
    totp, now = pyotp.TOTP(secret), time.time()
    assert await _login(client, "sue", totp.at(now)) == 303
    assert await _login(second_client, "sue", totp.at(now)) == 401
    assert await _login(second_client, "sue", totp.at(now - 30)) == 401
    assert await _login(second_client, "sue", totp.at(now + 30)) == 303


async def test_totp_steps_are_used_once_atomically(store: Store) -> None:
    """The store's record of the last accepted step, on both backends: a step is taken once,
    an older one never after it, a newer one is; a new secret starts afresh."""
    user = await add_user_cli(store, "sue", "supervisor", PASSWORD)
    async with store.transaction() as tx:
        await tx.set_totp_secret(user.id, pyotp.random_base32())
    results = []
    for step in (100, 100, 99, 101):
        async with store.transaction() as tx:
            results.append(await tx.use_totp_step(user.id, step))
    assert results == [True, False, False, True]
    async with store.transaction() as tx:
        await tx.set_totp_secret(user.id, pyotp.random_base32())
        assert await tx.use_totp_step(user.id, 50)

"""Login under attack, through the real app (issue 10): concurrent guesses are counted before
the password is checked, hashing stays off the event loop, X-Forwarded-For is believed only
from configured proxies, and a stranger's guesses cannot lock a named user out."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request

from aiohttp.test_utils import TestClient

from bot.dashboard.accounts import hash_password, verify_password
from tests.helpers import PASSWORD, MakeUser, csrf_of, new_sid, sign

WRONG = "wrong-password-guess"


async def _token(client: TestClient) -> str:
    return csrf_of(await (await client.get("/login")).text())


async def _login(
    client: TestClient, token: str, name: str, password: str, forwarded: str | None = None
) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = await client.post(
        "/login",
        data={"name": name, "password": password, "_csrf": token},
        headers=headers,
        allow_redirects=False,
    )
    await response.read()
    return response.status


async def test_sixty_simultaneous_guesses_check_at_most_the_limit(
    client: TestClient, make_user: MakeUser
) -> None:
    """60 guesses for one name sent at once, the right password at #45: at most 5 are
    checked (401/303), the rest are refused with 429 before their password is looked at,
    and the right password at #45 does not get in."""
    await make_user("ana")
    token = await _token(client)
    passwords = [WRONG] * 60
    passwords[45] = PASSWORD
    statuses = await asyncio.gather(*(_login(client, token, "ana", p) for p in passwords))
    checked = [s for s in statuses if s in (401, 303)]
    assert len(checked) <= 5, statuses
    assert statuses.count(429) >= 55, statuses
    assert statuses[45] == 429, statuses
    assert (await client.get("/dashboard/queue", allow_redirects=False)).status == 401


async def test_fifty_simultaneous_wrong_guesses_are_refused_past_the_limit(
    client: TestClient, make_user: MakeUser
) -> None:
    """50 wrong guesses at once: exactly the limit (5) are checked and refused with 401,
    the other 45 get 429 without a password check."""
    await make_user("ana")
    token = await _token(client)
    statuses = await asyncio.gather(*(_login(client, token, "ana", WRONG) for _ in range(50)))
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 45, statuses


def _webhook_seconds(url: str, number: str) -> tuple[float, float]:
    """One signed webhook sent from another thread (its own clock, not the app's event
    loop): when it started and how long it took."""
    params = {
        "MessageSid": new_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": number,
        "To": "+15559990000",
        "Body": "hello",
        "NumMedia": "0",
    }
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign("/twilio/sms", params)},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        assert response.status == 200
    return started, time.perf_counter() - started


async def test_logins_do_not_slow_the_texters_webhook(client: TestClient) -> None:
    """During 20 simultaneous sign-in attempts (each an argon2 verification), the event loop
    that serves the texters' webhook is never held for as long as two (on the loop, the
    hashes run back to back and hold it for seconds), and
    webhooks sent back to back all the while keep answering: the hashing runs off the loop.
    Before the fix the webhook waited for every hash (13 ms became 2,448 ms)."""
    url = str(client.make_url("/twilio/sms"))
    await asyncio.to_thread(_webhook_seconds, url, "+15551110000")  # warm-up
    alone = max(
        [(await asyncio.to_thread(_webhook_seconds, url, f"+1555111000{i}"))[1] for i in (1, 2, 3)]
    )
    started_hash = time.perf_counter()
    verify_password(hash_password("a-password"), WRONG)
    two_hashes = time.perf_counter() - started_hash  # one hash and one verification
    token = await _token(client)
    logins_running = True
    stalls: list[float] = []

    async def loop_watch() -> None:
        # How late a 5 ms sleep wakes: how long something held the loop.
        while logins_running:
            due = time.perf_counter() + 0.005
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - due)

    def webhooks_meanwhile() -> list[float]:
        seconds = []
        while logins_running:
            seconds.append(_webhook_seconds(url, f"+1555112{len(seconds):04d}")[1])
        return seconds

    watching = asyncio.ensure_future(loop_watch())
    sending = asyncio.ensure_future(asyncio.to_thread(webhooks_meanwhile))
    statuses = await asyncio.gather(*(_login(client, token, f"guest{i}", WRONG) for i in range(20)))
    logins_running = False
    during = await sending
    await watching
    assert all(s == 401 for s in statuses), statuses  # all 20 were really checked
    assert during, "no webhook was answered while the logins ran"
    assert max(stalls) < two_hashes, (max(stalls), two_hashes)
    assert max(during) < alone * 10 + two_hashes, (alone, two_hashes, during)


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    client: TestClient, make_user: MakeUser
) -> None:
    """Served directly (no trusted proxies, the default), a guesser cannot dodge the
    per-address limit by inventing a new X-Forwarded-For for every guess."""
    token = await _token(client)
    statuses = [
        await _login(client, token, f"guess{i}", WRONG, forwarded=f"198.51.100.{i}")
        for i in range(25)
    ]
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}, statuses

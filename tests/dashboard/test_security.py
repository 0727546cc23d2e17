"""Sign-in, sessions, CSRF, security headers and role checks, through the real app."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.dashboard.security import COOKIE_NAME
from bot.keys import STORE
from tests.helpers import PASSWORD, MakeUser, csrf_of, sign_in


def dashboard_routes(client: TestClient) -> list[tuple[str, str, frozenset[str]]]:
    """(method, path with {cid} filled, roles allowed) for every dashboard and ws route."""
    found = []
    for route in client.server.app.router.routes():
        info = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or not info.startswith(("/dashboard", "/ws", "/logout")):
            continue
        roles = getattr(route.handler, "roles", None)
        assert roles is not None, f"{route.method} {info} has no role check"
        found.append((route.method, info.replace("{cid}", "1"), roles))
    assert len(found) >= 20
    return found


async def test_every_dashboard_route_refuses_anonymous_requests(client: TestClient) -> None:
    """With no session, every dashboard route (and /ws) answers 401 or sends the browser to
    /login; a POST carrying a valid anonymous CSRF token is still 401."""
    token = csrf_of(await (await client.get("/login")).text())
    for method, path, _roles in dashboard_routes(client):
        if method == "GET":
            response = await client.get(path, allow_redirects=False)
            assert response.status == 401, (path, response.status)
            page = await client.get(path, headers={"Accept": "text/html"}, allow_redirects=False)
            assert page.status in (303, 401), (path, page.status)
            if page.status == 303:
                assert page.headers["Location"] == "/login"
        else:
            bare = await client.post(path, data={}, allow_redirects=False)
            assert bare.status == 403, (path, bare.status)  # no CSRF token: refused first
            response = await client.post(
                path, data={"_csrf": token, "body": "x", "to": "queue"}, allow_redirects=False
            )
            assert response.status == 401, (path, response.status)


async def test_wrong_role_is_refused_on_every_route(
    client: TestClient, make_user: MakeUser
) -> None:
    """An advocate gets 403 from every supervisor-only route; an admin (who supervises but
    takes no texters) gets 403 from take-next, claim, transfer and accept."""
    await make_user("ana", "advocate")
    token = await sign_in(client, "ana")
    checked = 0
    for method, path, roles in dashboard_routes(client):
        if "advocate" in roles:
            continue
        if method == "GET":
            response = await client.get(path, allow_redirects=False)
        else:
            response = await client.post(
                path, data={"_csrf": token, "to": "1"}, allow_redirects=False
            )
        assert response.status == 403, (path, response.status)
        checked += 1
    assert checked >= 7
    await client.post("/logout", data={"_csrf": token})
    await make_user("root", "admin")
    token = await sign_in(client, "root")
    for method, path, roles in dashboard_routes(client):
        if method == "POST" and "admin" not in roles:
            response = await client.post(path, data={"_csrf": token}, allow_redirects=False)
            assert response.status == 403, (path, response.status)


async def test_websocket_refuses_anonymous_and_cross_origin(
    client: TestClient, make_user: MakeUser
) -> None:
    """/ws: no session → 401; signed in but from another site's page → 403; same site works."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as anon:
        await client.ws_connect("/ws")
    assert anon.value.status == 401
    await make_user("ana")
    await sign_in(client, "ana")
    with pytest.raises(aiohttp.WSServerHandshakeError) as cross:
        await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert cross.value.status == 403
    ws = await client.ws_connect("/ws", headers={"Origin": f"http://{client.host}:{client.port}"})
    assert not ws.closed
    await ws.close()


async def test_login_sets_a_hardened_session_cookie(
    client: TestClient, make_user: MakeUser
) -> None:
    """The session cookie is HttpOnly, SameSite=Strict and Secure (public URL is https),
    and its content is encrypted (no user id in clear)."""
    await make_user("ana")
    page = await client.get("/login")
    token = csrf_of(await page.text())
    response = await client.post(
        "/login", data={"name": "ana", "password": PASSWORD, "_csrf": token}, allow_redirects=False
    )
    assert response.status == 303
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True or cookie["httponly"] == "true" or cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["secure"]
    assert '"uid"' not in cookie.value and "uid" not in cookie.value


async def test_wrong_password_is_refused_and_gets_no_session(
    client: TestClient, make_user: MakeUser
) -> None:
    """A wrong password gives 401 and the dashboard stays closed."""
    await make_user("ana")
    token = csrf_of(await (await client.get("/login")).text())
    response = await client.post(
        "/login", data={"name": "ana", "password": "nope-nope-nope", "_csrf": token}
    )
    assert response.status == 401
    assert (await client.get("/dashboard/queue", allow_redirects=False)).status == 401


async def test_login_without_csrf_token_is_refused(client: TestClient, make_user: MakeUser) -> None:
    """POST /login with a missing or wrong CSRF token is 403 even with the right password."""
    await make_user("ana")
    token = csrf_of(await (await client.get("/login")).text())
    missing = await client.post("/login", data={"name": "ana", "password": PASSWORD})
    wrong = await client.post(
        "/login", data={"name": "ana", "password": PASSWORD, "_csrf": token[:-2] + "xx"}
    )
    assert missing.status == 403 and wrong.status == 403
    assert (await client.get("/dashboard/queue", allow_redirects=False)).status == 401


async def test_state_change_without_csrf_changes_nothing(
    client: TestClient, make_user: MakeUser
) -> None:
    """A signed-in advocate's POST without the token (a forged request) is 403 and the
    presence stays as it was (signing in made her available); with the token (form field or
    header) it changes."""
    user = await make_user("ana")
    token = await sign_in(client, "ana")
    forged = await client.post("/dashboard/presence", data={"presence": "away", "capacity": "2"})
    assert forged.status == 403
    async with client.server.app[STORE].transaction() as tx:
        assert (await tx.get_user(user.id)).presence == "available"
    ok = await client.post(
        "/dashboard/presence",
        data={"presence": "away", "capacity": "2"},
        headers={"X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert ok.status == 200
    async with client.server.app[STORE].transaction() as tx:
        fresh = await tx.get_user(user.id)
    assert (fresh.presence, fresh.capacity) == ("away", 2)


async def test_login_is_throttled_after_repeated_failures(
    client: TestClient, make_user: MakeUser
) -> None:
    """After five wrong passwords, even the right one is refused with 429 and Retry-After."""
    await make_user("ana")
    token = csrf_of(await (await client.get("/login")).text())
    for _ in range(5):
        r = await client.post(
            "/login", data={"name": "ana", "password": "wrong-password", "_csrf": token}
        )
        assert r.status == 401
    locked = await client.post("/login", data={"name": "ana", "password": PASSWORD, "_csrf": token})
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) >= 1
    assert (await client.get("/dashboard/queue", allow_redirects=False)).status == 401


async def test_logout_ends_the_session(
    client: TestClient, second_client: TestClient, make_user: MakeUser
) -> None:
    """After signing out, the same cookie jar gets 401 from the dashboard, and so does a
    copy of the session cookie taken before (stolen, or left in another tab's jar)."""
    await make_user("ana")
    token = await sign_in(client, "ana")
    cookie = next(c for c in client.session.cookie_jar if c.key == COOKIE_NAME)
    second_client.session.cookie_jar.update_cookies({COOKIE_NAME: cookie.value})
    copied = await second_client.get("/dashboard/queue.json", allow_redirects=False)
    assert copied.status == 200  # the copy works while the session stands
    out = await client.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/dashboard/queue", allow_redirects=False)).status == 401
    replayed = await second_client.get("/dashboard/queue.json", allow_redirects=False)
    assert replayed.status == 401


async def test_a_deactivated_account_loses_its_session(
    client: TestClient, make_user: MakeUser
) -> None:
    """Deactivating a user ends their access at the next request, without a new sign-in."""
    user = await make_user("ana")
    await sign_in(client, "ana")
    async with client.server.app[STORE].transaction() as tx:
        fresh = await tx.get_user(user.id)
        fresh.active = False
        await tx.save_user(fresh)
    assert (await client.get("/dashboard/queue", allow_redirects=False)).status == 401


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
_INLINE_STYLE = re.compile(r"\sstyle\s*=", re.I)


async def test_pages_send_csp_and_contain_no_inline_script(
    client: TestClient, make_user: MakeUser
) -> None:
    """Every page carries a CSP whose script-src is 'self' only, and no page has an inline
    <script>, an on*= handler or a style attribute (which that CSP would block)."""
    await make_user("sup", "supervisor")
    pages: list[tuple[str, Any]] = [("/login", await client.get("/login"))]
    await sign_in(client, "sup")
    for path in (
        "/dashboard/queue",
        "/dashboard/supervisor",
        "/dashboard/training",
        "/dashboard/flow",
    ):
        pages.append((path, await client.get(path)))
    for path, response in pages:
        assert response.status == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert (
            "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        )
        assert "frame-ancestors 'none'" in csp
        html = await response.text()
        assert not _INLINE_SCRIPT.search(html), path
        assert not _INLINE_HANDLER.search(html), path
        assert not _INLINE_STYLE.search(html), path
        assert response.headers["Cache-Control"] == "no-store"

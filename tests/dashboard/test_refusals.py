"""The one place where refusals become answers, and the one access policy shared by the
pages and the WebSocket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient

from bot.dashboard import access
from bot.events import Event
from bot.keys import STORE
from bot.store.base import Conversation, User
from tests.helpers import MakeUser, sign_in

Text = Callable[..., Awaitable[list[str]]]
JSON = {"Accept": "application/json"}


async def test_a_refused_form_post_flashes_the_reason_and_goes_back(
    client: TestClient, make_user: MakeUser
) -> None:
    """ "Take next" with nobody waiting: a form post is sent back to the queue with the
    reason shown once; the same request from fetch() gets 409 and the reason as JSON."""
    await make_user("ana")
    token = await sign_in(client, "ana")
    form = await client.post("/dashboard/take-next", data={"_csrf": token}, allow_redirects=False)
    assert form.status == 303 and form.headers["Location"] == "/dashboard/queue"
    page = await (await client.get("/dashboard/queue")).text()
    assert 'class="flash"' in page and "Nobody is waiting." in page
    again = await (await client.get("/dashboard/queue")).text()
    assert 'class="flash"' not in again  # shown once
    fetched = await client.post("/dashboard/take-next", headers={**JSON, "X-CSRF-Token": token})
    assert fetched.status == 409
    assert await fetched.json() == {"ok": False, "error": "Nobody is waiting."}


async def test_bad_input_and_missing_records_answer_400_and_404_in_json(
    client: TestClient, make_user: MakeUser
) -> None:
    """An over-long field is 400 and a conversation that does not exist is 404, both as
    JSON for fetch(); a page that does not exist is a plain 404."""
    await make_user("ana")
    token = await sign_in(client, "ana")
    headers = {**JSON, "X-CSRF-Token": token}
    long = await client.post("/dashboard/presence", data={"presence": "x" * 30}, headers=headers)
    assert long.status == 400
    assert (await long.json())["error"] == "presence is longer than 20 characters"
    gone = await client.post("/dashboard/conversations/424242/claim", headers=headers)
    assert gone.status == 404
    assert await gone.json() == {"ok": False, "error": "no such conversation"}
    page = await client.get("/dashboard/conversations/424242", headers={"Accept": "text/html"})
    assert page.status == 404 and "no such conversation" in await page.text()


def _user(uid: int, role: str = "advocate") -> User:
    return User(id=uid, name=f"u{uid}", role=role, password_hash="")


def test_one_policy_decides_who_views_a_conversation() -> None:
    """An advocate views the queue, what they hold and what is offered to them; not a
    colleague's texter. Supervisors and admins view everything."""
    ana, ben, sue = _user(1), _user(2), _user(3, "supervisor")
    queued = Conversation(id=1, texter_id=1, state="queued")
    held = Conversation(id=2, texter_id=2, state="with_advocate", advocate_id=1)
    offer = Conversation(id=3, texter_id=3, state="with_advocate", advocate_id=1, transfer_to=2)
    assert access.may_view(ben, queued) and access.may_view(ana, held)
    assert not access.may_view(ben, held) and access.may_view(sue, held)
    assert access.may_view(ben, offer) and access.offered(ben, offer)
    assert access.holds(ana, held) and not access.holds(ben, offer)


async def test_the_socket_forwards_by_the_pages_policy(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A message event reaches an advocate exactly when they may open that conversation's
    page: while it waits in the queue, yes; once a colleague holds it, no."""
    store = client.server.app[STORE]
    ben = await make_user("ben")
    ana = await make_user("ana")
    await text("hi", number="+15551230042")
    await text("AGENT", number="+15551230042")
    async with store.transaction() as tx:
        (conv,) = await tx.list_conversations(states=["queued"])
    event = Event("message", {"conversation_id": conv.id, "message_id": 1, "direction": "in"})
    assert await access.may_see(store, ben, event)
    async with store.transaction() as tx:
        await tx.claim(conv.id, ana.id, conv.queued_at)  # type: ignore[arg-type]
    assert not await access.may_see(store, ben, event)
    assert await access.may_see(store, ana, event)
    assert await access.may_see(store, ben, Event("alarm_cleared", {"conversation_id": conv.id}))
    addressed = Event("assigned", {"conversation_id": conv.id, "advocate_id": ana.id})
    assert await access.may_see(store, ana, addressed)
    assert not await access.may_see(store, ben, addressed)

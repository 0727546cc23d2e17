"""Staff see and act only on their programs' conversations, through the real app: every
conversation route, the lists, take next, the WebSocket, and the partner referral."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from bot import programs
from bot.engine import utcnow
from bot.keys import STORE
from bot.store.base import Program, User
from tests.helpers import MakeUser, sign_in

from .test_security import dashboard_routes

Text = Callable[..., Awaitable[list[str]]]
JSON = {"Accept": "application/json"}
FREEDOM_TO = "+15557770000"


async def add_freedom(client: TestClient) -> Program:
    return await programs.add_program(
        client.server.app[STORE], "freedom", "Freedom Network", FREEDOM_TO, utcnow()
    )


async def member(client: TestClient, make_user: MakeUser, name: str, role: str, p: Program) -> User:
    user = await make_user(name, role)
    async with client.server.app[STORE].transaction() as tx:
        await tx.set_user_programs(user.id, [p.id])
    return user


async def waiting(client: TestClient, text: Text, number: str, to: str | None = None) -> int:
    extra = {"To": to} if to else {}
    await text("hi", number=number, **extra)
    await text("AGENT", number=number, **extra)
    async with client.server.app[STORE].transaction() as tx:
        return max(c.id for c in await tx.list_conversations(states=["queued"]))


async def test_every_conversation_route_refuses_other_programs_staff(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """An advocate and a supervisor of another program get 403 from every route about a
    conversation of the default program (GET and POST), before anything happens to it;
    an admin is not refused by program."""
    freedom = await add_freedom(client)
    cid = await waiting(client, text, "+15551230201")
    routes = [
        (method, path.replace("/conversations/1", f"/conversations/{cid}"))
        for method, path, _roles in dashboard_routes(client)
        if "/conversations/1" in path
    ]
    assert len(routes) >= 9
    for name, role in (("fay", "advocate"), ("sam", "supervisor")):
        await member(client, make_user, name, role, freedom)
        token = await sign_in(client, name)
        for method, path in routes:
            if method == "GET":
                response = await client.get(path, allow_redirects=False)
            else:
                response = await client.post(
                    path,
                    data={"_csrf": token, "to": "queue", "body": "x", "program": "freedom"},
                    allow_redirects=False,
                )
            assert response.status == 403, (name, method, path, response.status)
        await client.post("/logout", data={"_csrf": token})
    async with client.server.app[STORE].transaction() as tx:
        conv = await tx.get_conversation(cid)
        assert conv.state == "queued" and conv.advocate_id is None
        assert await tx.list_notes(cid) == []
    await make_user("root", "admin")
    await sign_in(client, "root")
    assert (await client.get(f"/dashboard/conversations/{cid}")).status == 200


async def test_lists_and_take_next_keep_to_the_users_programs(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The queue (JSON and page), the supervisor board and take next show a program's
    staff only its texters; staff in no program see only the default program's."""
    freedom = await add_freedom(client)
    default_cid = await waiting(client, text, "+15551230201")
    freedom_cid = await waiting(client, text, "+15551230202", FREEDOM_TO)
    await member(client, make_user, "fay", "advocate", freedom)
    await make_user("dan", "advocate")
    await member(client, make_user, "sam", "supervisor", freedom)
    for name, mine, theirs in (
        ("fay", freedom_cid, default_cid),
        ("dan", default_cid, freedom_cid),
    ):
        token = await sign_in(client, name)
        listed = await (await client.get("/dashboard/queue.json")).json()
        assert [e["conversation_id"] for e in listed] == [mine]
        page = await (await client.get("/dashboard/queue")).text()
        assert f"/dashboard/conversations/{theirs}" not in page
        took = await client.post("/dashboard/take-next", headers={**JSON, "X-CSRF-Token": token})
        assert (await took.json())["conversation_id"] == mine
        await client.post("/logout", data={"_csrf": token})
    await sign_in(client, "sam")
    board = await (await client.get("/dashboard/supervisor")).text()
    assert f"/dashboard/conversations/{freedom_cid}" in board
    assert f"/dashboard/conversations/{default_cid}" not in board


async def test_websocket_carries_only_the_users_programs_events(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A program's supervisor's socket gets events about its texters and none about the
    default program's; the default program's supervisor gets the other's none."""
    freedom = await add_freedom(client)
    await member(client, make_user, "sam", "supervisor", freedom)
    await make_user("dee", "supervisor")
    await sign_in(client, "sam")
    await sign_in(second_client, "dee")
    ws_sam = await client.ws_connect("/ws")
    ws_dee = await second_client.ws_connect("/ws")
    default_cid = await waiting(client, text, "+15551230201")
    freedom_cid = await waiting(client, text, "+15551230202", FREEDOM_TO)

    async def seen_until(ws: Any, cid: int) -> set[int]:
        """Conversation ids of the events received up to the first about `cid`."""
        ids: set[int] = set()
        while cid not in ids:
            event = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            if isinstance(event.get("conversation_id"), int):
                ids.add(event["conversation_id"])
        return ids

    assert await seen_until(ws_sam, freedom_cid) == {freedom_cid}
    await text("one more thing", number="+15551230202", To=FREEDOM_TO)
    await text("one more thing", number="+15551230201")
    assert default_cid not in await seen_until(ws_sam, freedom_cid)
    assert freedom_cid not in await seen_until(ws_dee, default_cid)
    await ws_sam.close()
    await ws_dee.close()


async def test_referral_to_a_partner_program_through_the_dashboard(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The holder refers the texter from the conversation page; on the texter's YES the
    conversation leaves the advocate's program (403 for them now) and waits in the
    partner's queue, where its advocate takes it with the notes written before."""
    freedom = await add_freedom(client)
    await member(client, make_user, "fay", "advocate", freedom)
    cid = await waiting(client, text, "+15551230201")
    await make_user("dan", "advocate")
    token = await sign_in(client, "dan")
    headers = {**JSON, "X-CSRF-Token": token}
    assert (await client.post(f"/dashboard/conversations/{cid}/claim", headers=headers)).ok
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert 'id="partner-form"' in page and "Freedom Network" in page
    await client.post(
        f"/dashboard/conversations/{cid}/notes", data={"body": "kids"}, headers=headers
    )
    offered = await client.post(
        f"/dashboard/conversations/{cid}/partner", data={"program": "freedom"}, headers=headers
    )
    assert offered.status == 200, await offered.text()
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert 'id="partner-pending"' in page
    assert await text("yes", number="+15551230201") != []
    assert (await client.get(f"/dashboard/conversations/{cid}")).status == 403
    await client.post("/logout", data={"_csrf": token})
    token = await sign_in(client, "fay")
    listed = await (await client.get("/dashboard/queue.json")).json()
    assert [e["conversation_id"] for e in listed] == [cid]
    took = await client.post("/dashboard/take-next", headers={**JSON, "X-CSRF-Token": token})
    assert (await took.json())["conversation_id"] == cid
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert "kids" in page


async def test_a_programs_supervisor_role_plays_in_their_own_program(
    client: TestClient, make_user: MakeUser
) -> None:
    """Training: a program's supervisor's role-play texter writes to that program's number,
    so the opening carries its name and the conversation is one they may open."""
    freedom = await add_freedom(client)
    await member(client, make_user, "sam", "supervisor", freedom)
    token = await sign_in(client, "sam")
    sent = await client.post(
        "/dashboard/training/send", data={"body": "hi"}, headers={**JSON, "X-CSRF-Token": token}
    )
    assert sent.status == 200
    assert "Freedom Network" in await (await client.get("/dashboard/training/transcript")).text()
    async with client.server.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations()
    assert conv.program_id == freedom.id
    assert (await client.get(f"/dashboard/conversations/{conv.id}")).status == 200


async def test_transfer_list_offers_only_colleagues_of_the_texters_program(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The conversation page's transfer list names only colleagues who work for the
    texter's program: anyone else would be refused on submit."""
    freedom = await add_freedom(client)
    freedom_cid = await waiting(client, text, "+15551230203", FREEDOM_TO)
    fay = await member(client, make_user, "fay", "advocate", freedom)
    await member(client, make_user, "flo", "advocate", freedom)
    await make_user("dan", "advocate")
    token = await sign_in(client, fay.name)
    took = await client.post("/dashboard/take-next", headers={**JSON, "X-CSRF-Token": token})
    assert (await took.json())["conversation_id"] == freedom_cid
    page = await (await client.get(f"/dashboard/conversations/{freedom_cid}")).text()
    assert ">flo (" in page
    assert ">dan (" not in page

"""The block list from the conversation page, and the supervisors' audit-log viewer,
through real HTTP and the signed webhook (issue 10)."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from bot.keys import STORE
from tests.dashboard.test_views import NUMBER, Text, conversation, post, queued
from tests.helpers import MakeUser, sign_in

DANGER = "he has a gun and says he will kill me"


async def _audit_actions(client: TestClient) -> list[str]:
    async with client.server.app[STORE].transaction() as tx:
        return [a.action for a in await tx.list_audit()]


async def test_an_advocate_blocks_a_number_and_it_gets_no_replies_and_leaves_the_queue(
    client: TestClient, text: Text, make_user: MakeUser
) -> None:
    """Blocking from the conversation page takes the waiting texter out of the queue; their
    next messages are stored but unanswered and do not queue them again (AGENT included),
    except danger, which still gets the emergency numbers; block and unblock are audited.
    The closed conversation is a supervisor's to see and unblock; after that Haven answers
    again."""
    cid = await queued(client, text)
    await make_user("ana")
    token = await sign_in(client, "ana")
    page = await client.get(f"/dashboard/conversations/{cid}")
    assert 'id="block-number"' in await page.text()
    response = await post(client, f"/dashboard/conversations/{cid}/block", token)
    assert response.status == 200  # followed the redirect back to the page
    assert (await conversation(client, cid)).state == "closed"
    assert await text("hello?", number=NUMBER) == []
    assert await text("AGENT", number=NUMBER) == []
    async with client.server.app[STORE].transaction() as tx:
        assert await tx.list_conversations(states=["queued"]) == []
        convs = [c for c in await tx.list_conversations(limit=50) if c.id != cid]
        kept = [m.body for c in convs for m in await tx.list_messages(c.id)]
    assert kept == ["hello?", "AGENT"]
    danger = await text(DANGER, number=NUMBER)
    assert danger and "911" in danger[0]
    assert "block" in await _audit_actions(client)
    await post(client, "/logout", token)
    await make_user("sue", "supervisor")
    token = await sign_in(client, "sue")
    assert 'id="blocked"' in await (await client.get(f"/dashboard/conversations/{cid}")).text()
    await post(client, f"/dashboard/conversations/{cid}/unblock", token)
    assert "unblock" in await _audit_actions(client)
    assert await text("HELP", number=NUMBER) != []


async def test_blocking_twice_is_audited_once(
    client: TestClient, text: Text, make_user: MakeUser
) -> None:
    """A second block of a blocked number changes nothing and adds no audit row."""
    cid = await queued(client, text)
    await make_user("ana")
    token = await sign_in(client, "ana")
    for _ in range(2):
        await post(client, f"/dashboard/conversations/{cid}/block", token)
    assert (await _audit_actions(client)).count("block") == 1


async def test_audit_viewer_lists_newest_first_by_page_for_supervisors_only(
    client: TestClient, text: Text, make_user: MakeUser
) -> None:
    """Supervisors see audit rows newest first, 50 a page with a link to older ones; no
    texter's words appear; an advocate is refused."""
    cid = await queued(client, text, first="my secret words here")
    await make_user("sue", "supervisor")
    await make_user("ana")
    token = await sign_in(client, "ana")
    assert (await client.get("/dashboard/audit", allow_redirects=False)).status == 403
    for _ in range(60):  # sixty page views: sixty audit rows
        await client.get(f"/dashboard/conversations/{cid}")
    await post(client, "/logout", token)
    await sign_in(client, "sue")
    first = await client.get("/dashboard/audit")
    assert first.status == 200
    html = await first.text()
    ids = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", html)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    assert "my secret words" not in html and NUMBER not in html
    older = re.search(r'href="/dashboard/audit\?before=(\d+)"', html)
    assert older is not None and int(older[1]) == ids[-1]
    second = await (await client.get(f"/dashboard/audit?before={older[1]}")).text()
    more = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", second)]
    assert more and max(more) < min(ids)

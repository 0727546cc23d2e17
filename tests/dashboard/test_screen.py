"""The advocate's screen through real HTTP: unread counts, priority and why, signals and
answers in words, hand-off notes, a disposition to close, a returning texter's history,
the supervisor's list by risk and reassigns that tell the assignee."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from unittest.mock import patch

from aiohttp.test_utils import TestClient

from bot.dashboard import wording
from bot.dashboard.views import queue as queue_views
from bot.keys import ENGINE, STORE
from bot.store.base import Conversation
from bot.vocabulary import utcnow
from tests.helpers import MakeUser, sign_in

Text = Callable[..., Awaitable[list[str]]]
JSON = {"Accept": "application/json"}
NUMBER = "+15551230042"


def post(client: TestClient, path: str, token: str, **data: str) -> Awaitable[object]:
    return client.post(path, data=data, headers={**JSON, "X-CSRF-Token": token})


async def waiting(client: TestClient) -> list[Conversation]:
    async with client.server.app[STORE].transaction() as tx:
        return await tx.list_conversations(states=["queued"])


async def queued(client: TestClient, text: Text, first: str, number: str = NUMBER) -> int:
    """A texter writes `first` and asks for a person; returns their waiting conversation."""
    await text(first, number=number)
    await text("AGENT", number=number)
    return max(c.id for c in await waiting(client))


def row_of(html: str, cid: int) -> str:
    row = html[html.index(f'data-cid="{cid}"') :]
    return row[: row.index("</tr>")]


async def test_unread_counts_what_came_in_since_the_advocate_last_looked(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Two texts arrive while Ana is on the queue page: her conversation shows "2 new";
    once she opens the conversation the count is gone."""
    cid = await queued(client, text, "my boyfriend hurt me")
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    await client.get(f"/dashboard/conversations/{cid}")
    await asyncio.sleep(0.01)  # the texts come in after that view
    await text("are you there", number=NUMBER)
    await text("please answer", number=NUMBER)
    mine = re.compile(rf'<li data-cid="{cid}">.*?</li>', re.S)
    found = mine.search(await (await client.get("/dashboard/queue")).text())
    assert found and '<span class="unread">2 new</span>' in found[0]
    await client.get(f"/dashboard/conversations/{cid}")
    found = mine.search(await (await client.get("/dashboard/queue")).text())
    assert found and "unread" not in found[0]


async def test_priority_shows_with_its_reason_on_queue_rows_and_the_conversation(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Trafficking words make a P2 "their words"; a P3 who waited past aging_every shows
    as P2 "waited (aging)"; the conversation page says the same in its header."""
    trafficked = await queued(client, text, "my boss keeps my passport and says I owe him")
    custody = await queued(
        client, text, "my ex says he will take the kids if i leave", number="+15551230043"
    )
    await make_user("ana")
    await sign_in(client, "ana")
    html = await (await client.get("/dashboard/queue")).text()
    assert 'P2</span> <span class="basis">· their words' in row_of(html, trafficked)
    assert 'P3</span> <span class="basis">· their words' in row_of(html, custody)
    later = utcnow() + timedelta(hours=1)  # default aging_every is 30 minutes
    with patch.object(queue_views, "utcnow", return_value=later):
        html = await (await client.get("/dashboard/queue")).text()
        rows = await (await client.get("/dashboard/queue.json")).json()
    assert 'P2</span> <span class="basis">· waited (aging)' in row_of(html, custody)
    assert {r["conversation_id"]: r["basis"] for r in rows} == {
        trafficked: "words",
        custody: "aging",
    }
    page = await (await client.get(f"/dashboard/conversations/{trafficked}")).text()
    assert 'id="conv-priority">P2 · their words<' in page


def test_signals_and_screening_answers_read_as_words() -> None:
    """Signal ids become phrases (qualified ones say how; bookkeeping is hidden), and a
    risky answer is marked: "yes" to a weapon, "no" to free to leave; harmless ones not."""
    assert wording.signal_words("screen:weapon") == "screening: weapon used or threatened"
    assert wording.signal_words("emergency:weapon") == "gun or weapon"
    assert wording.signal_words("emergency:threat_to_kill") == "threat to kill"
    assert wording.signal_words("negated:emergency:weapon") == "said not: gun or weapon"
    assert wording.signal_words("idiom:dying_to") == ""
    assert wording.signals_words(["context:abuser_present", "emergency:present", "x:new_one"]) == [
        "abuser present",
        "abuser there now",
        "new one",
    ]
    answers = wording.screening({"weapon": "yes", "free_to_leave": "no", "choked": "no"})
    assert [(a.question, a.risky) for a in answers] == [
        ("weapon used or threatened", True),
        ("ever choked", False),
        ("free to leave", True),
    ]
    assert not wording.screening({"free_to_leave": "yes", "weapon": "skip"})[0].risky


async def test_conversation_shows_the_telling_words_signals_and_risky_answers(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The conversation page quotes the words that raised the priority (not a later ZIP
    code), lists the signals in words, and escapes the texter's text."""
    cid = await queued(client, text, "my boss keeps my passport <b>and</b> says I owe him")
    await text("60601", number=NUMBER)
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    telling = page[page.index('class="meta telling"') :]
    telling = telling[: telling.index("</p>")]
    assert "my boss keeps my passport &lt;b&gt;and&lt;/b&gt;" in telling and "60601" not in telling
    assert "passport or ID held" in page


async def test_a_transfer_carries_a_hand_off_note_and_says_who_offers_it(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Ana offers Ben the texter with a note: it is saved as Ana's internal note starting
    "Hand-off:", and Ben's queue and the conversation page say it is from Ana and show it."""
    cid = await queued(client, text, "my husband hits me")
    ana = await make_user("ana")
    ben = await make_user("ben")
    token = await sign_in(client, "ana")
    await sign_in(second_client, "ben")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    offer = await post(
        client,
        f"/dashboard/conversations/{cid}/transfer",
        token,
        to=str(ben.id),
        note="Safe until 5pm; <two> kids.",
    )
    assert offer.status == 200  # type: ignore[attr-defined]
    async with client.server.app[STORE].transaction() as tx:
        notes = await tx.list_notes(cid)
    assert [(n.user_id, n.body) for n in notes] == [
        (ana.id, "Hand-off: Safe until 5pm; <two> kids.")
    ]
    queue_html = await (await second_client.get("/dashboard/queue")).text()
    offers = queue_html[queue_html.index('class="card offers"') :]
    assert "ana offers you" in offers and "Hand-off: Safe until 5pm; &lt;two&gt; kids." in offers
    page = await (await second_client.get(f"/dashboard/conversations/{cid}")).text()
    assert "ana offers you this conversation." in page and 'class="handoff"' in page


async def test_closing_needs_a_chosen_disposition(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The close form starts on a disabled "Choose…" and is required; a close without a
    disposition is refused with 400 and the conversation stays open."""
    cid = await queued(client, text, "my husband hits me")
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert '<select name="disposition" id="disposition" required>' in page
    assert '<option value="" disabled selected>Choose…</option>' in page
    refused = await post(client, f"/dashboard/conversations/{cid}/close", token)
    assert refused.status == 400  # type: ignore[attr-defined]
    assert await refused.json() == {"ok": False, "error": "Choose a disposition first."}  # type: ignore[attr-defined]
    async with client.server.app[STORE].transaction() as tx:
        assert (await tx.get_conversation(cid)).state == "with_advocate"


async def test_a_returning_texters_earlier_conversations_are_one_click_away(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A texter Ana helped before writes again: the new conversation lists the earlier one
    with its note count, its holder may open it, and a colleague who holds nothing of
    theirs may not."""
    first = await queued(client, text, "my husband hits me")
    await make_user("ana")
    await make_user("ben")
    token = await sign_in(client, "ana")
    await sign_in(second_client, "ben")
    await post(client, f"/dashboard/conversations/{first}/claim", token)
    await post(client, f"/dashboard/conversations/{first}/notes", token, body="gave shelter list")
    await post(client, f"/dashboard/conversations/{first}/close", token, disposition="referred")
    second = await queued(client, text, "he found me again")
    assert second != first
    await post(client, f"/dashboard/conversations/{second}/claim", token)
    page = await (await client.get(f"/dashboard/conversations/{second}")).text()
    earlier = page[page.index('id="earlier"') :]
    assert f'href="/dashboard/conversations/{first}"' in earlier and "referred" in earlier
    assert "1 note" in earlier
    old = await client.get(f"/dashboard/conversations/{first}")
    assert old.status == 200 and "gave shelter list" in await old.text()
    assert (await second_client.get(f"/dashboard/conversations/{first}")).status == 403


async def test_supervisor_list_is_by_risk_and_reassign_offers_only_staff_on_shift(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A P1 who came later is listed above a P3 who came first; the reassign list names
    the signed-in advocate and not the one who never signed in."""
    calm = await queued(client, text, "my ex says he will take the kids if i leave")
    await text("he has a gun and says he will kill me", number="+15551230044")
    danger = max(c.id for c in await waiting(client))
    ana = await make_user("ana")
    ben = await make_user("ben")
    await make_user("sue", "supervisor")
    await sign_in(client, "sue")
    await sign_in(second_client, "ana")
    html = await (await client.get("/dashboard/supervisor")).text()
    assert html.index(f'data-cid="{danger}"') < html.index(f'data-cid="{calm}"')
    assert f'<option value="{ana.id}">ana (available)</option>' in html
    assert f'<option value="{ben.id}">' not in html


async def next_of_kind(ws: object, want: str) -> dict[str, object]:
    (event,) = (await next_of_kinds(ws, want))[want]
    return event


async def next_of_kinds(ws: object, *wanted: str) -> dict[str, list[dict[str, object]]]:
    """The next event of each wanted kind on a socket, in whatever order they arrive."""
    found: dict[str, list[dict[str, object]]] = {}
    while len(found) < len(wanted):
        msg = await asyncio.wait_for(ws.receive(), 10)  # type: ignore[attr-defined]
        event = json.loads(msg.data)
        if event["kind"] in wanted and event["kind"] not in found:
            found[event["kind"]] = [event]
    return found


async def test_reassign_tells_the_assignee_and_raises_danger_on_their_screen(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Sue hands a texter who wrote of a gun to Ana: Ana's socket hears "Supervisor sue
    assigned you <alias>" and a danger alarm with alias, priority and words."""
    await text("he has a gun and says he will kill me", number=NUMBER)
    (conv,) = await waiting(client)
    ana = await make_user("ana")
    await make_user("sue", "supervisor")
    token = await sign_in(client, "sue")
    await sign_in(second_client, "ana")
    ws = await second_client.ws_connect("/ws")
    moved = await post(
        client, f"/dashboard/conversations/{conv.id}/reassign", token, to=str(ana.id)
    )
    assert moved.status == 200  # type: ignore[attr-defined]
    async with client.server.app[STORE].transaction() as tx:
        alias = (await tx.get_texter(conv.texter_id)).alias
    told = await next_of_kinds(ws, "assigned", "alarm")
    (assigned,), (alarm,) = told["assigned"], told["alarm"]
    assert assigned == {
        "kind": "assigned",
        "conversation_id": conv.id,
        "advocate_id": ana.id,
        "by": "sue",
        "alias": alias,
    }
    assert (alarm["reason"], alarm["advocate_id"], alarm["alias"], alarm["priority"]) == (
        "danger_held",
        ana.id,
        alias,
        1,
    )
    assert "gun" in str(alarm["words"])
    await ws.close()


async def test_standing_alarms_name_the_texter_with_priority_and_words(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A page drawn after a priority-1 texter waited past a minute shows the alarm with
    their alias, P1 and their words (escaped), not only a number."""
    from bot.dashboard.views import common

    await text("he has a gun <i>now</i> and says he will kill me", number=NUMBER)
    (conv,) = await waiting(client)
    await make_user("ana")
    await sign_in(client, "ana")
    async with client.server.app[STORE].transaction() as tx:
        alias = (await tx.get_texter(conv.texter_id)).alias
    later = utcnow() + timedelta(seconds=61)
    await client.server.app[ENGINE].check_alarms(later)  # serve's tick raises it
    with patch.object(common, "utcnow", return_value=later):
        html = await (await client.get("/dashboard/queue")).text()
    alarm = html[html.index(f'id="alarm-{conv.id}-p1_unclaimed"') :]
    alarm = alarm[: alarm.index("</div>")]
    assert alias in alarm and '<span class="prio p1">P1</span>' in alarm
    assert "gun &lt;i&gt;now&lt;/i&gt;" in alarm


async def test_an_uncertain_text_tells_the_advocate_not_to_resend_blindly(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A text whose sending timed out is marked uncertain: the transcript says it may have
    been delivered, was not resent, and to ask before sending it again."""
    from bot.handoff import claim
    from bot.keys import ENGINE

    cid = await queued(client, text, "my ex keeps calling me")
    ana = await make_user("ana")
    await sign_in(client, "ana")
    app = client.server.app
    await claim(app[STORE], cid, ana, utcnow())
    # Written a moment from now, so the outbox has not sent it when it is marked uncertain.
    later = utcnow() + timedelta(minutes=5)
    sent = await app[ENGINE].send_from_advocate(cid, ana, "Are you somewhere safe?", later)
    assert sent.id is not None
    async with app[STORE].transaction() as tx:
        await tx.set_message_status(sent.id, "uncertain", error_code="timeout")
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert "uncertain (timeout) — may have been delivered; not resent" in page

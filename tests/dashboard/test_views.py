"""The advocates' side through real HTTP: queue, claim, reply, notes, transfer, close,
supervisor, audit, masking and escaping, and what the WebSocket forwards to whom."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from bot.dashboard import diagram
from bot.dashboard.views.conversation import canned
from bot.keys import ENGINE, STORE
from bot.reports import shift_series
from bot.store.base import Conversation
from tests.helpers import MakeUser, sign_in

Text = Callable[..., Awaitable[list[str]]]
NUMBER = "+15551230042"
JSON = {"Accept": "application/json"}


async def queued(client: TestClient, text: Text, number: str = NUMBER, first: str = "hi") -> int:
    """A texter texts in through the signed webhook and asks for a person; returns the
    conversation id now waiting in the queue."""
    await text(first, number=number)
    await text("AGENT", number=number)
    async with client.server.app[STORE].transaction() as tx:
        waiting = await tx.list_conversations(states=["queued"])
    assert waiting, "the texter did not reach the queue"
    return max(c.id for c in waiting)


async def conversation(client: TestClient, cid: int) -> Conversation:
    async with client.server.app[STORE].transaction() as tx:
        return await tx.get_conversation(cid)


def post(client: TestClient, path: str, token: str, **data: str) -> Awaitable[object]:
    return client.post(path, data=data, headers={**JSON, "X-CSRF-Token": token})


async def test_queue_shows_the_texter_masked_with_escaped_words(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The queue lists a waiting texter by alias and the last two digits only, and their
    words are escaped (a <script> in a text is shown, never run)."""
    cid = await queued(client, text, first="<script>alert(1)</script> help")
    await make_user("ana")
    await sign_in(client, "ana")
    html = await (await client.get("/dashboard/queue")).text()
    assert f'data-cid="{cid}"' in html
    assert "…42" in html and NUMBER not in html and "5551230042" not in html
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)" in html
    rows = await (await client.get("/dashboard/queue.json")).json()
    assert [r["conversation_id"] for r in rows] == [cid]
    assert rows[0]["masked"] == "…42"


async def test_claim_reply_note_transfer_accept_close_with_audit(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A whole hand-off over HTTP: take it, reply (queued for delivery), note, transfer to
    a colleague who accepts, and close with a disposition; each step is audited."""
    cid = await queued(client, text)
    ana = await make_user("ana")
    ben = await make_user("ben")
    token = await sign_in(client, "ana")
    other = await sign_in(second_client, "ben")

    taken = await client.post("/dashboard/take-next", data={"_csrf": token}, allow_redirects=False)
    assert taken.status == 303 and taken.headers["Location"] == f"/dashboard/conversations/{cid}"
    assert (await conversation(client, cid)).advocate_id == ana.id
    # Ben cannot read a conversation Ana holds.
    assert (await second_client.get(f"/dashboard/conversations/{cid}")).status == 403

    page = await client.get(f"/dashboard/conversations/{cid}")
    assert page.status == 200
    assert 'id="reply-form"' in await page.text()
    sent = await post(client, f"/dashboard/conversations/{cid}/reply", token, body="Hi, I'm Ana.")
    assert sent.status == 200 and (await sent.json())["ok"]
    transcript = await (await client.get(f"/dashboard/conversations/{cid}/transcript")).text()
    assert "Hi, I&#39;m Ana." in transcript or "Hi, I'm Ana." in transcript
    assert 'class="status s-' in transcript

    noted = await post(
        client, f"/dashboard/conversations/{cid}/notes", token, body="asked for shelter"
    )
    assert noted.status == 200

    offered = await post(client, f"/dashboard/conversations/{cid}/transfer", token, to=str(ben.id))
    assert offered.status == 200
    assert (await conversation(client, cid)).transfer_to == ben.id
    accepted = await post(second_client, f"/dashboard/conversations/{cid}/accept", other)
    assert accepted.status == 200
    assert (await conversation(client, cid)).advocate_id == ben.id
    # Ana no longer holds it: her reply is refused and nothing is stored.
    late = await post(client, f"/dashboard/conversations/{cid}/reply", token, body="still here?")
    assert late.status in (403, 409)

    closed = await post(
        second_client, f"/dashboard/conversations/{cid}/close", other, disposition="referred"
    )
    assert closed.status == 200
    final = await conversation(client, cid)
    assert (final.state, final.disposition) == ("closed", "referred")

    async with client.server.app[STORE].transaction() as tx:
        audit = await tx.list_audit(conversation_id=cid)
        notes = await tx.list_notes(cid)
    actions = {(a.user_id, a.action) for a in audit}
    assert {(ana.id, "view"), (ana.id, "reply"), (ana.id, "note"), (ben.id, "close")} <= actions
    assert any(a.action.startswith("transfer") for a in audit)
    assert all("Ana" not in a.detail and "shelter" not in a.detail for a in audit)
    assert [n.body for n in notes] == ["asked for shelter"]


async def test_claim_is_atomic_between_two_advocates(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Two advocates press "take" on the same texter at once: exactly one gets it, the
    other gets 409."""
    cid = await queued(client, text)
    await make_user("ana")
    await make_user("ben")
    a, b = await sign_in(client, "ana"), await sign_in(second_client, "ben")
    path = f"/dashboard/conversations/{cid}/claim"
    results = await asyncio.gather(post(client, path, a), post(second_client, path, b))
    assert sorted(r.status for r in results) == [200, 409]  # type: ignore[attr-defined]


async def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """An unknown disposition, an empty reply or a bad presence is refused with a message."""
    cid = await queued(client, text)
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    bad = await post(client, f"/dashboard/conversations/{cid}/close", token, disposition="nah")
    assert bad.status == 400 and "disposition" in (await bad.json())["error"]
    assert (await conversation(client, cid)).state == "with_advocate"
    empty = await post(client, f"/dashboard/conversations/{cid}/reply", token, body="  ")
    assert empty.status == 400
    presence = await post(client, "/dashboard/presence", token, presence="asleep", capacity="2")
    assert presence.status == 400
    assert (await client.get("/dashboard/conversations/99999")).status == 404


async def test_supervisor_sees_every_conversation_loads_and_can_reassign(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The supervisor view lists every open conversation and each advocate's load; a
    reassign to a signed-out advocate is refused (nobody would answer), and to a signed-in
    one moves the queued texter to them; the chart data covers it."""
    cid = await queued(client, text)
    ana = await make_user("ana")
    await make_user("sue", "supervisor")
    token = await sign_in(client, "sue")
    html = await (await client.get("/dashboard/supervisor")).text()
    assert f'/dashboard/conversations/{cid}"' in html and "ana" in html and "0 / 3" in html
    stranded = await post(client, f"/dashboard/conversations/{cid}/reassign", token, to=str(ana.id))
    assert stranded.status == 409 and (await conversation(client, cid)).advocate_id is None
    await sign_in(second_client, "ana")
    moved = await post(client, f"/dashboard/conversations/{cid}/reassign", token, to=str(ana.id))
    assert moved.status == 200
    assert (await conversation(client, cid)).advocate_id == ana.id
    html = await (await client.get("/dashboard/fragments/supervisor")).text()
    assert "1 / 3" in html
    stats = await (await client.get("/dashboard/supervisor/stats.json")).json()
    assert set(stats) == {"t", "queue", "wait_minutes"}
    assert len(stats["t"]) == len(stats["queue"]["1"]) == len(stats["wait_minutes"]["4"])
    # Read-along: the supervisor opens the held conversation without taking it.
    page = await client.get(f"/dashboard/conversations/{cid}")
    assert page.status == 200 and "Reading along" in await page.text()


async def test_websocket_sends_an_inbound_message_to_its_holder_only(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """When a held texter writes, the holding advocate's socket gets a "message" event with
    ids only; another advocate's socket gets the queue but not that message."""
    cid = await queued(client, text)
    await make_user("ana")
    await make_user("ben")
    token = await sign_in(client, "ana")
    await sign_in(second_client, "ben")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    ws_ana = await client.ws_connect("/ws")
    ws_ben = await second_client.ws_connect("/ws")
    await text("he took my phone charger", number=NUMBER)
    await text("AGENT", number="+15551230077")  # someone else joins the queue

    async def kinds(ws: object, want: str) -> list[dict[str, object]]:
        seen: list[dict[str, object]] = []
        while not any(e["kind"] == want for e in seen):
            msg = await asyncio.wait_for(ws.receive(), 10)  # type: ignore[attr-defined]
            seen.append(json.loads(msg.data))
        return seen

    ana_events = await kinds(ws_ana, "message")
    message = next(e for e in ana_events if e["kind"] == "message")
    assert message["conversation_id"] == cid and "body" not in message
    ben_events = await kinds(ws_ben, "queue")
    await asyncio.sleep(0)  # let anything else queued for Ben arrive before we look
    assert not any(e.get("conversation_id") == cid and e["kind"] == "message" for e in ben_events)
    await ws_ana.close()
    await ws_ben.close()


def test_shift_series_counts_waiting_and_mean_wait_by_priority() -> None:
    """A P2 texter queued 40 minutes ago and claimed 20 minutes ago counts in the queue
    between those times and adds a 20-minute wait; a P1 still waiting counts up to now."""
    now = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    claimed = Conversation(
        id=1,
        texter_id=1,
        state="with_advocate",
        priority=2,
        queued_at=now - timedelta(minutes=40),
        claimed_at=now - timedelta(minutes=20),
    )
    waiting = Conversation(
        id=2, texter_id=2, state="queued", priority=1, queued_at=now - timedelta(minutes=7)
    )
    data = shift_series([claimed, waiting], now, hours=1, step_min=5)
    t = data["t"]
    at = {ts: i for i, ts in enumerate(t)}
    mark = int((now - timedelta(minutes=30)).timestamp())
    assert data["queue"]["2"][at[mark]] == 1
    assert data["queue"]["2"][-1] == 0
    assert data["queue"]["1"][-1] == 1
    assert [w for w in data["wait_minutes"]["2"] if w is not None] == [20.0]
    assert all(w is None for w in data["wait_minutes"]["1"])


def test_shift_series_shows_a_short_wait_between_two_samples() -> None:
    """A two-minute wait that starts and ends between two five-minute marks still shows
    in that bucket, once (an instant sample would miss it)."""
    now = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    brief = Conversation(
        id=3,
        texter_id=3,
        state="with_advocate",
        priority=1,
        queued_at=now - timedelta(minutes=29),
        claimed_at=now - timedelta(minutes=27),
    )
    data = shift_series([brief], now, hours=1, step_min=5)
    assert sum(data["queue"]["1"]) == 1
    mark = int((now - timedelta(minutes=30)).timestamp())
    assert data["queue"]["1"][data["t"].index(mark)] == 1


def test_flow_diagram_parses_transitions_mermaid_and_escapes_names() -> None:
    """Mermaid text from `transitions` becomes an SVG with one box per state and one arrow
    per transition; names are escaped."""
    text = """---
title: intake
---
stateDiagram-v2
  direction LR
  state "new" as new
  state "safety_check" as safety_check
  state "queued" as queued
  [*] --> new
  new --> safety_check: message
  safety_check --> queued: yes | agent
  queued --> queued: message
"""
    graph = diagram.parse_mermaid(text)
    assert graph.initial == "new"
    assert graph.states == ["new", "safety_check", "queued"]
    assert graph.edges[("safety_check", "queued")] == ["yes", "agent"]
    svg = str(diagram.render_svg(graph))
    assert svg.count("<rect") == 3 and svg.count('class="edge"') == 2
    evil = diagram.render_svg(diagram.parse_mermaid('state "<b>" as x\n[*] --> x'))
    assert "<b>" not in str(evil)


def test_canned_responses_match_across_languages_and_use_only_verified_numbers() -> None:
    """English and Spanish offer the same responses, and every number in them is one of
    the verified lines (911, 988, 1-800-799-7233, 88788, 1-888-373-7888, 233733)."""
    import re

    verified = {"911", "988", "1-800-799-7233", "88788", "1-888-373-7888", "233733"}
    en, es = canned("en"), canned("es")
    assert [c["id"] for c in en] == [c["id"] for c in es]
    for item in en + es:
        for number in re.findall(r"\d[\d-]+\d", item["text"]):
            if len(number) < 3:  # "24/7", "24 horas"
                continue
            assert number in verified, (item["id"], number)
    assert any("AYUDA" in c["text"] and "988" in c["text"] for c in es)
    assert canned("fr") == en


@pytest.mark.parametrize("path", ["/dashboard/flow"])
async def test_flow_page_draws_the_real_intake_flow(
    client: TestClient, make_user: MakeUser, path: str
) -> None:
    """The flow page shows the real intake machine's states as an SVG diagram."""
    await make_user("ana")
    await sign_in(client, "ana")
    html = await (await client.get(path)).text()
    assert "<svg" in html and ">safety_check</text>" in html and ">queued</text>" in html


async def next_of_kind(ws: object, want: str) -> dict[str, object]:
    """The next event of one kind on a dashboard socket (others are skipped)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 10)  # type: ignore[attr-defined]
        event = json.loads(msg.data)
        if event["kind"] == want:
            return event  # type: ignore[no-any-return]


async def test_unclaimed_priority_one_alarms_every_advocate_after_a_minute(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A texter in danger waits unclaimed: no alarm before 60 seconds, then one on every
    advocate's screen (not only the one who might take it), once, naming the texter's
    alias, priority and words (not "conversation #3")."""
    from bot.engine import utcnow
    from bot.keys import ENGINE

    await make_user("ana")
    await make_user("ben")
    await sign_in(client, "ana")
    await sign_in(second_client, "ben")
    ws_ana = await client.ws_connect("/ws")
    ws_ben = await second_client.ws_connect("/ws")
    reply = await text("he has a gun and says he will shoot me", number=NUMBER)
    assert "911" in reply[0]
    engine = client.server.app[ENGINE]
    now = utcnow()
    assert await engine.check_alarms(now + timedelta(seconds=30)) == []
    (cid,) = await engine.check_alarms(now + timedelta(seconds=61))
    assert await engine.check_alarms(now + timedelta(seconds=90)) == []  # once
    for ws in (ws_ana, ws_ben):
        alarm = await next_of_kind(ws, "alarm")
        assert {k: alarm[k] for k in ("kind", "conversation_id", "reason", "advocate_id")} == {
            "kind": "alarm",
            "conversation_id": cid,
            "reason": "p1_unclaimed",
            "advocate_id": None,
        }
        assert alarm["priority"] == 1 and alarm["alias"]
        assert alarm["words"] == "he has a gun and says he will shoot me"
    await ws_ana.close()
    await ws_ben.close()


async def test_danger_from_a_held_texter_alarms_the_holder(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """When a texter an advocate holds writes of danger, Haven texts nothing itself and
    the holder's screen gets a danger alarm; another advocate's does not."""
    cid = await queued(client, text)
    ana = await make_user("ana")
    await make_user("ben")
    token = await sign_in(client, "ana")
    await sign_in(second_client, "ben")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    ws_ana = await client.ws_connect("/ws")
    ws_ben = await second_client.ws_connect("/ws")
    assert await text("he's back and he has a knife", number=NUMBER) == []
    alarm = await next_of_kind(ws_ana, "alarm")
    assert alarm["reason"] == "danger_held" and alarm["conversation_id"] == cid
    assert alarm["advocate_id"] == ana.id
    await text("AGENT", number="+15551230077")  # a public event Ben does get
    seen: list[dict[str, object]] = []
    while not any(e["kind"] == "queue" for e in seen):
        seen.append(json.loads((await asyncio.wait_for(ws_ben.receive(), 10)).data))
    assert not any(e["kind"] == "alarm" for e in seen)
    await ws_ana.close()
    await ws_ben.close()


async def test_training_role_play_talks_to_the_real_flow(
    client: TestClient, make_user: MakeUser
) -> None:
    """A supervisor's role-play texter gets the real opening, reaches the real queue under
    a fictional number, and advocates' replies to it go to the console sender."""
    await make_user("sue", role="supervisor")
    token = await sign_in(client, "sue")
    for body in ("hi", "yes", "AGENT"):
        sent = await post(client, "/dashboard/training/send", token, body=body)
        assert sent.status == 200
    transcript = await (await client.get("/dashboard/training/transcript")).text()
    assert "Is it safe for you to text right now?" in transcript
    async with client.server.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations(states=["queued"])
        texter = await tx.get_texter(conv.texter_id)
    assert texter.phone.startswith("+1202555") and texter.phone[8:10] == "01"


async def test_transfer_to_another_programs_team_keeps_the_context(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A partner program's hand-off: back to the queue for the trafficking team, with the
    labels, signals and answers already gathered, and no question asked again."""
    cid = await queued(client, text, first="my boss keeps my passport and i owe him money")
    before = await conversation(client, cid)
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    moved = await post(
        client, f"/dashboard/conversations/{cid}/transfer", token, to="team:trafficking"
    )
    assert moved.status == 200
    after = await conversation(client, cid)
    assert (after.state, after.team, after.advocate_id) == ("queued", "trafficking", None)
    assert (after.labels, after.signals, after.answers) == (
        before.labels,
        before.signals,
        before.answers,
    )
    bad = await post(client, f"/dashboard/conversations/{cid}/transfer", token, to="team:nope")
    assert bad.status == 400


async def test_capacity_holds_for_take_this_one_and_concurrent_take_next(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """An advocate at capacity 1 cannot take a second texter by "Take" (409), and three
    take-next requests at once leave her holding exactly one."""
    first = await queued(client, text, number="+15551230011")
    second = await queued(client, text, number="+15551230012")
    await queued(client, text, number="+15551230013")
    ana = await make_user("ana")
    token = await sign_in(client, "ana")
    set_cap = await post(client, "/dashboard/presence", token, presence="available", capacity="1")
    assert set_cap.status == 200
    assert (await post(client, f"/dashboard/conversations/{first}/claim", token)).status == 200
    refused = await post(client, f"/dashboard/conversations/{second}/claim", token)
    assert refused.status == 409
    assert (await conversation(client, second)).advocate_id is None
    # Free her again, then race three take-next requests.
    released = await post(client, f"/dashboard/conversations/{first}/transfer", token, to="queue")
    assert released.status == 200
    answers = await asyncio.gather(*(post(client, "/dashboard/take-next", token) for _ in range(3)))
    assert sorted(a.status for a in answers) == [200, 409, 409]  # type: ignore[attr-defined]
    async with client.server.app[STORE].transaction() as tx:
        held = await tx.list_conversations(states=["with_advocate"], advocate_id=ana.id)
    assert len(held) == 1


async def test_transfer_can_be_declined_and_only_to_someone_on_shift(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """An offer to a colleague who is signed out, or to an admin, is refused; a signed-in
    colleague may decline, and the texter stays with the advocate who offered."""
    cid = await queued(client, text)
    ana = await make_user("ana")
    ben = await make_user("ben")
    root = await make_user("root", "admin")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    for target in (ben, root):
        offer = await post(
            client, f"/dashboard/conversations/{cid}/transfer", token, to=str(target.id)
        )
        assert offer.status == 409
    other = await sign_in(second_client, "ben")
    offer = await post(client, f"/dashboard/conversations/{cid}/transfer", token, to=str(ben.id))
    assert offer.status == 200
    declined = await post(second_client, f"/dashboard/conversations/{cid}/decline", other)
    assert declined.status == 200
    after = await conversation(client, cid)
    assert (after.advocate_id, after.transfer_to) == (ana.id, None)
    again = await post(second_client, f"/dashboard/conversations/{cid}/accept", other)
    assert again.status == 409


async def test_alarms_still_show_after_a_reload_and_to_late_sign_ins(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The priority-1 alarm is drawn by the server on every page while the texter waits
    unclaimed past a minute, so a reload or an advocate who signs in later still sees it;
    once someone takes the texter it is gone."""
    from unittest.mock import patch

    from bot.dashboard.views import common as views

    await make_user("ana")
    await make_user("ben")
    token = await sign_in(client, "ana")
    await text("he has a gun and says he will shoot me", number=NUMBER)
    async with client.server.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations(states=["queued"])
    marker = f'id="alarm-{conv.id}-p1_unclaimed"'
    assert marker not in await (await client.get("/dashboard/queue")).text()  # not yet
    later = datetime.now(UTC) + timedelta(seconds=61)
    # serve's background tick raises the alarm (recorded once, for every process's pages)
    await client.server.app[ENGINE].check_alarms(later)
    with patch.object(views, "utcnow", return_value=later):
        assert marker in await (await client.get("/dashboard/queue")).text()
        await sign_in(second_client, "ben")
        assert marker in await (await second_client.get("/dashboard/flow")).text()
        assert (
            await post(client, f"/dashboard/conversations/{conv.id}/claim", token)
        ).status == 200
        assert marker not in await (await second_client.get("/dashboard/queue")).text()


async def test_danger_alarm_for_a_held_texter_stands_until_the_advocate_answers(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A held texter writes of danger: the holder's pages show the alarm (reloads too)
    until the holder replies."""
    cid = await queued(client, text)
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    await text("he's back and he has a knife", number=NUMBER)
    marker = f'id="alarm-{cid}-danger_held"'
    assert marker in await (await client.get("/dashboard/queue")).text()
    assert marker in await (await client.get(f"/dashboard/conversations/{cid}")).text()
    await post(client, f"/dashboard/conversations/{cid}/reply", token, body="Are you safe now?")
    assert marker not in await (await client.get("/dashboard/queue")).text()


async def test_holder_is_told_when_the_texter_deletes_everything(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """DELETE then DELETE from a held texter erases the conversation; the holder's socket
    still gets the "deleted" event (the row is gone, so it names the holder)."""
    cid = await queued(client, text)
    ana = await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    ws = await client.ws_connect("/ws")
    await text("DELETE", number=NUMBER)
    await text("DELETE", number=NUMBER)
    while True:
        event = await next_of_kind(ws, "conversation")
        if event.get("state") == "deleted":
            break
    assert event == {
        "kind": "conversation",
        "conversation_id": cid,
        "state": "deleted",
        "advocate_id": ana.id,
    }
    await ws.close()


async def test_queue_row_says_why_they_wait_and_whether_it_is_safe_to_text(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The row shows the words that raised the priority (not "hi"), that it is not safe to
    text, and screening answers in plain words; the conversation page warns before a reply."""
    await text("hi", number=NUMBER)
    await text("no", number=NUMBER)  # not safe to text
    await text("he took my passport and says i owe him", number=NUMBER)
    await text("AGENT", number=NUMBER)
    async with client.server.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations(states=["queued"])
    await make_user("ana")
    token = await sign_in(client, "ana")
    html = await (await client.get("/dashboard/queue")).text()
    row = html[html.index(f'data-cid="{conv.id}"') :]
    row = row[: row.index("</tr>")]
    assert "he took my passport" in row and ">NO<" in row
    await post(client, f"/dashboard/conversations/{conv.id}/claim", token)
    page = await (await client.get(f"/dashboard/conversations/{conv.id}")).text()
    assert 'id="unsafe-warning"' in page and "NOT safe" in page


def test_screening_answers_read_as_plain_words_in_the_flow_order() -> None:
    """Answer keys become phrases an advocate reads at a glance, in the order asked."""
    from bot.dashboard.wording import readable_answers

    assert readable_answers({"minor_sex": "no", "weapon": "yes", "choked": "skip"}) == [
        ("weapon used or threatened", "yes"),
        ("ever choked", "skip"),
        ("traded sex", "no"),
    ]


async def test_signing_out_hands_held_texters_back_so_danger_gets_911(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Ana holds a texter and signs out: the texter goes back to the queue, so when they
    then write of danger Haven answers with 911 instead of staying quiet."""
    cid = await queued(client, text)
    await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    await client.post("/logout", data={"_csrf": token})
    after = await conversation(client, cid)
    assert (after.state, after.advocate_id) == ("queued", None)
    assert "911" in "\n".join(await text("he's back, he has a knife", number=NUMBER))


async def test_the_holder_hears_when_the_texter_exits(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """EXIT from a held texter lets go of the hold; the old holder's socket still gets the
    conversation event (it names them), so their page stops offering a reply box."""
    cid = await queued(client, text)
    ana = await make_user("ana")
    token = await sign_in(client, "ana")
    await post(client, f"/dashboard/conversations/{cid}/claim", token)
    ws = await client.ws_connect("/ws")
    await text("EXIT", number=NUMBER)
    event = await next_of_kind(ws, "conversation")
    assert event == {
        "kind": "conversation",
        "conversation_id": cid,
        "state": "exited",
        "advocate_id": ana.id,
    }
    await ws.close()


async def test_take_next_never_hands_out_a_role_play_before_a_texter(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A supervisor's role-play in danger waits in the queue marked as such; "Take next"
    gives the advocate the real texter, and no unclaimed alarm fires for the rehearsal."""
    from bot.engine import utcnow
    from bot.keys import ENGINE
    from bot.vocabulary import ROLE_PLAY_PREFIX

    real = await queued(client, text, first="he took my passport")
    await text("he has a gun and says he will shoot me", number=ROLE_PLAY_PREFIX + "60")
    await make_user("ana")
    token = await sign_in(client, "ana")
    taken = await post(client, "/dashboard/take-next", token)
    assert (await taken.json())["conversation_id"] == real  # type: ignore[attr-defined]
    engine = client.server.app[ENGINE]
    assert await engine.check_alarms(utcnow() + timedelta(seconds=61)) == []
    from unittest.mock import patch

    from bot.dashboard.views import common as views

    with patch.object(views, "utcnow", return_value=utcnow() + timedelta(seconds=61)):
        assert "p1_unclaimed" not in await (await client.get("/dashboard/queue")).text()

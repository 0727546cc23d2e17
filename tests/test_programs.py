"""Programs sharing one Haven, through the signed webhook: routing by the number texted,
each program's name, hours and lines, a referral to a partner program with the texter's
consent (both languages), per-program figures and the `programs` / `stats` commands."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import programs, reports
from bot.__main__ import main
from bot.engine import utcnow
from bot.handoff import claim, take_next
from bot.hours import DAYS
from bot.keys import ENGINE, SETTINGS, STORE
from bot.resources.hsds import read_package
from bot.store.base import Conversation, Program, User
from flows import copy
from tests.helpers import SAMPLE

Text = Callable[..., Awaitable[list[str]]]
DEFAULT_TO = "+15559990000"  # the number the conftest's texts go to: no program has it
FREEDOM_TO = "+15557770000"
NUMBER = "+15551230101"


async def add_freedom(client: TestClient, **extra: Any) -> Program:
    return await programs.add_program(
        client.app[STORE],
        "freedom",
        "Freedom Network",
        FREEDOM_TO,
        utcnow(),
        lines=extra.pop("lines", ("trafficking_hotline", "lifeline_988")),
        **extra,
    )


async def open_conversation(client: TestClient, number: str = NUMBER) -> Conversation:
    async with client.app[STORE].transaction() as tx:
        texter = await tx.get_texter_by_hash(client.app[ENGINE].hash(number))
        assert texter is not None
        conv = await tx.get_open_conversation(texter.id)
    assert conv is not None
    return conv


async def held(
    client: TestClient, text: Text, first: str = "hi", to: str = DEFAULT_TO
) -> tuple[Conversation, User]:
    """The texter asks for a person at `to` and advocate Ana takes them."""
    await text(first, number=NUMBER, To=to)
    await text("AGENT" if first == "hi" else "PERSONA", number=NUMBER, To=to)
    async with client.app[STORE].transaction() as tx:
        ana = await tx.add_user("ana", "advocate", "x", [], utcnow())
    conv = await open_conversation(client)
    await claim(client.app[STORE], conv.id, ana, utcnow())
    return await open_conversation(client), ana


async def outbox(client: TestClient, conversation_id: int) -> list[str]:
    async with client.app[STORE].transaction() as tx:
        return [
            m.body
            for m in await tx.list_messages(conversation_id)
            if m.direction == "out" and m.status != "replied"
        ]


async def test_a_text_routes_by_the_number_it_was_sent_to(client: TestClient, text: Text) -> None:
    """A texter who writes to a program's number gets that program's name and joins it;
    one who writes to any other number gets the default program (the environment's name),
    exactly as a Haven with no programs."""
    freedom = await add_freedom(client)
    to_program = "\n".join(await text("hi", number=NUMBER, To=FREEDOM_TO))
    to_default = "\n".join(await text("hi", number="+15551230102", To="+15550000001"))
    assert "Freedom Network" in to_program and "Harbor House" not in to_program
    assert "Harbor House" in to_default and "Freedom Network" not in to_default
    assert (await open_conversation(client)).program_id == freedom.id
    assert (await open_conversation(client, "+15551230102")).program_id is None


async def test_spanish_texters_see_their_programs_name_too(client: TestClient, text: Text) -> None:
    """A first message in Spanish to a program's number is answered in Spanish with that
    program's name."""
    await add_freedom(client)
    reply = "\n".join(await text("hola, necesito ayuda por favor", number=NUMBER, To=FREEDOM_TO))
    assert "Freedom Network" in reply and "seguro" in reply.lower()


async def test_each_program_has_its_own_hours_and_lines(client: TestClient, text: Text) -> None:
    """A program closed now answers with its own hours and national lines (not the
    default's), while the 24/7 default program answers a texter at once; the program's
    texter joins the queue when it opens, the default's open_shift touches nothing."""
    now = utcnow()
    other_day = DAYS[(now.weekday() + 3) % 7]
    await add_freedom(client, hours=f"{other_day} 09:00-17:00 UTC")
    closed = "\n".join(await text("hello", number=NUMBER, To=FREEDOM_TO))
    assert "Freedom Network" in closed and "1-888-373-7888" in closed
    assert "1-800-799-7233" not in closed  # the default's line, not this program's
    assert (await open_conversation(client)).state == "after_hours"
    opened = "\n".join(await text("hello", number="+15551230102"))
    assert "Harbor House" in opened and (await open_conversation(client, "+15551230102")).state
    engine = client.app[ENGINE]
    assert await engine.open_shift(now) == 0  # the default is open but nobody waits there
    opening = (now + timedelta(days=3)).replace(hour=9, minute=30)
    assert await engine.open_shift(opening) == 1
    assert (await open_conversation(client)).state == "queued"


@pytest.mark.parametrize(
    ("first", "yes", "language"), [("hi", "yes", "en"), ("hola necesito ayuda", "si", "es")]
)
async def test_yes_moves_the_conversation_with_its_context(
    client: TestClient, text: Text, first: str, yes: str, language: str
) -> None:
    """The advocate's referral texts the consent question; YES answers with
    partner_connected, and the conversation joins the partner's queue with its answers,
    labels, priority, notes and place in line; the advocate no longer holds it, and the
    texter's next message is not asked anything again."""
    freedom = await add_freedom(client)
    conv, ana = await held(client, text, first)
    assert conv.language == language
    await text("he hurts me and took my papers", number=NUMBER)
    async with client.app[STORE].transaction() as tx:
        await tx.add_note(conv.id, ana.id, "prefers evenings", utcnow())
    before = await open_conversation(client)
    await programs.offer_partner(
        client.app[STORE], conv.id, ana, "freedom", utcnow(), client.app[SETTINGS]
    )
    assert (await outbox(client, conv.id))[-1] == copy.render("partner_consent", language, {})
    reply = await text(yes, number=NUMBER)
    assert reply == [copy.render("partner_connected", language, {})]
    moved = await open_conversation(client)
    assert moved.program_id == freedom.id and moved.state == "queued"
    assert moved.advocate_id is None and moved.queued_at == before.queued_at
    assert (moved.labels, moved.priority, moved.answers, moved.need) == (
        before.labels,
        before.priority,
        before.answers,
        before.need,
    )
    async with client.app[STORE].transaction() as tx:
        assert [n.body for n in await tx.list_notes(conv.id)] == ["prefers evenings"]
    assert await text("ok thanks", number=NUMBER) == []  # waiting: nothing re-asked


@pytest.mark.parametrize(("first", "no", "language"), [("hi", "no", "en"), ("hola", "no", "es")])
async def test_no_keeps_the_conversation_where_it_is(
    client: TestClient, text: Text, first: str, no: str, language: str
) -> None:
    """NO answers partner_declined and nothing moves: same program, same advocate."""
    await add_freedom(client)
    conv, ana = await held(client, text, first)
    await programs.offer_partner(
        client.app[STORE], conv.id, ana, "freedom", utcnow(), client.app[SETTINGS]
    )
    reply = await text(no, number=NUMBER)
    assert reply == [copy.render("partner_declined", language, {})]
    after = await open_conversation(client)
    assert (after.program_id, after.advocate_id, after.state) == (None, ana.id, "with_advocate")
    assert programs.OFFER not in after.flow
    assert await text("yes", number=NUMBER) == []  # a later yes answers nothing: relayed


async def test_danger_while_the_question_is_pending_is_not_an_answer(
    client: TestClient, text: Text
) -> None:
    """Danger wins: a danger message while consent is pending moves nothing, Haven stays
    quiet (an advocate holds them) and the holder is alarmed; the offer lapses."""
    await add_freedom(client)
    conv, ana = await held(client, text)
    await programs.offer_partner(
        client.app[STORE], conv.id, ana, "freedom", utcnow(), client.app[SETTINGS]
    )
    assert await text("yes he has a gun and he is here now", number=NUMBER) == []
    after = await open_conversation(client)
    assert (after.program_id, after.advocate_id) == (None, ana.id)
    assert programs.OFFER not in after.flow
    async with client.app[STORE].transaction() as tx:
        alarms = await tx.list_alarms()
    assert [(a.conversation_id, a.kind) for a in alarms] == [(conv.id, "danger_held")]


async def test_offer_needs_the_holder_and_another_program(client: TestClient, text: Text) -> None:
    """Only the holder refers; not to the program the texter is already with, nor to an
    unknown one; a refused offer texts nothing."""
    from bot.store.base import Conflict, NotFound

    await add_freedom(client)
    conv, _ana = await held(client, text)
    async with client.app[STORE].transaction() as tx:
        ben = await tx.add_user("ben", "advocate", "x", [], utcnow())
    store, settings = client.app[STORE], client.app[SETTINGS]
    with pytest.raises(Conflict):
        await programs.offer_partner(store, conv.id, ben, "freedom", utcnow(), settings)
    with pytest.raises(NotFound):
        await programs.offer_partner(store, conv.id, _ana, "nowhere", utcnow(), settings)
    assert await outbox(client, conv.id) == []


async def test_take_next_skips_other_programs_texters(client: TestClient, text: Text) -> None:
    """An advocate of one program takes that program's texter next, even with a
    higher-priority texter of another program waiting longer."""
    freedom = await add_freedom(client)
    await text("he hit me and i am scared of him", number="+15551230102")  # default, P3+
    await text("AGENT", number="+15551230102")
    await text("hi", number=NUMBER, To=FREEDOM_TO)
    await text("AGENT", number=NUMBER, To=FREEDOM_TO)
    async with client.app[STORE].transaction() as tx:
        eve = await tx.add_user("eve", "advocate", "x", [], utcnow())
    taken = await take_next(
        client.app[STORE], eve, utcnow(), client.app[SETTINGS], program_ids={freedom.id}
    )
    assert taken is not None and taken.program_id == freedom.id


async def test_figures_stay_each_programs_own_and_count_referrals(
    client: TestClient, text: Text
) -> None:
    """After one accepted referral, the default program counts it as sent and the partner
    as received; each program counts only its own conversations."""
    await add_freedom(client)
    conv, ana = await held(client, text)
    await text("hi", number="+15551230102", To=FREEDOM_TO)
    await programs.offer_partner(
        client.app[STORE], conv.id, ana, "freedom", utcnow(), client.app[SETTINGS]
    )
    await text("yes", number=NUMBER)
    rows = {r["program"]: r for r in await reports.figures(client.app[STORE], client.app[SETTINGS])}
    assert rows["default"]["conversations"] == 0 and rows["freedom"]["conversations"] == 2
    assert rows["default"]["partner_out_accepted"] == 1 and rows["freedom"]["partner_in"] == 1
    assert rows["freedom"]["queued"] == 1  # the referred texter waits in the partner's queue
    with pytest.raises(ValueError):
        await reports.figures(client.app[STORE], client.app[SETTINGS], "nowhere")


async def test_figures_since_a_date_count_only_conversations_started_since(
    client: TestClient, text: Text
) -> None:
    """A reporting period: figures since before the texts count them, figures since after
    count nothing, referrals included."""
    await add_freedom(client)
    conv, ana = await held(client, text)
    store, settings = client.app[STORE], client.app[SETTINGS]
    async with store.transaction() as tx:
        sites = read_package(SAMPLE).sites
        await tx.replace_resources(sites, utcnow())
        await tx.record_referral(conv.id, sites[0].service_id, ana.id, utcnow())
    day = timedelta(days=1)
    before = (await reports.figures(store, settings, "default", utcnow() - day))[0]
    after = (await reports.figures(store, settings, "default", utcnow() + day))[0]
    assert before["conversations"] == 1 and before["referrals_directory"] == 1
    assert after["conversations"] == 0 and after["referrals_directory"] == 0


def test_programs_and_stats_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`programs add` refuses a bad number or hours and a taken slug; `programs list
    --json` shows the default program and the added one; `users add --program` refuses an
    unknown program; `stats --csv` has one row per program and no number or text;
    `--since` takes a date and refuses anything else."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("HAVEN_SECRET_KEY", "k" * 40)
    add = ["programs", "add", "freedom", "--name", "Freedom Network", "--number", FREEDOM_TO]
    assert main([*add, "--hours", "mon-fri 09:00-17:00 America/Chicago"]) == 0
    assert main(add) == 2  # slug taken
    assert main(["programs", "add", "x", "--name", "X", "--number", "555"]) == 2
    assert main(["programs", "add", "y", "--name", "Y", "--number", "+15557770001", "--hours",
                 "someday"]) == 2  # fmt: skip
    capsys.readouterr()
    assert main(["programs", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["slug"] for p in listed] == ["default", "freedom"]
    assert listed[1]["number"] == FREEDOM_TO and listed[1]["hours"].startswith("mon-fri")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["users", "add", "bo", "--role", "advocate", "--program", "nope",
                 "--password-stdin"]) == 2  # fmt: skip
    assert main(["stats", "--csv"]) == 0
    out = capsys.readouterr().out
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["program"] for r in table] == ["default", "freedom"]
    assert "+1" not in out
    assert main(["stats", "--program", "freedom"]) == 0
    assert json.loads(capsys.readouterr().out)["program"] == "freedom"
    assert main(["stats", "--csv", "--since", "2026-01-01"]) == 0
    assert [r["program"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == [
        "default",
        "freedom",
    ]
    with pytest.raises(SystemExit) as refused:
        main(["stats", "--since", "last tuesday"])
    assert refused.value.code == 2 and "not a date" in capsys.readouterr().err


async def test_place_in_line_and_wait_count_only_the_texters_own_program(
    client: TestClient, text: Text
) -> None:
    """Two texters wait at the default program; one writes to Freedom Network: she is
    number 1 in Freedom's line, and with only the default program's advocate available,
    Freedom's texter is told honestly that nobody is free (no minutes)."""
    freedom = await add_freedom(client)
    async with client.app[STORE].transaction() as tx:
        ana = await tx.add_user("ana", "advocate", "x", [], utcnow())
        ana.presence = "available"
        await tx.save_user(ana)
    for number in ("+15551230201", "+15551230202"):
        await text("hi", number=number)
        await text("AGENT", number=number)
    await text("hi", number=NUMBER, To=FREEDOM_TO)
    (joined,) = await text("AGENT", number=NUMBER, To=FREEDOM_TO)
    assert "No advocate is free" in joined and " min" not in joined
    async with client.app[STORE].transaction() as tx:
        ben = await tx.add_user("ben", "advocate", "x", [], utcnow())
        ben.presence = "available"
        await tx.save_user(ben)
        await tx.set_user_programs(ben.id, [freedom.id])
    update = " ".join(await text("how long", number=NUMBER, To=FREEDOM_TO))
    assert "number 1, about 1 min" in update, update

"""Rule 1's alarms (bot/alarms.py): fired once across processes, cleared on claim, paging
on-call when nobody is signed in, and what a reassign tells the new holder."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta

from bot import alarms, handoff
from bot.app import create_app
from bot.crypto import Crypto
from bot.engine import Engine, utcnow
from bot.events import Event, Events
from bot.keys import ENGINE, SENDER, STORE
from bot.settings import Settings
from bot.sms.sender import ConsoleSender
from bot.sms.webhook import InboundSms
from bot.store import Store
from bot.store.base import User
from tests.helpers import Backend

_sids = itertools.count(1)
DANGER = "he has a gun and says he will shoot me"
ONCALL = ("+15557770001", "+15557770002")


async def say(engine: Engine, number: str, body: str, now: datetime) -> int:
    sms = InboundSms(f"SM{next(_sids):032d}", number, "+15559990000", body)
    outcome = await engine.handle_inbound(sms, now)
    assert outcome.conversation_id is not None
    return outcome.conversation_id


async def staff(store: Store, name: str, presence: str, role: str = "advocate") -> User:
    async with store.transaction() as tx:
        user = await tx.add_user(name, role, "x", [], utcnow())
        user.presence = presence
        await tx.save_user(user)
        return user


async def active(store: Store) -> list[tuple[int, str]]:
    async with store.transaction() as tx:
        return [(a.conversation_id, a.kind) for a in await tx.list_alarms(active=True)]


async def test_the_unclaimed_alarm_fires_once_across_processes(
    engine: Engine, backend: Backend, crypto: Crypto
) -> None:
    """Two processes on one database (on PostgreSQL, truly concurrent) check at the same
    moment, each with its own store: one alarm in all."""
    other_store = backend.make()
    await other_store.open()
    try:
        other = Engine(engine.settings, other_store, crypto.lookup_hash, Events())
        now = utcnow()
        await say(engine, "+15550000001", DANGER, now)
        later = now + timedelta(seconds=61)
        results = await asyncio.gather(engine.check_alarms(later), other.check_alarms(later))
        assert sorted(len(r) for r in results) == [0, 1]
        assert await other.check_alarms(later + timedelta(seconds=30)) == []
    finally:
        await other_store.close()


async def test_claiming_clears_the_alarm_on_every_screen(engine: Engine) -> None:
    """The P1 alarm stands until someone takes the texter; the claim clears its record and
    tells every screen (alarm_cleared), so no stale alarm is drawn on the next page."""
    store = engine.store
    now = utcnow()
    cid = await say(engine, "+15550000002", DANGER, now)
    await engine.check_alarms(now + timedelta(seconds=61))
    assert await active(store) == [(cid, alarms.UNCLAIMED)]
    ana = await staff(store, "ana", "available")
    async with engine.events.subscribe() as events:
        await handoff.claim(store, cid, ana, now + timedelta(seconds=70), engine.events)
        seen: list[Event] = []
        while not events.empty():
            seen.append(events.get_nowait())
    assert await active(store) == []
    assert Event("alarm_cleared", {"conversation_id": cid}) in seen
    assert await alarms.standing(store, ana, now, engine.settings) == []


async def test_nobody_signed_in_pages_on_call_once_without_content(
    aiohttp_client: object, settings: Settings
) -> None:
    """An unclaimed P1 with no staff signed in reaches the on-call numbers by SMS, through
    the outbox and the sender, once per texter, with none of the texter's words or number;
    a later check does not page again, and a texter waiting while someone is signed in
    does not page at all."""
    app = create_app(settings.with_(oncall_numbers=ONCALL))
    await aiohttp_client(app)  # type: ignore[operator]
    wrote = utcnow() - timedelta(seconds=61)  # they wrote a minute ago; the outbox runs now
    cid = await say(app[ENGINE], "+15550000003", DANGER, wrote)
    await app[ENGINE].check_alarms(utcnow())  # serve's tick may have raised it first
    assert (cid, alarms.UNCLAIMED) in await active(app[STORE])
    await app[ENGINE].check_alarms(utcnow() + timedelta(seconds=300))
    sender = app[SENDER]
    assert isinstance(sender, ConsoleSender)
    for _ in range(200):  # the outbox runs on serve's tick
        if len(sender.sent) >= len(ONCALL):
            break
        await asyncio.sleep(0.05)
    assert sorted(to for to, _ in sender.sent) == sorted(ONCALL)
    for _, body in sender.sent:
        assert "gun" not in body and "0003" not in body and "priority 1" in body
    # Someone signs in; a second texter in danger waits: the alarm goes to screens only.
    await staff(app[STORE], "ana", "available")
    later = utcnow() + timedelta(seconds=400)
    other = await say(app[ENGINE], "+15550000004", DANGER, later)
    assert await app[ENGINE].check_alarms(later + timedelta(seconds=61)) == [other]
    await asyncio.sleep(0.3)
    assert len(sender.sent) == len(ONCALL)


async def test_reassigning_a_texter_in_danger_alarms_the_new_holder(engine: Engine) -> None:
    """A supervisor hands a P1 texter to Ben: Ben's screen gets a danger alarm (and the
    unclaimed alarm clears), standing until Ben replies."""
    store = engine.store
    now = utcnow()
    cid = await say(engine, "+15550000005", DANGER, now)
    await engine.check_alarms(now + timedelta(seconds=61))
    sam = await staff(store, "sam", "available", role="supervisor")
    ben = await staff(store, "ben", "available")
    async with engine.events.subscribe() as events:
        await handoff.reassign(store, cid, sam, ben.id, now, engine.events)
        seen = []
        while not events.empty():
            seen.append(events.get_nowait())
    danger = [e for e in seen if e.kind == "alarm"]
    assert [(e.data["reason"], e.data["advocate_id"]) for e in danger] == [
        (alarms.DANGER_HELD, ben.id)
    ]
    assert await active(store) == [(cid, alarms.DANGER_HELD)]
    standing = await alarms.standing(store, ben, now, engine.settings)
    assert [(a["reason"], a["words"]) for a in standing] == [(alarms.DANGER_HELD, DANGER)]
    await engine.send_from_advocate(cid, ben, "I'm here. Are you somewhere safe?")
    assert await active(store) == []


async def test_standing_alarms_show_only_the_staff_members_programs(engine: Engine) -> None:
    """A texter of a partner program waits unclaimed in danger: that program's advocate
    sees the standing alarm on page load; an advocate of the default program does not."""
    store = engine.store
    now = utcnow()
    cid = await say(engine, "+15550000006", DANGER, now)
    async with store.transaction() as tx:
        freedom = await tx.add_program(
            "freedom", "Freedom Network", "+15557770000", None, None, False, now
        )
        await tx.set_conversation_program(cid, freedom.id)
    await engine.check_alarms(now + timedelta(seconds=61))
    ana = await staff(store, "ana", "available")
    fay = await staff(store, "fay", "available")
    async with store.transaction() as tx:
        await tx.set_user_programs(fay.id, [freedom.id])
    assert await alarms.standing(store, ana, now, engine.settings) == []
    (shown,) = await alarms.standing(store, fay, now, engine.settings)
    assert (shown["conversation_id"], shown["reason"]) == (cid, alarms.UNCLAIMED)

"""Rule 1's alarms (bot/alarms.py): fired once across processes, cleared on claim, paging
on-call when nobody is signed in, and what a reassign tells the new holder."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import alarms, handoff
from bot.app import create_app
from bot.engine import Engine, utcnow
from bot.events import Event
from bot.keys import ENGINE, SENDER, SETTINGS, STORE
from bot.settings import Settings
from bot.sms.sender import ConsoleSender
from bot.sms.webhook import InboundSms
from bot.store.base import User

_sids = itertools.count(1)
DANGER = "he has a gun and says he will shoot me"
ONCALL = ("+15557770001", "+15557770002")


async def say(engine: Engine, number: str, body: str, now: datetime) -> int:
    sms = InboundSms(f"SM{next(_sids):032d}", number, "+15559990000", body)
    outcome = await engine.handle_inbound(sms, now)
    assert outcome.conversation_id is not None
    return outcome.conversation_id


async def staff(app: web.Application, name: str, presence: str, role: str = "advocate") -> User:
    async with app[STORE].transaction() as tx:
        user = await tx.add_user(name, role, "x", [], utcnow())
        user.presence = presence
        await tx.save_user(user)
        return user


async def active(app: web.Application) -> list[tuple[int, str]]:
    async with app[STORE].transaction() as tx:
        return [(a.conversation_id, a.kind) for a in await tx.list_alarms(active=True)]


async def test_the_unclaimed_alarm_fires_once_across_processes(
    aiohttp_client: object, settings: Settings, tmp_path: Path
) -> None:
    """Two `serve` processes on one database check at the same moment: one alarm in all."""
    first, second = create_app(settings), create_app(settings)
    for app in (first, second):
        await aiohttp_client(app)  # type: ignore[operator]
    now = utcnow()
    await say(first[ENGINE], "+15550000001", DANGER, now)
    later = now + timedelta(seconds=61)
    results = await asyncio.gather(
        first[ENGINE].check_alarms(later), second[ENGINE].check_alarms(later)
    )
    assert sorted(len(r) for r in results) == [0, 1]
    assert await first[ENGINE].check_alarms(later + timedelta(seconds=30)) == []


async def test_claiming_clears_the_alarm_on_every_screen(client: TestClient) -> None:
    """The P1 alarm stands until someone takes the texter; the claim clears its record and
    tells every screen (alarm_cleared), so no stale alarm is drawn on the next page."""
    app = client.app
    now = utcnow()
    cid = await say(app[ENGINE], "+15550000002", DANGER, now)
    await app[ENGINE].check_alarms(now + timedelta(seconds=61))
    assert await active(app) == [(cid, alarms.UNCLAIMED)]
    ana = await staff(app, "ana", "available")
    async with app[ENGINE].events.subscribe() as events:
        await handoff.claim(app[STORE], cid, ana, now + timedelta(seconds=70), app[ENGINE].events)
        seen: list[Event] = []
        while not events.empty():
            seen.append(events.get_nowait())
    assert await active(app) == []
    assert Event("alarm_cleared", {"conversation_id": cid}) in seen
    assert await alarms.standing(app[STORE], ana, now, app[SETTINGS]) == []


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
    assert (cid, alarms.UNCLAIMED) in await active(app)
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
    await staff(app, "ana", "available")
    later = utcnow() + timedelta(seconds=400)
    other = await say(app[ENGINE], "+15550000004", DANGER, later)
    assert await app[ENGINE].check_alarms(later + timedelta(seconds=61)) == [other]
    await asyncio.sleep(0.3)
    assert len(sender.sent) == len(ONCALL)


async def test_reassigning_a_texter_in_danger_alarms_the_new_holder(client: TestClient) -> None:
    """A supervisor hands a P1 texter to Ben: Ben's screen gets a danger alarm (and the
    unclaimed alarm clears), standing until Ben replies."""
    app = client.app
    now = utcnow()
    cid = await say(app[ENGINE], "+15550000005", DANGER, now)
    await app[ENGINE].check_alarms(now + timedelta(seconds=61))
    sam = await staff(app, "sam", "available", role="supervisor")
    ben = await staff(app, "ben", "available")
    async with app[ENGINE].events.subscribe() as events:
        await handoff.reassign(app[STORE], cid, sam, ben.id, now, app[ENGINE].events)
        seen = []
        while not events.empty():
            seen.append(events.get_nowait())
    danger = [e for e in seen if e.kind == "alarm"]
    assert [(e.data["reason"], e.data["advocate_id"]) for e in danger] == [
        (alarms.DANGER_HELD, ben.id)
    ]
    assert await active(app) == [(cid, alarms.DANGER_HELD)]
    standing = await alarms.standing(app[STORE], ben, now, app[SETTINGS])
    assert [(a["reason"], a["words"]) for a in standing] == [(alarms.DANGER_HELD, DANGER)]
    await app[ENGINE].send_from_advocate(cid, ben, "I'm here. Are you somewhere safe?")
    assert await active(app) == []

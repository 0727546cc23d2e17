"""A long, mixed shift, drawn at random from a fixed seed: 80 texters over an hour, every
priority at once, English and Spanish, danger arriving mid-conversation (while waiting, in
intake, or after an advocate took them), advocates signing in, taking, releasing, closing
and signing out. Through the real engine, flow, triage, store and hand-offs on each store
backend. After every step the rules a shift relies on are checked, not one scenario at a
time: danger gets one text with the emergency line first, "take next" never inverts risk,
priority only rises, every text fits two SMS segments, and nothing a texter sent is lost.
(The engine logs nothing per message; log lines are checked on the webhook in test_logs
and on a real server in test_serve_harness.)"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import handoff, queue
from bot.engine import Engine, utcnow
from bot.sms.webhook import InboundSms
from bot.store.base import Conflict, User
from bot.triage import triage
from flows.sms_segments import segments

SEED = 20261202
TEXTERS = 80
MINUTES = 60
SECOND = timedelta(seconds=1)

# Plain, unmistakable messages per kind; the test checks triage reads them so (below), so
# the danger rule is exercised on every danger text rather than passing by default.
DANGER = {
    "en": [
        "he has a gun and says he will shoot me",
        "hes outside kicking the door in and says hes going to kill me",
        "i want to kill myself tonight",
        "he is choking me right now help",
    ],
    "es": [
        "mi esposo tiene un cuchillo y dice que me va a matar",
        "me quiero matar esta noche",
        "me esta pegando ahorita ayuda",
    ],
}
TRAFFICKING = {
    "en": ["my boss keeps my passport and says i owe him so i cant leave"],
    "es": ["el patron tiene mi pasaporte y dice que le debo y no me deja salir"],
}
ABUSE = {
    "en": ["my husband yells at me and hits me sometimes, can i get custody"],
    "es": ["mi pareja me grita y a veces me pega, puedo pedir la custodia"],
}
CHATTER = {
    "en": ["ok", "thank you", "how long is the wait", "still there?", "skip"],
    "es": ["ok", "gracias", "cuanto falta", "sigue ahi?", "skip"],
}
OPENING = {
    "en": [["hi", "yes", "1", "skip"], ["hello", "AGENT"], ["i have a question", "AGENT"]],
    "es": [
        ["hola", "ESPAÑOL", "sí", "3", "skip"],
        ["hola", "PERSONA"],
        ["tengo una pregunta", "PERSONA"],
    ],
}


@dataclass
class Texter:
    number: str
    language: str
    script: list[str]
    sent: int = 0
    conversation_ids: set[int] = field(default_factory=set)


def draw_texters(rng: random.Random) -> list[Texter]:
    """Each texter: an opening in their language, then chatter, with danger (20 %),
    trafficking (15 %) or abuse (20 %) words at a random point after the opening."""
    texters = []
    for n in range(TEXTERS):
        language = "es" if rng.random() < 0.4 else "en"
        script = list(rng.choice(OPENING[language]))
        script += [rng.choice(CHATTER[language]) for _ in range(rng.randint(0, 3))]
        roll = rng.random()
        pool = (
            DANGER if roll < 0.2 else TRAFFICKING if roll < 0.35 else ABUSE if roll < 0.55 else None
        )
        if pool is not None:
            script.insert(rng.randint(1, len(script)), rng.choice(pool[language]))
        texters.append(Texter(f"+1555{7000000 + n:07d}", language, script))
    return texters


def test_the_danger_texts_are_read_as_danger() -> None:
    """The soak's danger pool is danger to triage, and its other pools are not, so the
    danger rule below is checked on every danger text the shift sends."""
    for language in ("en", "es"):
        assert all(triage(t).danger for t in DANGER[language])
        others = TRAFFICKING[language] + ABUSE[language] + CHATTER[language]
        others += [text for opening in OPENING[language] for text in opening]
        assert not any(triage(t).danger for t in others), [t for t in others if triage(t).danger]


async def test_an_hour_of_mixed_traffic_keeps_every_rule(engine: Engine) -> None:
    """80 texters (40 % Spanish) over 60 minutes with staff coming and going: every danger
    text not held by an advocate gets exactly one text, with 911 or 988 in its first
    line; every "take next" hands out the top of the queue at that moment; a
    conversation's priority never falls; every text is at most two SMS segments; each
    conversation stores every message its texter sent."""
    rng = random.Random(SEED)
    start = utcnow()
    texters = draw_texters(rng)
    sids = itertools.count(1)
    # Each texter starts at a random minute and writes every 20-200 seconds after.
    events: list[tuple[datetime, str, Texter | None]] = []
    for texter in texters:
        at = start + rng.randint(0, 40) * 60 * SECOND
        for _ in texter.script:
            events.append((at, "text", texter))
            at += rng.randint(20, 200) * SECOND
    for minute in range(0, MINUTES + 30):
        for _ in range(rng.randint(0, 3)):
            events.append((start + (minute * 60 + rng.randint(0, 59)) * SECOND, "staff", None))
    events.sort(key=lambda e: (e[0], e[1]))

    async with engine.store.transaction() as tx:
        staff: list[User] = [
            await tx.add_user(name, "advocate", "x", [], start)
            for name in ("ana", "ben", "carla", "dev", "eli", "fer")
        ]
    for user in staff:
        user.capacity = rng.randint(1, 3)
    on_shift: set[int] = set()
    held: dict[int, set[int]] = defaultdict(set)  # advocate id -> conversation ids
    priority_seen: dict[int, int] = {}
    counts = {"danger_replies": 0, "takes": 0, "texts": 0, "staff_moves": 0}

    async def sign_in(user: User, now: datetime) -> None:
        async with engine.store.transaction() as tx:
            fresh = await tx.get_user(user.id)
            fresh.presence, fresh.capacity = "available", user.capacity
            await tx.save_user(fresh)
        on_shift.add(user.id)

    async def take(user: User, now: datetime) -> None:
        before = await queue.snapshot(engine.store, now, engine.settings)
        # The order itself, checked apart from the code that makes it: risk first, then
        # the longest wait, and waiting lifts nobody above P2 (so never past a P1).
        keys = [(e.priority, -e.waiting_s) for e in before]
        assert keys == sorted(keys), "the queue is out of risk order"
        for e in before:
            own = e.conversation.priority
            assert e.priority == own or (own > 2 and 2 <= e.priority < own), (own, e.priority)
        async with engine.store.transaction() as tx:
            fresh = await tx.get_user(user.id)
        try:
            conv = await handoff.take_next(engine.store, fresh, now, engine.settings)
        except Conflict:  # at capacity: a clear refusal, nobody taken
            assert len(held[user.id]) >= fresh.capacity
            return
        if conv is None:
            assert not before
            return
        assert before and conv.id == before[0].conversation.id, "take next inverted risk"
        held[user.id].add(conv.id)
        counts["takes"] += 1

    async def staff_move(now: datetime) -> None:
        user = rng.choice(staff)
        counts["staff_moves"] += 1
        if user.id not in on_shift:
            await sign_in(user, now)
            return
        move = rng.random()
        if move < 0.5:
            await take(user, now)
        elif move < 0.75 and held[user.id]:
            cid = rng.choice(sorted(held[user.id]))
            await handoff.close(engine.store, cid, user, "referred", now)
            held[user.id].discard(cid)
        elif move < 0.9 and held[user.id]:
            cid = rng.choice(sorted(held[user.id]))
            await handoff.release(engine.store, cid, user, now)
            held[user.id].discard(cid)
        else:
            await handoff.sign_out(engine.store, user, now)
            on_shift.discard(user.id)
            held[user.id].clear()

    async def text(texter: Texter, now: datetime) -> None:
        body = texter.script[texter.sent]
        texter.sent += 1
        sms = InboundSms(f"SM{next(sids):032d}", texter.number, "+15559990000", body)
        outcome = await engine.handle_inbound(sms, now)
        assert outcome.conversation_id is not None
        texter.conversation_ids.add(outcome.conversation_id)
        async with engine.store.transaction() as tx:
            conv = await tx.get_conversation(outcome.conversation_id)
        counts["texts"] += len(outcome.texts)
        for reply in outcome.texts:
            assert segments(reply) <= 2, reply
        if triage(body, texter.language).danger and conv.advocate_id is None:
            assert len(outcome.texts) == 1, outcome.texts
            first_line = outcome.texts[0][:90]
            assert "911" in first_line or "988" in first_line, outcome.texts[0]
            counts["danger_replies"] += 1
        if conv.id in priority_seen:
            assert conv.priority <= priority_seen[conv.id], "priority fell"
        priority_seen[conv.id] = conv.priority

    for now, kind, who in events:
        if kind == "text":
            assert who is not None
            await text(who, now)
        else:
            await staff_move(now)

    # Nothing lost: every message each texter sent is stored in their conversations.
    async with engine.store.transaction() as tx:
        for texter in texters:
            stored = [
                m
                for cid in texter.conversation_ids
                for m in await tx.list_messages(cid)
                if m.direction == "in"
            ]
            assert sorted(m.body for m in stored) == sorted(texter.script), texter.number
    # The shift was the mix it claims: danger answered, people taken, staff moving.
    # The seeded draw sends 14 danger-pool texts; the floor leaves room for a couple held by
    # an advocate. (It was 15 while triage misread the opening "i have a question" as
    # suicide, which the check above now refuses.)
    assert counts["danger_replies"] >= 12 and counts["takes"] >= 25, counts
    assert counts["staff_moves"] >= 100, counts
    assert {conv_priority for conv_priority in priority_seen.values()} >= {1, 2, 3}

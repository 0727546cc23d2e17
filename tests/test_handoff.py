"""A shift as it happens: many texters waiting for an hour and more, every priority at once,
both languages, advocates coming and going. Through the real engine, flow, store and
hand-offs on each store backend (SQLite; PostgreSQL when HAVEN_TEST_POSTGRES is set), with
the clock moved forward (the webhook path is the same engine call)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from bot import handoff, queue
from bot.engine import Engine, utcnow
from bot.sms.webhook import InboundSms
from bot.store.base import Conflict, Conversation, User

_sids = itertools.count(1)
MINUTE = timedelta(minutes=1)

# Who texts, when (minutes after the shift starts), in what words: every priority, both
# languages, by words and by screening answers.
TEXTERS: list[tuple[str, int, list[str], int]] = [
    # (number, minute, messages, the priority their own words/answers give)
    ("+15550000001", 0, ["hi", "yes", "4", "skip"], 4),
    ("+15550000002", 2, ["my husband yells at me and hits me, can i get custody", "AGENT"], 3),
    ("+15550000003", 5, ["mi pareja me grita y me pega, puedo pedir la custodia", "PERSONA"], 3),
    ("+15550000004", 10, ["my boss keeps my passport and says i owe him", "AGENT"], 2),
    # A trafficking screen-in in Spanish: menu item 2, not under 18, not free to leave.
    ("+15550000005", 15, ["hola", "ESPAÑOL", "sí", "2", "no", "no", "skip", "skip", "skip"], 2),
    ("+15550000006", 20, ["tengo una pregunta", "PERSONA"], 4),
    # A lethality screen-in in English: weapon threatened.
    ("+15550000007", 25, ["hi", "yes", "1", "yes", "skip", "skip", "skip"], 2),
    ("+15550000008", 40, ["he has a gun and says he will shoot me"], 1),
    ("+15550000009", 50, ["mi esposo tiene un cuchillo y dice que me va a matar"], 1),
    ("+15550000010", 55, ["i want to kill myself tonight"], 1),
    ("+15550000011", 58, ["hi", "yes", "3", "skip"], 4),
]


async def say(engine: Engine, number: str, body: str, now: datetime) -> list[str]:
    sms = InboundSms(f"SM{next(_sids):032d}", number, "+15559990000", body)
    return (await engine.handle_inbound(sms, now)).texts


async def waiting(engine: Engine, now: datetime) -> list[queue.QueueEntry]:
    return await queue.snapshot(engine.store, now, engine.settings)


async def staff(engine: Engine, name: str, capacity: int, presence: str) -> User:
    async with engine.store.transaction() as tx:
        user = await tx.add_user(name, "advocate", "x", [], utcnow())
        user.capacity, user.presence = capacity, presence
        await tx.save_user(user)
        return user


async def own_priority(engine: Engine, conv: Conversation) -> int:
    async with engine.store.transaction() as tx:
        return (await tx.get_conversation(conv.id)).priority


def assert_risk_order(entries: list[queue.QueueEntry]) -> None:
    """The queue's order: effective priority, then longest wait; no one aged to P1."""
    keys = [(e.priority, -e.waiting_s) for e in entries]
    assert keys == sorted(keys)
    for e in entries:
        assert e.priority >= 2 or e.conversation.priority == 1, "aging made someone P1"


async def test_an_hour_long_shift_never_inverts_risk(engine: Engine) -> None:
    """Eleven texters over an hour, P1 to P4 in English and Spanish (words and screening
    answers), advocates signing in, taking, releasing and signing out: at every moment the
    queue is in risk order, aging never reaches P1, and each "Take next" hands out someone
    at the highest effective priority waiting (zero inversions in 90 minutes)."""
    start = utcnow()
    for number, minute, messages, _expected in TEXTERS:
        for body in messages:
            await say(engine, number, body, start + minute * MINUTE)
    entries = await waiting(engine, start + 59 * MINUTE)
    assert len(entries) == len(TEXTERS)
    by_own = sorted(e.conversation.priority for e in entries)
    assert by_own == sorted(expected for *_, expected in TEXTERS)
    assert {e.conversation.language for e in entries} == {"en", "es"}

    # An hour and a half in, everyone has aged (the oldest by three steps): still in order.
    for minute in (60, 75, 90, 120):
        assert_risk_order(await waiting(engine, start + minute * MINUTE))

    ana = await staff(engine, "ana", capacity=2, presence="available")
    ben = await staff(engine, "ben", capacity=1, presence="available")
    handed: list[tuple[int, int]] = []  # (effective priority given, best waiting)

    async def take(user: User, minute: int) -> Conversation | None:
        now = start + minute * MINUTE
        before = await waiting(engine, now)
        conv = await handoff.take_next(engine.store, user, now, engine.settings)
        if conv is not None:
            given = next(e for e in before if e.conversation.id == conv.id)
            handed.append((given.priority, before[0].priority))
            assert given.conversation.id == before[0].conversation.id
        return conv

    first = await take(ana, 61)
    second = await take(ana, 62)
    third = await take(ben, 63)
    assert first and second and third
    assert [await own_priority(engine, c) for c in (first, second, third)] == [1, 1, 1]
    with pytest.raises(Conflict):  # at capacity: a clear answer, nobody taken by mistake
        await take(ana, 64)
    # Ana hands the first back (it keeps its place), then leaves for the day.
    await handoff.release(engine.store, first.id, ana, start + 70 * MINUTE)
    await handoff.sign_out(engine.store, ana, start + 71 * MINUTE)
    carla = await staff(engine, "carla", capacity=3, presence="available")
    back = await take(carla, 72)
    assert back is not None and back.id == first.id  # the P1 again, not an aged P2
    # The rest of the shift: take until the queue is empty, an hour and a half in.
    await handoff.close(engine.store, third.id, ben, "resources_given", start + 80 * MINUTE)
    for minute in range(85, 120):
        user = carla if minute % 2 else ben
        conv = await take(user, minute)
        if conv is not None:
            holder = user
            await handoff.close(engine.store, conv.id, holder, "referred", start + minute * MINUTE)
        if not await waiting(engine, start + minute * MINUTE):
            break
    assert not await waiting(engine, start + 120 * MINUTE)
    assert all(given == best for given, best in handed), handed
    # Everyone once, and the two Ana let go (released; signed out holding) once more.
    assert len(handed) == len(TEXTERS) + 2


async def test_priority_basis_says_why(engine: Engine) -> None:
    """Their own words, a screening answer, or aging: the queue says which raised them."""
    start = utcnow()
    for body in ["my boss keeps my passport and says i owe him", "AGENT"]:
        await say(engine, "+15550000021", body, start)
    for body in ["hi", "yes", "2", "no", "no", "skip", "skip", "skip"]:
        await say(engine, "+15550000022", body, start)
    for body in ["hi", "yes", "4", "skip"]:
        await say(engine, "+15550000023", body, start)
    settings = engine.settings
    bases = {
        e.conversation.id: queue.priority_basis(e.conversation, start + 31 * MINUTE, settings)
        for e in await waiting(engine, start + 31 * MINUTE)
    }
    assert sorted(bases.values()) == ["aging", "screening", "words"]

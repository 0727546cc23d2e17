"""Queue policy: honest wait estimates from who is available and how long they take, and
the place in line counted in the database exactly as the reference ordering gives it."""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.crypto import Crypto
from bot.queue import (
    _WORDS,
    DEFAULT_HANDLE_MINUTES,
    HANDLING_SAMPLE,
    HELD_STATES,
    MIN_SAMPLE,
    QUEUE_LIMIT,
    estimate_wait,
    handle_minutes,
    ordered,
    page,
    place_in_line,
)
from bot.settings import Settings
from bot.store.base import Conversation, Message, Store, User
from flows.states import CLOSED, QUEUED, WITH_ADVOCATE


def staff(*capacities: int) -> list[User]:
    return [User(i, f"u{i}", "advocate", "x", capacity=c) for i, c in enumerate(capacities)]


@pytest.mark.parametrize(
    ("position", "capacities", "held", "minutes", "expected"),
    [
        (1, (), 0, 10, None),  # nobody available: no promise at all
        (1, (0,), 0, 10, None),  # available but no room at all
        (1, (3,), 0, 10, 1),  # a free place: about a minute
        (3, (3,), 0, 10, 1),
        (4, (3,), 0, 10, 4),  # one ahead of the free places: a third of a handling time
        (1, (3,), 3, 10, 4),  # all places taken: wait for one to free up
        (6, (3, 3), 6, 12, 12),  # two advocates, full: six ahead share twelve minutes each
        (10, (2,), 2, 20, 100),
    ],
)
def test_estimate_wait(
    position: int, capacities: tuple[int, ...], held: int, minutes: float, expected: int | None
) -> None:
    """Minutes come from places free now and measured handling time; None when nobody
    can take anyone."""
    assert estimate_wait(position, staff(*capacities), held, minutes) == expected


# -- the place in line, counted in the database, against the reference ordering ---------

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
TICK = timedelta(microseconds=1)
STATES = (QUEUED, QUEUED, QUEUED, QUEUED, WITH_ADVOCATE, CLOSED, "intake")


def offsets(aging_every: int) -> st.SearchStrategy[timedelta]:
    """How long before NOW someone was queued: mostly exactly where aging turns (k steps
    of aging_every, give or take a microsecond), often the same as someone else."""
    turn = st.builds(
        lambda k, d: timedelta(seconds=k * aging_every) + d * TICK,
        st.integers(0, 3),
        st.sampled_from((-1, 0, 0, 1)),
    )
    anywhere = st.integers(-60, 4 * aging_every).map(lambda s: timedelta(seconds=s))
    return st.one_of(turn, turn, turn, st.just(timedelta(minutes=1)), anywhere)


def row(aging_every: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "state": st.sampled_from(STATES),
            "priority": st.integers(1, 4),
            "queued": st.one_of(offsets(aging_every), offsets(aging_every), st.none()),
            "held": st.sampled_from((False, False, False, True)),
            "program": st.sampled_from((None, None, None, 0, 1)),
            # Ties in list_waiting's order too: the same last activity, or none (created).
            "updated": st.one_of(st.none(), st.sampled_from((0, 1, 2))),
            "created": st.sampled_from((0, 1)),
            "claimed": st.one_of(st.none(), st.integers(0, 90)),
            "closed": st.one_of(st.none(), st.integers(0, 120)),
        }
    )


@st.composite
def queues(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]]]:
    aging_every = draw(st.sampled_from((7, 60, 1800)))
    return aging_every, draw(st.lists(row(aging_every), min_size=1, max_size=14))


def waiting(priority: int, queued: timedelta, updated: int | None = None) -> dict[str, Any]:
    return {
        "state": QUEUED,
        "priority": priority,
        "queued": queued,
        "held": False,
        "program": None,
        "updated": updated,
        "created": 0,
        "claimed": None,
        "closed": None,
    }


def reference_position(waiting: list[Conversation], conv: Conversation, settings: Settings) -> int:
    """position_and_wait's place before light reads: `ordered` over every queued
    conversation, as list_conversations lists them, filtered to the program."""
    line = [c for c in ordered(waiting, NOW, settings) if c.program_id == conv.program_id]
    ids = [c.id for c in line]
    return ids.index(conv.id) + 1 if conv.id in ids else len(ids) + 1


def reference_minutes(closed: list[Conversation]) -> float:
    recent = [
        (c.closed_at - c.claimed_at).total_seconds() / 60
        for c in closed
        if c.claimed_at is not None and c.closed_at is not None and c.closed_at > c.claimed_at
    ]
    return statistics.median(recent) if len(recent) >= MIN_SAMPLE else DEFAULT_HANDLE_MINUTES


@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=queues())
# A P4 aged to P3 exactly at the turn, a microsecond either side, and a P3 queued later.
@example(
    case=(
        60,
        [waiting(4, timedelta(seconds=60) + d * TICK) for d in (-1, 0, 1)]
        + [waiting(3, timedelta(seconds=30))],
    )
)
# The same queued_at: list order (newest activity, then the higher id) decides.
@example(case=(60, [waiting(3, timedelta(seconds=5), u) for u in (None, 1, 1, 0)]))
async def test_place_in_line_is_the_reference_ordering(
    store: Store, crypto: Crypto, case: tuple[int, list[dict[str, Any]]]
) -> None:
    """For random queues (every priority, waits exactly at and a microsecond either side
    of each aging step, ties in queued_at and in list order, held and unqueued rows, three
    programs), every conversation's place_in_line, counted in the database, is its place
    in `ordered` over the heavily read queue (one past the end when it is not waiting in
    its program's line); held_counts is the count of held conversations per holder, and
    handle_minutes the median the 50 latest closed ones gave when read in full."""
    aging_every, rows = case
    settings = Settings(aging_every=aging_every)
    async with store.transaction() as tx:
        programs = [
            (
                await tx.add_program(
                    f"p{i}-{uuid.uuid4().hex[:8]}",
                    "P",
                    f"+1555{uuid.uuid4().int % 10**7:07d}",
                    None,
                    None,
                    False,
                    NOW,
                )
            ).id
            for i in range(2)
        ]
        texters = []
        for i, r in enumerate(rows):
            phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
            texter = await tx.create_texter(crypto.lookup_hash(phone), phone, "en", NOW)
            texters.append(texter.id)
            c = await tx.create_conversation(texter.id, "en", NOW - timedelta(hours=r["created"]))
            c.state, c.priority = r["state"], r["priority"]
            c.queued_at = None if r["queued"] is None else NOW - r["queued"]
            c.advocate_id = 100 + i % 3 if r["held"] or r["state"] != QUEUED else None
            c.updated_at = None if r["updated"] is None else NOW - timedelta(hours=r["updated"])
            if r["claimed"] is not None:
                c.claimed_at = NOW - timedelta(hours=3, minutes=r["claimed"])
            if r["closed"] is not None:
                c.closed_at = NOW - timedelta(hours=3) + timedelta(minutes=r["closed"])
            await tx.save_conversation(c)
            if r["program"] is not None:
                await tx.set_conversation_program(c.id, programs[r["program"]])
    try:
        async with store.reading() as tx:
            everyone = await tx.list_conversations(limit=QUEUE_LIMIT)
            waiting = await tx.list_conversations(states=[QUEUED], limit=QUEUE_LIMIT)
            for conv in everyone:
                expected = reference_position(waiting, conv, settings)
                assert await place_in_line(tx, conv, NOW, settings) == expected, conv.id
            held = await tx.list_conversations(states=list(HELD_STATES), limit=QUEUE_LIMIT)
            assert await tx.held_counts(HELD_STATES) == dict(
                Counter(c.advocate_id for c in held if c.advocate_id is not None)
            )
            closed = await tx.list_conversations(states=[CLOSED], limit=HANDLING_SAMPLE)
            assert await handle_minutes(tx) == reference_minutes(closed)
    finally:
        async with store.transaction() as tx:
            for texter_id in texters:
                await tx.delete_texter(texter_id)


async def test_the_page_words_follow_what_the_texter_says(store: Store, crypto: Crypto) -> None:
    """The queue page picks a texter's telling words again whenever they write (the words
    kept from an earlier page are used only while nothing changed), per store, and keeps
    none for a texter no longer waiting."""
    settings = Settings()
    async with store.transaction() as tx:
        texter = await tx.create_texter(
            crypto.lookup_hash("+15550001111"), "+15550001111", "en", NOW
        )
        conv = await tx.create_conversation(texter.id, "en", NOW)
        conv.state, conv.queued_at, conv.priority = QUEUED, NOW, 3
        await tx.save_conversation(conv)
        await tx.add_message(Message(conv.id, "in", "my landlord locked me out tonight"))
    entries, _ = await page(store, NOW, settings)
    assert entries[0].first_words == "my landlord locked me out tonight"
    entries, _ = await page(store, NOW, settings)  # nothing new: the same words
    assert entries[0].first_words == "my landlord locked me out tonight"
    async with store.transaction() as tx:
        await tx.add_message(Message(conv.id, "in", "he has a gun", labels=["weapon", "danger"]))
    entries, _ = await page(store, NOW, settings)
    assert entries[0].first_words == "he has a gun"
    async with store.transaction() as tx:
        await tx.claim(conv.id, 5, NOW)
    assert await page(store, NOW, settings) == ([], 0)
    assert not _WORDS.get(store)  # the words of someone no longer waiting are dropped

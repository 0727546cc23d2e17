"""The advocate queue: risk order with aging, wait estimates, and every hand-off.

Order: effective priority (aging lifts a waiting texter one level every `aging_every`
seconds), then time waiting. Each hand-off runs under the texter's lock, the same lock the
engine takes for an inbound message, so an advocate's action and a texter's message never
overwrite each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from bot import vocabulary
from bot.settings import Settings
from bot.store.base import Conversation, Message, Store, Texter, Tx
from bot.triage import DANGER
from bot.vocabulary import mask_number
from flows import states

# Minutes an advocate spends on one texter, for the wait estimate until real data exists.
DEFAULT_HANDLE_MINUTES = 10
QUEUED = states.QUEUED
HELD = states.WITH_ADVOCATE
# Held, or held while the texter answers DELETE's question: the advocate can still act.
HELD_STATES = tuple(sorted(states.HELD_STATES))
# Aging lifts a waiting texter one level per aging_every, never above this: a P1 is only
# ever someone whose own words or answers showed danger.
AGING_CEILING = 2
# Teams a conversation can be routed to (bot.engine.route_team) or transferred between:
# partner programs sharing one Haven hand texters over with their context, no re-asking.
TEAMS = ("general", "partner_violence", "trafficking", "spanish")
# Far beyond any real queue; the store's default page would drop the longest waiters.
QUEUE_LIMIT = 100_000


def is_role_play(texter: Texter) -> bool:
    """Role-play texters (the dashboard's training page) use fictional 555-01xx numbers."""
    return vocabulary.is_role_play(texter.phone)


def unclaimed_too_long(conv: Conversation, now: datetime, settings: Settings) -> bool:
    """A priority-1 texter (after aging) waiting unclaimed past alarm_after: the alarm that
    the engine raises live and every page draws until someone takes them."""
    return (
        conv.state == QUEUED
        and conv.advocate_id is None
        and conv.queued_at is not None
        and effective_priority(conv, now, settings) == 1
        and (now - conv.queued_at).total_seconds() >= settings.alarm_after
    )


@dataclass
class QueueEntry:
    conversation: Conversation
    texter_alias: str
    masked: str  # "…42": the last two digits only
    priority: int  # effective, after aging
    waiting_s: int
    first_words: str  # what best says why they wait: their latest words that raised a label
    safe_to_text: bool | None = None
    labels: list[str] = field(default_factory=list)
    training: bool = False


def telling_words(messages: list[Message]) -> str:
    """The texter's words that say most about why they wait: the latest that showed danger,
    else the latest with any label, else the longest (not "hi", "yes" or "skip")."""
    said = [m for m in messages if m.direction == "in" and m.body.strip()]
    for wanted in (lambda m: bool(DANGER & set(m.labels)), lambda m: bool(m.labels)):
        found = [m for m in said if wanted(m)]
        if found:
            return found[-1].body
    return max((m.body for m in said), key=len, default="")


def effective_priority(conv: Conversation, now: datetime, settings: Settings) -> int:
    """The priority the queue orders by: the conversation's own (from the texter's words
    and answers), lifted one level per `aging_every` waited, but never above P2 by aging
    alone, so an aged texter never reaches or passes anyone whose own words made them P1."""
    if conv.queued_at is None or conv.priority <= AGING_CEILING:
        return conv.priority
    waited = max(0.0, (now - conv.queued_at).total_seconds())
    return max(AGING_CEILING, conv.priority - int(waited // settings.aging_every))


def priority_basis(conv: Conversation, now: datetime, settings: Settings) -> str:
    """Why the texter has the priority the queue shows: "aging" when waiting lifted it,
    "screening" when an answer to a screening question set it, "words" when their own
    messages did, "none" at the lowest priority."""
    if effective_priority(conv, now, settings) < conv.priority:
        return "aging"
    if conv.priority >= 4:
        return "none"
    basis = conv.flow.get("priority_basis")
    return basis if basis in ("words", "screening") else "words"


def sort_key(conv: Conversation, now: datetime, settings: Settings) -> tuple[int, datetime]:
    assert conv.queued_at is not None
    return (effective_priority(conv, now, settings), conv.queued_at)


def ordered(convs: list[Conversation], now: datetime, settings: Settings) -> list[Conversation]:
    waiting = [c for c in convs if c.state == QUEUED and c.queued_at and c.advocate_id is None]
    return sorted(waiting, key=lambda c: sort_key(c, now, settings))


async def position_and_wait(
    tx: Tx, conv: Conversation, now: datetime, settings: Settings
) -> tuple[int, int]:
    """1-based place in the queue and an estimate in whole minutes (at least 1)."""
    queue = ordered(await tx.list_conversations(states=[QUEUED], limit=QUEUE_LIMIT), now, settings)
    ids = [c.id for c in queue]
    position = ids.index(conv.id) + 1 if conv.id in ids else len(ids) + 1
    users = await tx.list_users()
    on_shift = [u for u in users if u.role != "admin" and u.presence == "available"]
    free_slots = sum(max(0, u.capacity) for u in on_shift) or 1
    wait = math.ceil(position * DEFAULT_HANDLE_MINUTES / free_slots)
    return position, max(1, wait)


async def snapshot(store: Store, now: datetime, settings: Settings) -> list[QueueEntry]:
    async with store.transaction() as tx:
        queue = ordered(
            await tx.list_conversations(states=[QUEUED], limit=QUEUE_LIMIT), now, settings
        )
        entries = []
        for conv in queue:
            texter = await tx.get_texter(conv.texter_id)
            first = telling_words(await tx.list_messages(conv.id))
            assert conv.queued_at is not None
            entries.append(
                QueueEntry(
                    conversation=conv,
                    texter_alias=texter.alias,
                    masked=mask_number(texter.phone),
                    priority=effective_priority(conv, now, settings),
                    waiting_s=int((now - conv.queued_at).total_seconds()),
                    first_words=first[:60],
                    safe_to_text=texter.safe_to_text,
                    labels=list(conv.labels),
                    training=is_role_play(texter),
                )
            )
        return entries

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
from bot.events import Event, Events
from bot.settings import Settings
from bot.store.base import Conflict, Conversation, Message, NotFound, Store, Texter, Tx, User
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


def _move(conv: Conversation, state: str) -> None:
    """Put the conversation in `state`; but while the texter is answering DELETE's
    question the question stays open, and `state` is where a "no" (or its lapse) returns."""
    if conv.state == "confirm_delete":
        conv.flow = {**conv.flow, "before_delete": state}
    else:
        conv.state = state


def _publish(events: Events | None, conv: Conversation, holder: int | None = None) -> None:
    """`holder`: who held it before this change, so their screen hears of it too."""
    if events is not None:
        change: dict[str, object] = {"conversation_id": conv.id, "state": conv.state}
        if holder is not None and holder != conv.advocate_id:
            change["advocate_id"] = holder
        events.publish(Event("conversation", change))
        events.publish(Event("queue", {}))


async def _ready_to_hold(tx: Tx, user_id: int, *, by_other: bool = False) -> User:
    """The advocate who is to hold one more texter, locked for the rest of the transaction
    so two takes by one advocate cannot both pass the capacity check. Conflict when they
    cannot: inactive, an admin (who watches but does not text), at capacity, or - when
    someone else hands the texter over - offline."""
    user = await tx.lock_user(user_id)
    if not user.active or user.role not in ("advocate", "supervisor"):
        raise Conflict(f"{user.name} cannot hold conversations")
    if by_other and user.presence == "offline":
        raise Conflict(f"{user.name} is offline")
    held = len(await tx.list_conversations(states=list(HELD_STATES), advocate_id=user.id))
    if held >= user.capacity:
        raise Conflict(f"{user.name} is holding {held} of {user.capacity} conversations")
    return user


async def claim(
    store: Store, conversation_id: int, user: User, now: datetime, events: Events | None = None
) -> Conversation:
    """Take one queued conversation. Conflict if someone else has it or it left the queue."""
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.state != QUEUED or conv.advocate_id is not None:
            raise Conflict("that conversation is no longer waiting")
        await _ready_to_hold(tx, user.id)
        conv = await tx.claim(conversation_id, user.id, now)
        await tx.audit(user.id, "claim", conv.id, "", now)
    _publish(events, conv)
    return conv


async def take_next(
    store: Store, user: User, now: datetime, settings: Settings, events: Events | None = None
) -> Conversation | None:
    """The top of the queue for this advocate, or None when nothing is waiting (or they are
    at capacity). Retries past conversations another advocate took a moment earlier."""
    async with store.transaction() as tx:
        fresh = await _ready_to_hold(tx, user.id)  # a clear answer before trying any
        queue = ordered(
            await tx.list_conversations(states=[QUEUED], limit=QUEUE_LIMIT), now, settings
        )
        role_play = {c.id for c in queue if is_role_play(await tx.get_texter(c.texter_id))}
    for conv in queue:
        if not settings.cross_team and fresh.teams and conv.team and conv.team not in fresh.teams:
            continue
        if conv.id in role_play:
            continue  # a rehearsal is taken on purpose ("Take"), never instead of a texter
        try:
            return await claim(store, conv.id, fresh, now, events)
        except NotFound:
            continue
        except Conflict:
            async with store.transaction() as tx:
                await _ready_to_hold(tx, user.id)  # at capacity now: say so, stop
            continue  # someone else took that one a moment earlier
    return None


async def offer_transfer(
    store: Store,
    conversation_id: int,
    from_user: User,
    to_user_id: int,
    now: datetime,
    events: Events | None = None,
) -> Conversation:
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.state not in HELD_STATES or conv.advocate_id != from_user.id:
            raise Conflict("you do not hold that conversation")
        if to_user_id == from_user.id:
            raise Conflict("choose another advocate")
        target = await _ready_to_hold(tx, to_user_id, by_other=True)
        conv.transfer_to = target.id
        conv.updated_at = now
        await tx.save_conversation(conv)
        await tx.audit(from_user.id, "transfer_offer", conv.id, f"to user {target.id}", now)
    if events is not None:
        events.publish(Event("transfer", {"conversation_id": conv.id, "advocate_id": target.id}))
    _publish(events, conv)
    return conv


async def accept_transfer(
    store: Store, conversation_id: int, user: User, now: datetime, events: Events | None = None
) -> Conversation:
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.transfer_to != user.id or conv.state not in HELD_STATES:
            raise Conflict("there is no transfer waiting for you")
        await _ready_to_hold(tx, user.id)
        previous = conv.advocate_id
        conv.advocate_id, conv.transfer_to, conv.claimed_at, conv.updated_at = (
            user.id,
            None,
            now,
            now,
        )
        await tx.save_conversation(conv)
        await tx.audit(user.id, "transfer_accept", conv.id, f"from user {previous}", now)
    _publish(events, conv)
    return conv


async def sign_out(
    store: Store, user: User, now: datetime, events: Events | None = None
) -> list[int]:
    """An advocate leaving: everyone they hold goes back to the queue in their place (no
    texter is left held by someone who is gone), and offers to them are withdrawn."""
    async with store.transaction() as tx:
        held = await tx.list_conversations(states=list(HELD_STATES), advocate_id=user.id)
        offered = [
            c.id
            for c in await tx.list_conversations(states=list(HELD_STATES))
            if c.transfer_to == user.id
        ]
    released = []
    for cid in [c.id for c in held]:
        try:
            await release(store, cid, user, now, events)
            released.append(cid)
        except (Conflict, NotFound):
            continue  # the texter moved on meanwhile
    for cid in offered:
        try:
            await decline_transfer(store, cid, user, now, events)
        except (Conflict, NotFound):
            continue  # accepted, withdrawn or closed meanwhile
    return released


async def decline_transfer(
    store: Store, conversation_id: int, user: User, now: datetime, events: Events | None = None
) -> Conversation:
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.transfer_to != user.id or conv.state not in HELD_STATES:
            raise Conflict("there is no transfer waiting for you")
        conv.transfer_to, conv.updated_at = None, now
        await tx.save_conversation(conv)
        await tx.audit(user.id, "transfer_decline", conv.id, f"from user {conv.advocate_id}", now)
    _publish(events, conv)
    return conv


async def release(
    store: Store,
    conversation_id: int,
    user: User,
    now: datetime,
    events: Events | None = None,
    team: str | None = None,
) -> Conversation:
    """Back to the queue, keeping its place (queued_at is unchanged) and its context; with
    `team`, to that team's queue (a transfer between programs)."""
    if team is not None and team not in TEAMS:
        raise ValueError(f"team must be one of: {', '.join(TEAMS)}")
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.state not in HELD_STATES or (
            conv.advocate_id != user.id and user.role == "advocate"
        ):
            raise Conflict("you do not hold that conversation")
        holder = conv.advocate_id
        _move(conv, QUEUED)
        conv.advocate_id, conv.transfer_to, conv.updated_at = None, None, now
        conv.queued_at = conv.queued_at or now
        conv.team = team or conv.team
        await tx.save_conversation(conv)
        await tx.audit(user.id, "release", conv.id, f"team {team}" if team else "", now)
    _publish(events, conv, holder)
    return conv


async def reassign(
    store: Store,
    conversation_id: int,
    supervisor: User,
    to_user_id: int,
    now: datetime,
    events: Events | None = None,
) -> Conversation:
    if supervisor.role not in ("supervisor", "admin"):
        raise Conflict("only a supervisor can reassign")
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.state not in (QUEUED, HELD):
            raise Conflict("that conversation is not open")
        if conv.advocate_id == to_user_id:
            raise Conflict("they already hold it")
        target = await _ready_to_hold(tx, to_user_id, by_other=True)
        holder = conv.advocate_id
        _move(conv, HELD)
        conv.advocate_id, conv.transfer_to = target.id, None
        conv.claimed_at = conv.updated_at = now
        await tx.save_conversation(conv)
        await tx.audit(supervisor.id, "reassign", conv.id, f"to user {target.id}", now)
    _publish(events, conv, holder)
    return conv


DISPOSITIONS = (
    "resources_given",
    "safety_plan",
    "referred",
    "connected_to_hotline",
    "texter_left",
    "wrong_number",
    "test",
    "other",
)


async def close(
    store: Store,
    conversation_id: int,
    user: User,
    disposition: str,
    now: datetime,
    events: Events | None = None,
) -> Conversation:
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of: {', '.join(DISPOSITIONS)}")
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.state not in HELD_STATES or (
            conv.advocate_id != user.id and user.role == "advocate"
        ):
            raise Conflict("you do not hold that conversation")
        asking = conv.state == "confirm_delete"
        _move(conv, "closed")
        conv.disposition, conv.closed_at, conv.updated_at = disposition, now, now
        conv.transfer_to = None
        if asking:  # their answer to DELETE still counts; its timers stay to lapse it
            conv.advocate_id = None
        else:
            conv.nudge_at = conv.expire_at = None
        await tx.save_conversation(conv)
        await tx.audit(user.id, "close", conv.id, disposition, now)
    _publish(events, conv)
    return conv

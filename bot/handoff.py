"""Every hand-off between Haven and its staff: take, take next, transfer, release,
reassign, close, sign out.

Each runs under the texter's lock (the lock the engine takes for an inbound message), so a
staff action and a texter's message never overwrite each other. Every change of state is a
row of the intake table, stepped through `bot.engine.staff_step`; the store's conditional
UPDATE in `tx.claim` stays only as the race guard between two advocates.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot import alarms
from bot.events import Event, Events
from bot.flowstate import staff_step
from bot.queue import (
    HELD_STATES,
    QUEUE_LIMIT,
    QUEUED,
    TEAMS,
    is_role_play,
    ordered_waiting,
)
from bot.settings import Settings
from bot.store.base import Conflict, Conversation, NotFound, Store, Texter, Tx, User
from bot.triage import DANGER
from bot.vocabulary import TEXTING_ROLES
from flows.states import CONFIRM_DELETE

TEXTER_BATCH = 20  # texters read at a time while looking for the next to take


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
    if not user.active or user.role not in TEXTING_ROLES:
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
        await staff_step(tx, conv, "claim", now)
        conv = await tx.claim(conversation_id, user.id, now)  # the race guard
        await alarms.clear(tx, conv.id, now)
        await tx.audit(user.id, "claim", conv.id, "", now)
    alarms.publish_cleared(events, conv.id)
    _publish(events, conv)
    return conv


async def take_next(
    store: Store,
    user: User,
    now: datetime,
    settings: Settings,
    events: Events | None = None,
    program_ids: Collection[int | None] | None = None,
) -> Conversation | None:
    """The top of the queue for this advocate, or None when nothing is waiting (or they are
    at capacity). Retries past conversations another advocate took a moment earlier.
    `program_ids`: only texters of these programs (None in it: the default program's);
    None: every program's."""
    async with store.transaction() as tx:
        fresh = await _ready_to_hold(tx, user.id)  # a clear answer before trying any
        queue = ordered_waiting(await tx.list_waiting(QUEUE_LIMIT), now, settings)
    candidates = [
        c
        for c in queue
        if (settings.cross_team or not fresh.teams or not c.team or c.team in fresh.teams)
        and (program_ids is None or c.program_id in program_ids)  # bot.programs
    ]
    texters: dict[int, Texter] = {}
    for at, conv in enumerate(candidates):
        if conv.texter_id not in texters:  # read in small batches, only as far as needed
            async with store.reading() as tx:
                batch = {c.texter_id for c in candidates[at : at + TEXTER_BATCH]}
                texters.update(await tx.get_texters(sorted(batch - texters.keys())))
        texter = texters.get(conv.texter_id)
        if texter is None or is_role_play(texter):
            continue  # erased; or a rehearsal, taken on purpose ("Take"), never instead
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
        await staff_step(tx, conv, "release", now)
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
        if conv.advocate_id == to_user_id:
            raise Conflict("they already hold it")
        holder = conv.advocate_id
        await staff_step(tx, conv, "reassign", now, refused="that conversation is not open")
        target = await _ready_to_hold(tx, to_user_id, by_other=True)
        conv.advocate_id, conv.transfer_to = target.id, None
        conv.claimed_at = conv.updated_at = now
        await tx.save_conversation(conv)
        await tx.audit(supervisor.id, "reassign", conv.id, f"to user {target.id}", now)
        await alarms.clear(tx, conv.id, now)
        # The new holder hears of a texter who showed danger as a danger alarm, which stands
        # until they reply (rule 1: while held, people are alarmed).
        danger = (
            await alarms.danger_while_held(tx, conv, now) if DANGER & set(conv.labels) else None
        )
    alarms.publish_cleared(events, conv.id)
    if events is not None and danger is not None:
        events.publish(danger)
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
        # A DELETE question stays open (their answer still counts; its timers stay to lapse
        # it); otherwise the conversation ends, keeping who held it for the record.
        holder, asking = conv.advocate_id, conv.state == CONFIRM_DELETE
        await staff_step(tx, conv, "close", now)
        conv.disposition, conv.closed_at, conv.updated_at = disposition, now, now
        conv.transfer_to = None
        conv.advocate_id = None if asking else holder
        await tx.save_conversation(conv)
        await tx.audit(user.id, "close", conv.id, disposition, now)
    _publish(events, conv)
    return conv

"""Rule 1's alarms, in one place: who is alarmed, when, once, and when it clears.

Two alarms:
- `p1_unclaimed`: a texter whose own words or answers made them priority 1 has waited
  unclaimed past `alarm_after` (aging never makes anyone P1). Everyone on shift sees it;
  with no staff signed in, the on-call numbers are paged by SMS, once per texter.
- `danger_held`: a held texter's message shows danger; Haven stays quiet (an advocate has
  them) and the holder and supervisors are alarmed. It stands until the advocate replies.

Each alarm is recorded in the database (`tx.raise_alarm` is true for exactly one caller),
so it fires once however many processes run; claiming the texter clears it on every
screen; page loads draw standing alarms from the same records the live events came from.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from bot import programs
from bot.events import Event, Events
from bot.queue import effective_priority, is_role_play, telling_words, unclaimed_too_long
from bot.settings import Settings
from bot.store.base import Conversation, Message, NotFound, Store, Tx, User
from bot.vocabulary import TEXTING_ROLES
from flows.states import HELD_STATES, QUEUED

UNCLAIMED = "p1_unclaimed"
DANGER_HELD = "danger_held"
ONCALL_PAGED = "oncall_paged"  # a record only: once per texter, never cleared
WORDS_SHOWN = 80
# Staff-facing, so not in flows/copy; it carries nothing of the texter's.
ONCALL_TEXT = (
    "Haven: a texter at priority 1 has waited {minutes} min with no advocate signed in. "
    "Please sign in to the dashboard."
)


def _event(conv: Conversation, reason: str, priority: int) -> Event:
    """An alarm as it crosses processes: ids and a priority, never text (bot.events);
    `for_screen` adds the alias and words for the screens allowed to see them."""
    return Event(
        "alarm",
        {
            "reason": reason,
            "conversation_id": conv.id,
            "advocate_id": conv.advocate_id,
            "priority": priority,
        },
    )


async def _words(tx: Tx, conv: Conversation) -> dict[str, Any]:
    texter = await tx.get_texter(conv.texter_id)
    return {
        "cid": conv.id,
        "alias": texter.alias,
        "words": telling_words(await tx.list_messages(conv.id))[:WORDS_SHOWN],
    }


async def for_screen(store: Store, event: Event) -> Event:
    """The alarm as a screen shows it: with the texter's alias and telling words (escaped
    where drawn). Unchanged if the texter is gone (deleted meanwhile)."""
    try:
        async with store.transaction() as tx:
            conv = await tx.get_conversation(int(event.data["conversation_id"]))
            extra = await _words(tx, conv)
    except (NotFound, KeyError, TypeError, ValueError):
        return event
    return Event(event.kind, {**event.data, **extra})


async def describe(
    tx: Tx, conv: Conversation, reason: str, now: datetime, settings: Settings
) -> dict[str, Any]:
    """A standing alarm for a page load: the same keys a live one has on screen."""
    priority = conv.priority
    if conv.state == QUEUED:
        priority = effective_priority(conv, now, settings)
    return {"kind": "alarm", **_event(conv, reason, priority).data, **await _words(tx, conv)}


async def check_unclaimed(
    store: Store, now: datetime, settings: Settings, events: Events
) -> list[int]:
    """Raise `p1_unclaimed` for each priority-1 texter waiting past alarm_after (once each,
    across processes), and page on-call when nobody is signed in. Returns the conversations
    alarmed by this call."""
    async with store.reading() as tx:  # the scan; each alarm is raised under its lock
        due = [
            c
            for c in await tx.list_conversations(states=[QUEUED])
            if unclaimed_too_long(c, now, settings)
            and not is_role_play(await tx.get_texter(c.texter_id))
        ]
    raised: list[int] = []
    for conv in due:
        try:
            async with store.locked_conversation(conv.id) as (tx, fresh):
                if not unclaimed_too_long(fresh, now, settings):
                    continue  # claimed a moment ago
                if await tx.raise_alarm(fresh.id, UNCLAIMED, now):
                    raised.append(fresh.id)
                    events.publish(
                        Event("alarm", await describe(tx, fresh, UNCLAIMED, now, settings))
                    )
                if settings.oncall_numbers and not await _anyone_signed_in(tx):
                    await _page_oncall(tx, fresh, now, settings)
        except NotFound:
            continue  # deleted meanwhile
    return raised


async def _anyone_signed_in(tx: Tx) -> bool:
    return any(
        u.active and u.role in TEXTING_ROLES and u.presence != "offline"
        for u in await tx.list_users()
    )


async def _page_oncall(tx: Tx, conv: Conversation, now: datetime, settings: Settings) -> None:
    """One SMS to each on-call number, through the outbox (retried, sent once), the first
    time this texter's alarm reaches nobody. It names no texter and quotes nothing."""
    if not await tx.raise_alarm(conv.id, ONCALL_PAGED, now):
        return
    assert conv.queued_at is not None
    minutes = max(1, math.floor((now - conv.queued_at).total_seconds() / 60))
    body = ONCALL_TEXT.format(minutes=minutes)
    for number in settings.oncall_numbers:
        message = await tx.add_message(
            Message(conv.id, "out", body, author="oncall", status="queued")
        )
        assert message.id is not None
        await tx.enqueue_outbound(message.id, number, now)


async def danger_while_held(tx: Tx, conv: Conversation, now: datetime) -> Event:
    """A held texter's message shows danger: record the alarm (it stands until the
    advocate replies) and return the event for the holder's and supervisors' screens."""
    await tx.raise_alarm(conv.id, DANGER_HELD, now)
    return _event(conv, DANGER_HELD, conv.priority)


async def answered(tx: Tx, conversation_id: int, now: datetime) -> list[str]:
    """The advocate replied: a standing danger alarm on this conversation is answered."""
    return await tx.clear_alarms(conversation_id, now, kinds=[DANGER_HELD])


async def clear(tx: Tx, conversation_id: int, now: datetime) -> list[str]:
    """Someone took the texter: their alarms clear (the on-call page record stays, so
    on-call is paged at most once per texter)."""
    return await tx.clear_alarms(conversation_id, now, kinds=[UNCLAIMED, DANGER_HELD])


def publish_cleared(events: Events | None, conversation_id: int) -> None:
    """Tell every screen to take down this texter's alarms."""
    if events is not None:
        events.publish(Event("alarm_cleared", {"conversation_id": conversation_id}))


async def standing(
    store: Store, user: User, now: datetime, settings: Settings
) -> list[dict[str, Any]]:
    """The alarms still standing, for a page load: the same records the live events came
    from, filtered as the live events are (their programs' texters; p1_unclaimed for
    everyone; danger_held for the holder and supervisors) and only while they still hold
    (still queued; still held)."""
    shown: list[dict[str, Any]] = []
    async with store.reading() as tx:
        where = await programs.scope_of(tx, user)  # only their programs' texters
        for record in await tx.list_alarms(active=True):
            if record.kind not in (UNCLAIMED, DANGER_HELD):
                continue
            try:
                conv = await tx.get_conversation(record.conversation_id)
            except NotFound:
                continue
            if not where.covers(conv):
                continue
            if record.kind == UNCLAIMED:
                if conv.state != QUEUED or conv.advocate_id is not None:
                    continue
            elif conv.state not in HELD_STATES or (
                user.role == "advocate" and conv.advocate_id != user.id
            ):
                continue
            shown.append(await describe(tx, conv, record.kind, now, settings))
    return shown

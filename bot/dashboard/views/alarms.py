"""Alarms that still stand, drawn on every page load so a reload or a late sign-in never
hides one. The one function the pages call; each alarm has the keys of the live "alarm"
event: conversation_id, reason, alias, priority, words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import queue
from bot.settings import Settings
from bot.store.base import Conversation, Message, Store, Tx, User
from bot.triage import DANGER

WORDS = 80  # characters of the texter's telling words an alarm shows


def unanswered_danger(messages: list[Message]) -> bool:
    """The texter's latest message showed danger and no advocate has written since."""
    last_in = next((m for m in reversed(messages) if m.direction == "in"), None)
    if last_in is None or last_in.id is None or not DANGER & set(last_in.labels):
        return False
    return not any(
        m.direction == "out" and m.author.startswith("advocate:") and m.id > last_in.id
        for m in messages
        if m.id is not None
    )


async def _alarm(
    tx: Tx, conv: Conversation, reason: str, priority: int, messages: list[Message] | None = None
) -> dict[str, Any]:
    texter = await tx.get_texter(conv.texter_id)
    said = messages if messages is not None else await tx.list_messages(conv.id)
    return {
        "conversation_id": conv.id,
        "reason": reason,
        "alias": texter.alias,
        "priority": priority,
        "words": queue.telling_words(said)[:WORDS],
    }


async def standing_alarms(
    store: Store, settings: Settings, user: User, now: datetime
) -> list[dict[str, Any]]:
    """A priority-1 texter unclaimed past alarm_after (everyone; never a role-play), and a
    held texter whose latest message shows danger with no reply since (holder,
    supervisors)."""
    alarms: list[dict[str, Any]] = []
    async with store.transaction() as tx:
        for conv in await tx.list_conversations(states=[queue.QUEUED, queue.HELD]):
            if conv.state == queue.QUEUED:
                if queue.unclaimed_too_long(conv, now, settings) and not queue.is_role_play(
                    await tx.get_texter(conv.texter_id)
                ):
                    priority = queue.effective_priority(conv, now, settings)
                    alarms.append(await _alarm(tx, conv, "p1_unclaimed", priority))
                continue
            if user.role == "advocate" and conv.advocate_id != user.id:
                continue
            if not DANGER & set(conv.labels):
                continue  # cheap: a conversation that never showed danger has no alarm
            messages = await tx.list_messages(conv.id)
            if unanswered_danger(messages):
                alarms.append(await _alarm(tx, conv, "danger_held", conv.priority, messages))
    return alarms


async def after_reassign(
    store: Store, conversation_id: int, supervisor: User, assignee: int
) -> list[tuple[str, dict[str, Any]]]:
    """The events that tell the assignee of a supervisor's reassign: "assigned" (who gave
    them whom), and a danger alarm when the texter showed danger, so the assignee's screen
    treats them at once as the danger they are."""
    async with store.transaction() as tx:
        conv = await tx.get_conversation(conversation_id)
        texter = await tx.get_texter(conv.texter_id)
        told: list[tuple[str, dict[str, Any]]] = [
            (
                "assigned",
                {
                    "conversation_id": conv.id,
                    "advocate_id": assignee,
                    "by": supervisor.name,
                    "alias": texter.alias,
                },
            )
        ]
        if DANGER & set(conv.labels):
            alarm = await _alarm(tx, conv, "danger_held", conv.priority)
            told.append(("alarm", {**alarm, "advocate_id": assignee}))
    return told

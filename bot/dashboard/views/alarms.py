"""Alarms on the dashboard. Standing alarms, drawn on every page load so a reload or a late
sign-in never hides one, come from bot.alarms: the same records the live "alarm" events
came from, with the same keys (conversation_id, reason, alias, priority, words)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import alarms, programs
from bot.settings import Settings
from bot.store.base import NotFound, Store, User


async def standing_alarms(
    store: Store, settings: Settings, user: User, now: datetime
) -> list[dict[str, Any]]:
    shown = await alarms.standing(store, user, now, settings)
    async with store.transaction() as tx:  # only the user's programs' texters (bot.programs)
        where = await programs.scope_of(tx, user)
        kept = []
        for alarm in shown:
            try:
                conv = await tx.get_conversation(alarm["conversation_id"])
            except NotFound:
                continue  # deleted meanwhile
            if where.covers(conv):
                kept.append(alarm)
    return kept


async def after_reassign(
    store: Store, conversation_id: int, supervisor: User, assignee: int
) -> list[tuple[str, dict[str, Any]]]:
    """The event that tells the assignee of a supervisor's reassign: who gave them whom.
    (A texter who showed danger also reaches them as a danger alarm: bot.handoff.)"""
    async with store.transaction() as tx:
        conv = await tx.get_conversation(conversation_id)
        texter = await tx.get_texter(conv.texter_id)
    return [
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

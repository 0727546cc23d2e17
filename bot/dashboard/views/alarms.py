"""What a supervisor's reassign tells the assignee. (Standing alarms, drawn on every page
load, come straight from bot.alarms.standing: the records the live events came from.)"""

from __future__ import annotations

from typing import Any

from bot.store.base import Store, User


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

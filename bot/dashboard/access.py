"""Who may see and act on which conversation: one policy for the pages and the WebSocket.

Supervisors and admins read everything. An advocate reads the queue (anyone waiting is
theirs to take), the conversations they hold and the ones offered to them, and the earlier
conversations of a texter they may view now. Acting (reply,
transfer, close) needs holding it, or a supervisor's role where bot.queue allows it.
"""

from __future__ import annotations

from bot import queue
from bot.events import Event
from bot.store.base import ENDED_STATES, Conversation, NotFound, Store, Tx, User

WATCHERS = frozenset({"supervisor", "admin"})
# Events about no one conversation, with nothing an advocate may not see: every screen.
PUBLIC_KINDS = frozenset({"queue", "presence", "alarm_cleared"})
# Events about one conversation (ids and a state, never text): whoever may view it.
CONVERSATION_KINDS = frozenset({"message", "status", "conversation"})
# Events addressed to one person (advocate_id): that person and the watchers.
PERSONAL_KINDS = frozenset({"transfer", "assigned"})


def may_view(user: User, conv: Conversation) -> bool:
    if user.role in WATCHERS:
        return True
    return user.id in (conv.advocate_id, conv.transfer_to) or conv.state == queue.QUEUED


async def may_read(tx: Tx, user: User, conv: Conversation) -> bool:
    """may_view, and also a returning texter's earlier (ended) conversations for whoever
    may view the texter's conversation now: their history is one click away."""
    if may_view(user, conv):
        return True
    if conv.state not in ENDED_STATES:
        return False
    current = await tx.get_open_conversation(conv.texter_id)
    return current is not None and may_view(user, current)


def holds(user: User, conv: Conversation) -> bool:
    """The user is the one texting with this texter now."""
    return conv.state in queue.HELD_STATES and conv.advocate_id == user.id


def offered(user: User, conv: Conversation) -> bool:
    return conv.transfer_to == user.id


async def may_see(store: Store, user: User, event: Event) -> bool:
    """Whether a live event goes to this user's screens: the same rule as the pages, plus
    alarms (an unclaimed priority-1 texter alarms everyone; danger in a held conversation
    alarms its holder) and events that name their addressee."""
    if user.role in WATCHERS or event.kind in PUBLIC_KINDS:
        return True
    named = event.data.get("advocate_id") == user.id
    if event.kind == "alarm":
        return event.data.get("reason") == "p1_unclaimed" or named
    if event.kind in PERSONAL_KINDS:
        return named
    if event.kind in CONVERSATION_KINDS:
        if named:
            return True  # e.g. the texter deleted it: the row is gone, the holder is told
        cid = event.data.get("conversation_id")
        if not isinstance(cid, int):
            return False
        try:
            async with store.transaction() as tx:
                return await may_read(tx, user, await tx.get_conversation(cid))
        except NotFound:
            return False
    return False

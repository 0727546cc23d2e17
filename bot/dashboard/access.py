"""Who may see and act on which conversation: one policy for the pages and the WebSocket.

First, programs (bot.programs): staff see and act only on their programs' conversations
(staff in no program: the default program's); admins see every program. Every route with a
conversation in its path is refused with 403 outside the user's programs (`program_guard`,
before the handler), lists keep only the user's programs (`in_scope`), and live events
follow the same rule (`may_see`).

Within their programs, supervisors and admins read everything. An advocate reads the queue
(anyone waiting is theirs to take), the conversations they hold and the ones offered to
them, and the earlier conversations of a texter they may view now. Acting (reply,
transfer, close) needs holding it, or a supervisor's role where bot.queue allows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from bot import programs, queue
from bot.dashboard.security import current_user, is_protected
from bot.events import Event
from bot.keys import STORE
from bot.store.base import ENDED_STATES, Conflict, Conversation, NotFound, Store, Tx, User

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
    may view the texter's conversation now: their history is one click away. Never
    outside the user's programs."""
    if not (await programs.scope_of(tx, user)).covers(conv):
        return False
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


@dataclass(frozen=True)
class EventFacts:
    """What judging one event needs from the store, read once for every screen: the
    conversation it names (None: it names none, or the row is gone) and, when that one
    has ended, the texter's open conversation (for may_read's earlier conversations)."""

    conv: Conversation | None = None
    current: Conversation | None = None


async def event_facts(tx: Tx, event: Event) -> EventFacts:
    cid = event.data.get("conversation_id")
    if event.kind in PUBLIC_KINDS or not isinstance(cid, int):
        return EventFacts()
    try:
        conv = await tx.get_conversation(cid)
    except NotFound:
        return EventFacts()
    current = None
    if conv.state in ENDED_STATES:
        current = await tx.get_open_conversation(conv.texter_id)
    return EventFacts(conv, current)


def sees(user: User, where: programs.Scope, event: Event, facts: EventFacts) -> bool:
    """Whether a live event goes to this user's screens: the same rule as the pages, plus
    alarms (an unclaimed priority-1 texter alarms everyone; danger in a held conversation
    alarms its holder) and events that name their addressee. An event about a
    conversation of another program reaches nobody outside it (admins excepted); one
    whose conversation is gone (deleted: its holder is still told) is judged by the rest."""
    if event.kind in PUBLIC_KINDS:
        return True
    conv = facts.conv
    if conv is not None and not where.every and not where.covers(conv):
        return False
    if user.role in WATCHERS:
        return True
    named = event.data.get("advocate_id") == user.id
    if event.kind == "alarm":
        return event.data.get("reason") == "p1_unclaimed" or named
    if event.kind in PERSONAL_KINDS:
        return named
    if event.kind in CONVERSATION_KINDS:
        if named:
            return True  # e.g. the texter deleted it: the row is gone, the holder is told
        if conv is None:
            return False
        if may_view(user, conv):
            return True  # (in scope: checked above)
        current = facts.current
        return conv.state in ENDED_STATES and current is not None and may_view(user, current)
    return False


async def may_see(store: Store, user: User, event: Event) -> bool:
    """`sees` for one user, reading what it needs."""
    return (await who_sees(store, [user], event))[0]


async def who_sees(store: Store, users: Sequence[User], event: Event) -> list[bool]:
    """`sees` for each of several users (one per open screen)."""
    return (await who_sees_each(store, users, [event]))[0]


async def who_sees_each(
    store: Store, users: Sequence[User], events: Sequence[Event]
) -> list[list[bool]]:
    """`sees` for each event and each of several users (one per open screen), from one
    read: every user's programs once, and each named conversation once. The store work
    for a batch of events does not grow with the number of screens."""
    if all(e.kind in PUBLIC_KINDS for e in events):
        return [[True] * len(users) for _ in events]
    facts: dict[int, EventFacts] = {}
    async with store.reading() as tx:
        scopes = await programs.scopes_of(tx, list({u.id: u for u in users}.values()))
        for event in events:
            cid = event.data.get("conversation_id")
            if event.kind not in PUBLIC_KINDS and isinstance(cid, int) and cid not in facts:
                facts[cid] = await event_facts(tx, event)
    none = EventFacts()
    return [
        [
            sees(u, scopes[u.id], e, facts.get(e.data.get("conversation_id"), none))  # type: ignore[arg-type]
            for u in users
        ]
        for e in events
    ]


async def in_scope(store: Store, user: User) -> programs.Scope:
    """The programs whose conversations this user's lists show."""
    return await programs.scope(store, user)


async def check_target(store: Store, conversation_id: int, target_id: int) -> None:
    """A transfer or reassign goes only to someone who works for the texter's program:
    Conflict otherwise (NotFound for no such user or conversation)."""
    async with store.transaction() as tx:
        conv = await tx.get_conversation(conversation_id)
        target = await tx.get_user(target_id)
        if not (await programs.scope_of(tx, target)).covers(conv):
            raise Conflict(f"{target.name} does not work for this texter's program")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def program_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every dashboard route about one conversation (`{cid}` in its path), whoever wrote
    it: 403 when the conversation belongs to a program the signed-in user is not in. No
    session, or no such conversation: the handler answers (401, 404) as it always has."""
    raw = request.match_info.get("cid", "")
    if not raw.isdigit() or len(raw) > 12 or not is_protected(request.path):
        return await handler(request)
    user = await current_user(request)
    if user is not None:
        async with request.app[STORE].transaction() as tx:
            try:
                conv = await tx.get_conversation(int(raw))
            except NotFound:
                conv = None
            if conv is not None and not (await programs.scope_of(tx, user)).covers(conv):
                raise web.HTTPForbidden(text="that conversation belongs to another program")
    return await handler(request)

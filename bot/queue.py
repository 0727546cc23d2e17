"""The advocate queue: risk order with aging, wait estimates, and every hand-off.

Order: effective priority (aging lifts a waiting texter one level every `aging_every`
seconds), then time waiting. Each hand-off runs under the texter's lock, the same lock the
engine takes for an inbound message, so an advocate's action and a texter's message never
overwrite each other.
"""

from __future__ import annotations

import math
import statistics
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import programs, vocabulary
from bot.settings import Settings
from bot.store.base import Ahead, Conversation, Message, Store, Texter, Tx, User, Waiting
from bot.triage import DANGER
from bot.vocabulary import mask_number
from flows import keywords, states

# Minutes an advocate spends on one texter, for the wait estimate until enough closed
# conversations (MIN_SAMPLE of the latest HANDLING_SAMPLE) measure it.
DEFAULT_HANDLE_MINUTES = 10
HANDLING_SAMPLE = 50
MIN_SAMPLE = 3
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
PRIORITIES = (1, 2, 3, 4)
_TICK = timedelta(microseconds=1)  # the stores' timestamp resolution


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
    else the latest with any label, else the longest in their own words (never a bare
    "yes", "skip", a menu number or a keyword)."""
    said = [m for m in messages if m.direction == "in" and m.body.strip()]
    for wanted in (lambda m: bool(DANGER & set(m.labels)), lambda m: bool(m.labels)):
        found = [m for m in said if wanted(m)]
        if found:
            return found[-1].body
    # The longest first (ties: the earliest, as max() would pick): usually one is checked.
    by_length = sorted(range(len(said)), key=lambda i: -len(said[i].body))
    return next((said[i].body for i in by_length if not _just_an_answer(said[i].body)), "")


def _just_an_answer(body: str) -> bool:
    return (
        len(body.strip()) <= 3  # "hi", "ok", "?"
        or keywords.answer(body) is not None
        or keywords.choice(body) is not None
        or keywords.keyword(body) is not None
    )


def effective_priority(conv: Conversation | Waiting, now: datetime, settings: Settings) -> int:
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


def sort_key(
    conv: Conversation | Waiting, now: datetime, settings: Settings
) -> tuple[int, datetime]:
    assert conv.queued_at is not None
    return (effective_priority(conv, now, settings), conv.queued_at)


def ordered(convs: list[Conversation], now: datetime, settings: Settings) -> list[Conversation]:
    waiting = [c for c in convs if c.state == QUEUED and c.queued_at and c.advocate_id is None]
    return sorted(waiting, key=lambda c: sort_key(c, now, settings))


def estimate_wait(position: int, staff: list[User], held: int, handle_minutes: float) -> int | None:
    """Minutes until an advocate can reply to the texter at `position`, or None when no
    one is available (then Haven says so instead of promising minutes it cannot keep).
    `staff`: those available now; `held`: how many texters they hold; `handle_minutes`:
    what one texter takes them, measured. Those within the free places wait about a minute;
    the rest wait for places to free up, all of them working in parallel."""
    slots = sum(max(0, u.capacity) for u in staff)
    if not staff or slots == 0:
        return None
    free = max(0, slots - held)
    if position <= free:
        return 1
    return max(1, math.ceil((position - free) * handle_minutes / slots))


async def handle_minutes(tx: Tx) -> float:
    """How long advocates take with one texter, from the most recent closed conversations
    (the median, so one long night does not skew it); the default until there are some."""
    recent = [
        (closed - claimed).total_seconds() / 60
        for claimed, closed in await tx.claim_spans([states.CLOSED], HANDLING_SAMPLE)
        if claimed is not None and closed is not None and closed > claimed
    ]
    return statistics.median(recent) if len(recent) >= MIN_SAMPLE else DEFAULT_HANDLE_MINUTES


def _level(priority: int, queued_at: datetime, now: datetime, settings: Settings) -> int:
    return effective_priority(Waiting(0, 0, priority, queued_at, None, None), now, settings)


def _latest_at(
    priority: int, level: int, now: datetime, settings: Settings
) -> tuple[bool, datetime | None]:
    """(every, through): when a texter of this `priority` has an effective priority of at
    most `level`: always (every), or when queued at or before `through`, or never (False,
    None). Aging only ever lowers the number the longer one waits, so it is one instant,
    found from effective_priority itself: the arithmetic's guess, then moved to the exact
    microsecond the function turns at."""
    if priority <= level:
        return True, None
    if priority <= AGING_CEILING or level < AGING_CEILING:
        return False, None  # aging does not lift this far
    through = now - timedelta(seconds=(priority - level) * settings.aging_every)
    while _level(priority, through, now, settings) > level:
        through -= _TICK
    while _level(priority, through + _TICK, now, settings) <= level:
        through += _TICK
    return False, through


def ahead_of(me: Waiting, now: datetime, settings: Settings) -> list[Ahead]:
    """What comes before `me` in `ordered` (by effective priority, then queued_at, then
    list_waiting's order), as Tx.count_waiting rules: per priority, those whose effective
    priority is below mine, or equal and queued earlier, or equal and queued at the same
    instant and listed first."""
    mine = effective_priority(me, now, settings)
    rules = []
    for priority in PRIORITIES:
        every, below = _latest_at(priority, mine - 1, now, settings)
        if every:
            rules.append(Ahead(priority, every=True))
            continue
        # At my level and queued strictly before me.
        every_level, level = _latest_at(priority, mine, now, settings)
        before_me = me.queued_at - _TICK
        earlier = before_me if every_level else None if level is None else min(level, before_me)
        bounds = [b for b in (below, earlier) if b is not None]
        ties = _level(priority, me.queued_at, now, settings) == mine
        rules.append(Ahead(priority, through=max(bounds) if bounds else None, ties=ties))
    return rules


async def place_in_line(tx: Tx, conv: Conversation, now: datetime, settings: Settings) -> int:
    """1-based place in the conversation's program's queue, as `ordered` gives it (one
    past the end when it is not waiting there): counted in the database, nothing read."""
    me = await tx.get_waiting(conv.id)
    if me is None or me.program_id != conv.program_id:
        everyone = [Ahead(p, every=True) for p in PRIORITIES]
        return await tx.count_waiting(conv.program_id, everyone) + 1
    return await tx.count_waiting(conv.program_id, ahead_of(me, now, settings), me) + 1


async def position_and_wait(
    tx: Tx, conv: Conversation, now: datetime, settings: Settings
) -> tuple[int, int | None]:
    """1-based place in the texter's program's queue and an honest estimate in whole
    minutes: from that program's staff available now and measured handling times; None
    when nobody is available. Light reads only: this runs inside the webhook's
    transaction for every text that shows the place in line."""
    position = await place_in_line(tx, conv, now, settings)
    available = [
        u
        for u in await tx.list_users()
        if u.active and u.role in vocabulary.TEXTING_ROLES and u.presence == "available"
    ]
    scopes = await programs.scopes_of(tx, available)  # one read, not one per person
    staff = [u for u in available if scopes[u.id].covers(conv)]
    if not staff:
        return position, None
    held_by = await tx.held_counts(HELD_STATES)
    held = sum(held_by.get(u.id, 0) for u in staff)
    return position, estimate_wait(position, staff, held, await handle_minutes(tx))


async def snapshot(store: Store, now: datetime, settings: Settings) -> list[QueueEntry]:
    """Everyone waiting, in queue order."""
    return (await page(store, now, settings))[0]


def ordered_waiting(rows: list[Waiting], now: datetime, settings: Settings) -> list[Waiting]:
    """`ordered` for Tx.list_waiting's rows (already only those waiting)."""
    return sorted(rows, key=lambda w: sort_key(w, now, settings))


# Each store's telling words of the conversations a queue page showed, under the marks
# (Tx.inbound_marks) they were picked at: picking them means decrypting every message and
# normalising the longest (two thirds of the page's time at 50 rows), and they change only
# when the texter writes. Only the words shown (60 characters), only while the texter
# waits: each page drops the entries of those no longer waiting.
_WORDS: weakref.WeakKeyDictionary[Store, dict[int, tuple[tuple[int, int], str]]] = (
    weakref.WeakKeyDictionary()
)
WORDS_SHOWN = 60


async def _telling_words_of(
    tx: Tx, store: Store, shown: list[Waiting], waiting: list[Waiting]
) -> dict[int, str]:
    """Each shown conversation's telling words (cut to WORDS_SHOWN): from the cache when
    the texter wrote nothing since, else read and picked again."""
    known = _WORDS.setdefault(store, {})
    shown_ids = {w.id for w in shown}
    marks = await tx.inbound_marks(list(shown_ids))
    stale = [
        w.id for w in shown if w.id in marks and known.get(w.id, ((0, 0), ""))[0] != marks[w.id]
    ]
    said = await tx.inbound_messages(stale) if stale else {}
    for cid in stale:
        known[cid] = (marks[cid], telling_words(said.get(cid, []))[:WORDS_SHOWN])
    still = {w.id for w in waiting}
    for cid in [c for c in known if c not in still or (c in shown_ids and c not in marks)]:
        del known[cid]  # no longer waiting, or their words were erased
    return {w.id: known[w.id][1] if w.id in marks else "" for w in shown}


async def page(
    store: Store,
    now: datetime,
    settings: Settings,
    keep: Callable[[Waiting], bool] | None = None,
    limit: int | None = None,
) -> tuple[list[QueueEntry], int]:
    """The top `limit` of those waiting that `keep` allows (all when None), in queue order,
    and how many wait in all: ordered from the plain columns (Tx.list_waiting); the
    conversations and texters are read, in one read each, only for the entries returned,
    and their words only when they changed since a page last showed them."""
    async with store.reading() as tx:  # never waits behind (or holds up) a webhook
        everyone = await tx.list_waiting(QUEUE_LIMIT)
        queue = ordered_waiting(everyone, now, settings)
        if keep is not None:
            queue = [w for w in queue if keep(w)]
        shown = queue if limit is None else queue[:limit]
        convs = await tx.get_conversations([w.id for w in shown])
        texters = await tx.get_texters([w.texter_id for w in shown])
        words = await _telling_words_of(tx, store, shown, everyone)
    entries = []
    for w in shown:
        conv, texter = convs.get(w.id), texters.get(w.texter_id)
        if conv is None or texter is None:
            continue  # erased a moment ago
        assert conv.queued_at is not None
        entries.append(
            QueueEntry(
                conversation=conv,
                texter_alias=texter.alias,
                masked=mask_number(texter.phone),
                priority=effective_priority(conv, now, settings),
                waiting_s=int((now - conv.queued_at).total_seconds()),
                first_words=words[w.id],
                safe_to_text=texter.safe_to_text,
                labels=list(conv.labels),
                training=is_role_play(texter),
            )
        )
    return entries, len(queue)

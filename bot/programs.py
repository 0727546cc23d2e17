"""Programs that share one Haven (issue 8, part 4): a domestic violence program and an
anti-trafficking program, say, each with its own number, name, hours and national lines.

- An inbound text routes by the number it was sent to (`To`); an unknown number, or a Haven
  with no program configured, goes to the default program, which the environment describes
  exactly as before (HAVEN_ORG_NAME, HAVEN_HOURS, HAVEN_NATIONAL_LINES,
  HAVEN_NAME_SERVICES). A conversation keeps its program (`program_id`, None = default).
- Staff belong to programs (`user_programs`); with none they belong to the default program.
  Admins see every program (`Scope`).
- A referral to a partner program asks the texter first: the advocate's action stores a
  pending offer on the conversation and Haven asks; the texter's next message answers it
  (`answer_partner_offer`, called by the engine before the flow). YES moves the conversation
  with everything gathered into the partner's queue, keeping its place; NO keeps it here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.events import Event, Events
from bot.flowstate import staff_step
from bot.hours import Hours, parse_hours
from bot.settings import Settings
from bot.store.base import (
    Conflict,
    Conversation,
    Message,
    NotFound,
    Program,
    Store,
    Tx,
    User,
    Waiting,
)
from flows import copy, keywords
from flows.model import Say
from flows.states import HELD_STATES

# conversation.flow keys: the partner program offered and not yet answered (its id), and
# the record of every offer made on this conversation, for each program's figures.
OFFER = "partner_offer"
REFERRALS = "partner_referrals"
SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
ALL_SEE = frozenset({"admin"})


@functools.cache
def _hours(spec: str) -> Hours:
    return parse_hours(spec)


@dataclass(frozen=True)
class ProgramView:
    """What texters of one program see, resolved against the environment's defaults."""

    id: int | None  # None: the default program
    slug: str
    name: str
    hours: Hours
    lines: tuple[str, ...]
    name_services: bool


def default_view(settings: Settings) -> ProgramView:
    return ProgramView(
        None,
        "default",
        settings.org_name,
        _hours(settings.hours),
        settings.national_lines,
        settings.name_services,
    )


def view(program: Program, settings: Settings) -> ProgramView:
    return ProgramView(
        program.id,
        program.slug,
        program.name,
        _hours(program.hours or settings.hours),
        program.lines if program.lines is not None else settings.national_lines,
        program.name_services,
    )


class Book:
    """Every program, loaded once per transaction: look-ups by id and by number."""

    def __init__(self, programs: Sequence[Program], settings: Settings) -> None:
        self.programs = list(programs)
        self.settings = settings
        self._by_id = {p.id: p for p in programs}

    def of(self, program_id: int | None) -> ProgramView:
        """A conversation's program (a program that vanished reads as the default)."""
        found = self._by_id.get(program_id) if program_id is not None else None
        return default_view(self.settings) if found is None else view(found, self.settings)

    def ids(self) -> list[int | None]:
        """Every program's id, the default's (None) first."""
        return [None, *(p.id for p in self.programs)]

    def by_slug(self, slug: str) -> Program | None:
        return next((p for p in self.programs if p.slug == slug), None)


async def book(tx: Tx, settings: Settings) -> Book:
    return Book(await tx.list_programs(), settings)


async def of_conversation(tx: Tx, conv: Conversation, settings: Settings) -> ProgramView:
    """The program whose name, hours and lines this conversation's texts carry."""
    if conv.program_id is None:
        return default_view(settings)  # no look-up: a Haven without programs pays nothing
    return (await book(tx, settings)).of(conv.program_id)


async def route_new(tx: Tx, conv: Conversation, to: str) -> None:
    """A new conversation joins the program whose number the texter wrote to; an unknown
    number (or none) leaves it with the default program."""
    found = next((p for p in await tx.list_programs() if p.number == to.strip()), None)
    if found is not None:
        await tx.set_conversation_program(conv.id, found.id)
        conv.program_id = found.id


# -- who sees what ----------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """The programs whose conversations a staff member sees and acts on. `every`: all of
    them (admins); else `program_ids`, where None stands for the default program."""

    every: bool
    program_ids: frozenset[int | None]

    def covers(self, conv: Conversation | Waiting) -> bool:
        return self.every or conv.program_id in self.program_ids

    def keep(self, convs: Iterable[Conversation]) -> list[Conversation]:
        return [c for c in convs if self.covers(c)]

    def overlaps(self, other: Scope) -> bool:
        """Whether the two share a program (admins' scope shares every one)."""
        return self.every or other.every or bool(self.program_ids & other.program_ids)


async def scope_of(tx: Tx, user: User) -> Scope:
    if user.role in ALL_SEE:
        return Scope(True, frozenset())
    ids = await tx.user_program_ids(user.id)
    return Scope(False, frozenset(ids) if ids else frozenset({None}))


async def scopes_of(tx: Tx, users: Sequence[User]) -> dict[int, Scope]:
    """scope_of for several staff members, in one read (for the wait estimate)."""
    found = await tx.users_program_ids([u.id for u in users if u.role not in ALL_SEE])
    return {
        u.id: Scope(True, frozenset())
        if u.role in ALL_SEE
        else Scope(False, frozenset(found[u.id]) if found[u.id] else frozenset({None}))
        for u in users
    }


async def scope(store: Store, user: User) -> Scope:
    async with store.transaction() as tx:
        return await scope_of(tx, user)


async def number_for(store: Store, user: User, fallback: str) -> str:
    """The number a staff member's role-play texter writes to: their first program's, or
    `fallback` (the default program's) when they belong to none."""
    async with store.transaction() as tx:
        ids = await tx.user_program_ids(user.id)
        found = [p for p in await tx.list_programs() if p.id in ids]
    return found[0].number if found else fallback


def check_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not slug or not set(slug) <= SLUG_CHARS or len(slug) > 40:
        raise ValueError("a program slug is 1-40 of a-z, 0-9, - and _")
    if slug == "default":
        raise ValueError("'default' names the program the environment describes")
    return slug


async def add_program(
    store: Store,
    slug: str,
    name: str,
    number: str,
    now: datetime,
    hours: str | None = None,
    lines: Sequence[str] | None = None,
    name_services: bool = False,
) -> Program:
    """`programs add`: checks the hours and lines the way start-up checks the environment's,
    then stores it. ValueError for bad input; Conflict for a taken slug or number."""
    slug = check_slug(slug)
    if hours is not None:
        parse_hours(hours)  # ValueError names what is wrong
    if lines is not None:
        unknown = [x for x in lines if f"line_{x}" not in copy.message_ids("en")]
        if unknown:
            raise ValueError(f"unknown national line(s): {', '.join(unknown)}")
    async with store.transaction() as tx:
        return await tx.add_program(slug, name, number, hours, lines, name_services, now)


async def program_ids_for(tx: Tx, slugs: Sequence[str]) -> list[int]:
    """The ids of these program slugs; ValueError naming any unknown one."""
    known = {p.slug: p.id for p in await tx.list_programs()}
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise ValueError(f"no such program: {', '.join(unknown)}")
    return [known[s] for s in slugs]


# -- referral to a partner program --------------------------------------------------------
async def partners_for(tx: Tx, conv: Conversation) -> list[Program]:
    """The programs this conversation could be referred to: every other one."""
    return [p for p in await tx.list_programs() if p.id != conv.program_id]


async def offer_partner(
    store: Store,
    conversation_id: int,
    user: User,
    slug: str,
    now: datetime,
    settings: Settings,
    events: Events | None = None,
) -> Conversation:
    """The advocate's "Refer to partner program": Haven asks the texter for consent (through
    the outbox, like the advocate's own texts) and remembers the offer until they answer.
    Only whoever holds the conversation (or a supervisor) may; never to an opted-out texter."""
    async with store.locked_conversation(conversation_id) as (tx, conv):
        if conv.state not in HELD_STATES or (
            conv.advocate_id != user.id and user.role == "advocate"
        ):
            raise Conflict("you do not hold that conversation")
        partner = (await book(tx, settings)).by_slug(slug)
        if partner is None:
            raise NotFound(f"no program {slug!r}")
        if partner.id == conv.program_id:
            raise Conflict("the texter is already with that program")
        texter = await tx.get_texter(conv.texter_id)
        if texter.opted_out:
            raise Conflict("this texter has opted out; they must text START first")
        here = await of_conversation(tx, conv, settings)
        text = copy.render("partner_consent", conv.language, {"named": here.name_services})
        message = await tx.add_message(
            Message(conv.id, "out", text, author="haven", status="queued")
        )
        assert message.id is not None
        await tx.enqueue_outbound(message.id, texter.phone, now)
        conv.flow = {**conv.flow, OFFER: partner.id}
        conv.updated_at = now
        await tx.save_conversation(conv)
        await tx.audit(user.id, "partner_offer", conv.id, f"to program {partner.id}", now)
    if events is not None:
        events.publish(
            Event(
                "message",
                {"conversation_id": conv.id, "message_id": message.id, "direction": "out"},
            )
        )
    return conv


async def answer_partner_offer(
    tx: Tx, conv: Conversation, text: str, danger: bool, now: datetime
) -> Say | None:
    """Called by the engine for every inbound message, before the flow. With an offer
    pending, this message ends it: YES moves the conversation (program, released by its
    advocate into the partner's queue, queued_at kept: no re-asking, no lost place) and
    answers `partner_connected`; NO keeps it here and answers `partner_declined`. Anything
    else (and any message showing danger, which the flow and rule 1 handle as usual) is not
    an answer: the offer lapses, nothing moves, and the flow sees the message. Returns the
    reply, or None when the flow should handle the message."""
    offered = conv.flow.get(OFFER)
    if offered is None:
        return None
    flow = {k: v for k, v in conv.flow.items() if k != OFFER}
    reply = None if danger or conv.state not in HELD_STATES else keywords.answer(text)
    outcome = {"yes": "accepted", "no": "declined"}.get(reply or "", "lapsed")
    record = {"from": conv.program_id, "to": offered, "outcome": outcome}
    conv.flow = {**flow, REFERRALS: [*flow.get(REFERRALS, []), record]}
    if outcome != "accepted":
        return Say("partner_declined") if outcome == "declined" else None

    await staff_step(tx, conv, "release", now)
    conv.advocate_id = conv.transfer_to = None
    conv.queued_at = conv.queued_at or now
    conv.updated_at = now
    await tx.set_conversation_program(conv.id, int(offered))
    conv.program_id = int(offered)
    await tx.audit(None, "partner_moved", conv.id, f"to program {offered}", now)
    return Say("partner_connected")

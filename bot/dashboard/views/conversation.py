"""One conversation: the page and its live transcript, replying, internal notes, hand-offs
(transfer, accept, decline) and closing."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import abuse, handoff, programs, queue, vocabulary
from bot.dashboard import access
from bot.dashboard.security import ANY_STAFF, TAKERS, require_role, user_of
from bot.dashboard.views import tools
from bot.dashboard.views.common import (
    back_to,
    base_context,
    conversation_id,
    done,
    form_field,
    utcnow,
)
from bot.dashboard.wording import basis_words, screening, signals_words
from bot.keys import ENGINE, EVENTS, SETTINGS, STORE
from bot.store.base import ENDED_STATES, Conversation, Note, NotFound, Tx, User
from bot.triage import DANGER

routes = web.RouteTableDef()
MAX_NOTE = 4000
CONVERSATION = "/dashboard/conversations/{cid}"
HANDOFF = "Hand-off: "  # the note a transfer carries starts so
HISTORY_SHOWN = 10


async def load_viewable(request: web.Request, tx: Tx, user: User) -> Conversation:
    conv = await tx.get_conversation(conversation_id(request))
    if not await access.may_read(tx, user, conv):
        raise web.HTTPForbidden(text="that conversation is held by someone else")
    return conv


def handoff_note(notes: list[Note], sender: int | None) -> str:
    """The latest hand-off note the sender of a transfer wrote ("" when none)."""
    for note in reversed(notes):
        if note.user_id == sender and note.body.startswith(HANDOFF):
            return note.body
    return ""


async def earlier_conversations(tx: Tx, conv: Conversation) -> list[dict[str, Any]]:
    """The same texter's earlier conversations still kept (retention purges the rest),
    newest first, with how many notes each has: read by texter, at most HISTORY_SHOWN."""
    mine = [
        c
        for c in await tx.texter_conversations(
            conv.texter_id, states=sorted(ENDED_STATES), limit=HISTORY_SHOWN + 1
        )
        if c.id != conv.id
    ][:HISTORY_SHOWN]
    counts = await tx.note_counts([c.id for c in mine])
    return [{"conv": c, "notes": counts.get(c.id, 0)} for c in mine]


@cache
def canned(language: str) -> list[dict[str, str]]:
    """Canned responses for a language (bot/dashboard/canned/<lang>.toml), English fallback."""
    name = f"{language}.toml" if language in ("en", "es") else "en.toml"
    text = resources.files("bot.dashboard").joinpath("canned", name).read_text("utf-8")
    items = tomllib.loads(text).get("response", [])
    return [{"id": str(i["id"]), "title": str(i["title"]), "text": str(i["text"])} for i in items]


async def transcript_context(tx: Tx, conv: Conversation) -> dict[str, Any]:
    messages = await tx.list_messages(conv.id)
    authors: dict[str, str] = {}
    rows = []
    for m in messages:
        label = {"texter": "Texter", "haven": "Haven", "system": "System"}.get(m.author)
        if label is None and m.author.startswith("advocate:"):
            if m.author not in authors:
                try:
                    authors[m.author] = (await tx.get_user(int(m.author.split(":", 1)[1]))).name
                except (NotFound, ValueError):
                    authors[m.author] = "advocate"
            label = authors[m.author]
        danger = bool(DANGER & set(m.labels))
        rows.append({"m": m, "author": label or m.author, "danger": danger})
    return {"messages": rows, "last_id": messages[-1].id if messages else 0}


@routes.get(CONVERSATION, name="conversation")
@require_role(*ANY_STAFF)
async def conversation_page(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    now, settings = utcnow(), request.app[SETTINGS]
    async with request.app[STORE].transaction() as tx:
        conv = await load_viewable(request, tx, user)
        texter = await tx.get_texter(conv.texter_id)
        transcript = await transcript_context(tx, conv)
        stored_notes = await tx.list_notes(conv.id)
        staff = await tx.list_users()  # one read for every name and colleague shown
        names = {u.id: u.name for u in staff}
        notes = [
            {"note": note, "author": names.get(note.user_id, "former user")}
            for note in stored_notes
        ]
        # Only colleagues who work for the texter's program: check_target refuses others.
        candidates = [
            u
            for u in staff
            if u.active and u.id != user.id and u.role in ("advocate", "supervisor")
        ]
        scopes = await programs.scopes_of(tx, candidates)
        colleagues = [u for u in candidates if scopes[u.id].covers(conv)]
        holder = names.get(conv.advocate_id) if conv.advocate_id is not None else None
        earlier = await earlier_conversations(tx, conv)
        advocate_tools = await tools.page_context(tx, conv, user)
        partners = await programs.partners_for(tx, conv)
        blocked = await abuse.is_blocked(tx, texter)
        await tx.audit(user.id, "view", conv.id, "", utcnow())
    context = await base_context(
        request,
        conv=conv,
        alias=texter.alias,
        masked=vocabulary.mask_number(texter.phone),
        safe_to_text=texter.safe_to_text,
        notes=notes,
        colleagues=colleagues,
        teams=[t for t in queue.TEAMS if t != conv.team],
        holder=holder,
        canned=canned(conv.language),
        dispositions=handoff.DISPOSITIONS,
        holds=access.holds(user, conv),
        offered=access.offered(user, conv),
        handoff=handoff_note(stored_notes, conv.advocate_id) if conv.transfer_to else "",
        ended=conv.state in ENDED_STATES,
        answers=screening(conv.answers),
        signals=signals_words(conv.signals),
        priority=queue.effective_priority(conv, now, settings),
        basis=basis_words(queue.priority_basis(conv, now, settings)),
        words=queue.telling_words([r["m"] for r in transcript["messages"]]),
        earlier=earlier,
        training=queue.is_role_play(texter),
        **advocate_tools,
        partners=partners,
        partner_offer=conv.flow.get(programs.OFFER),
        blocked=blocked,
        **transcript,
    )
    return aiohttp_jinja2.render_template("conversation.html", request, context)


@routes.get(CONVERSATION + "/transcript")
@require_role(*ANY_STAFF)
async def transcript_fragment(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    async with request.app[STORE].transaction() as tx:
        conv = await load_viewable(request, tx, user)
        context = await transcript_context(tx, conv)
        await tx.audit(user.id, "view", conv.id, "live update", utcnow())
    return aiohttp_jinja2.render_template(
        "_transcript.html", request, await base_context(request, conv=conv, **context)
    )


@routes.post(CONVERSATION + "/reply")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def reply(request: web.Request) -> web.StreamResponse:
    cid = conversation_id(request)
    body = await form_field(request, "body", 1600)
    message = await request.app[ENGINE].send_from_advocate(cid, user_of(request), body)
    return done(request, f"/dashboard/conversations/{cid}", message_id=message.id)


@routes.post(CONVERSATION + "/notes")
@require_role(*ANY_STAFF)
@back_to(CONVERSATION)
async def add_note(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    body = await form_field(request, "body", MAX_NOTE)
    if not body:
        raise ValueError("The note is empty.")
    async with request.app[STORE].transaction() as tx:
        conv = await load_viewable(request, tx, user)
        note = await tx.add_note(conv.id, user.id, body, utcnow())
        await tx.audit(user.id, "note", conv.id, f"note {note.id}", utcnow())
    return done(request, f"/dashboard/conversations/{conv.id}", note_id=note.id)


@routes.post(CONVERSATION + "/transfer")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def transfer(request: web.Request) -> web.StreamResponse:
    """To another advocate (who must accept) or, with to=queue, back to the queue."""
    user = user_of(request)
    cid = conversation_id(request)
    target = await form_field(request, "to", 40)
    note = await form_field(request, "note", MAX_NOTE - len(HANDOFF))
    store, events = request.app[STORE], request.app[EVENTS]
    if target == "queue":
        await handoff.release(store, cid, user, utcnow(), events)
    elif target.startswith("team:") and target[5:] in queue.TEAMS:
        await handoff.release(store, cid, user, utcnow(), events, team=target[5:])
    elif target.isdigit():
        await access.check_target(store, cid, int(target))
        await handoff.offer_transfer(store, cid, user, int(target), utcnow(), events)
    else:
        raise ValueError("to must be an advocate's id, 'queue' or a team")
    if note:  # saved once the hand-off happened, so a refused one leaves no trace
        async with store.transaction() as tx:
            saved = await tx.add_note(cid, user.id, HANDOFF + note, utcnow())
            await tx.audit(user.id, "note", cid, f"note {saved.id}", utcnow())
    return done(request, "/dashboard/queue")


@routes.post(CONVERSATION + "/accept")
@require_role(*TAKERS)
@back_to("/dashboard/queue")
async def accept(request: web.Request) -> web.StreamResponse:
    cid = conversation_id(request)
    await handoff.accept_transfer(
        request.app[STORE], cid, user_of(request), utcnow(), request.app[EVENTS]
    )
    return done(request, f"/dashboard/conversations/{cid}", conversation_id=cid)


@routes.post(CONVERSATION + "/decline")
@require_role(*TAKERS)
@back_to("/dashboard/queue")
async def decline(request: web.Request) -> web.StreamResponse:
    """Say no to a transfer offer: the texter stays with the advocate who offered it."""
    cid = conversation_id(request)
    await handoff.decline_transfer(
        request.app[STORE], cid, user_of(request), utcnow(), request.app[EVENTS]
    )
    return done(request, "/dashboard/queue")


@routes.post(CONVERSATION + "/close")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def close(request: web.Request) -> web.StreamResponse:
    cid = conversation_id(request)
    disposition = await form_field(request, "disposition", 40)
    if not disposition:
        raise ValueError("Choose a disposition first.")
    await handoff.close(
        request.app[STORE], cid, user_of(request), disposition, utcnow(), request.app[EVENTS]
    )
    return done(request, "/dashboard/queue")

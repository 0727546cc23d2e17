"""The queue: who waits (page, live fragment, JSON), the advocate's own conversations and
offers, "Take next" and taking one texter."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import handoff, queue, vocabulary
from bot.dashboard import access
from bot.dashboard.security import ANY_STAFF, TAKERS, require_role, user_of
from bot.dashboard.views.auth import PRESENCE
from bot.dashboard.views.common import (
    back_to,
    base_context,
    conversation_id,
    done,
    epoch,
    user_name,
    utcnow,
    wait_text,
)
from bot.dashboard.views.conversation import handoff_note
from bot.dashboard.wording import basis_words, screening
from bot.keys import EVENTS, SETTINGS, STORE
from bot.store.base import Conflict, Conversation, Tx, User

routes = web.RouteTableDef()
QUEUE_SHOWN = 50  # rows the queue shows (the top; "Take next" takes from it); the count is all


async def unread(tx: Tx, conv: Conversation, user: User) -> int:
    """The texter's messages since this user last had the conversation open."""
    return await tx.unread_count(conv.id, user.id)


async def queue_context(request: web.Request, user: User) -> dict[str, Any]:
    now, settings = utcnow(), request.app[SETTINGS]
    store = request.app[STORE]
    where = await access.in_scope(store, user)
    entries, waiting = await queue.page(store, now, settings, where.covers, QUEUE_SHOWN)
    async with store.reading() as tx:  # the page never waits behind a webhook
        theirs = await tx.held_or_offered(user.id, queue.HELD_STATES)
        texters = await tx.get_texters([c.texter_id for c in theirs])
        mine: list[dict[str, Any]] = []
        offers: list[dict[str, Any]] = []
        for conv in theirs:
            texter = texters.get(conv.texter_id)
            if texter is None:
                continue  # erased a moment ago
            row: dict[str, Any] = {
                "conv": conv,
                "alias": texter.alias,
                "masked": vocabulary.mask_number(texter.phone),
            }
            if conv.transfer_to == user.id:
                row["sender"] = await user_name(tx, conv.advocate_id, "a colleague")
                row["handoff"] = handoff_note(await tx.list_notes(conv.id), conv.advocate_id)
                offers.append(row)
            else:
                row["unread"] = await unread(tx, conv, user)
                mine.append(row)
        fresh = await tx.get_user(user.id)
    rows = [
        {
            "entry": e,
            "conv": e.conversation,
            "since": epoch(e.conversation.queued_at),
            "wait": wait_text(e.waiting_s),
            "basis": basis_words(queue.priority_basis(e.conversation, now, settings)),
            "answers": screening(e.conversation.answers),
        }
        for e in entries
    ]
    return {
        "rows": rows,
        "mine": mine,
        "offers": offers,
        "me": fresh,
        "held_count": len(mine),
        "waiting": waiting,
    }


@routes.get("/dashboard/queue", name="queue")
@require_role(*ANY_STAFF)
async def queue_page(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    context = await queue_context(request, user)
    async with request.app[STORE].transaction() as tx:
        await tx.audit(user.id, "view_queue", None, f"{context['waiting']} waiting", utcnow())
    return aiohttp_jinja2.render_template(
        "queue.html", request, await base_context(request, **context, presences=PRESENCE)
    )


@routes.get("/dashboard/fragments/queue")
@require_role(*ANY_STAFF)
async def queue_fragment(request: web.Request) -> web.StreamResponse:
    context = await queue_context(request, user_of(request))
    return aiohttp_jinja2.render_template(
        "_queue.html", request, await base_context(request, **context)
    )


@routes.get("/dashboard/queue.json")
@require_role(*ANY_STAFF)
async def queue_json(request: web.Request) -> web.StreamResponse:
    now = utcnow()
    where = await access.in_scope(request.app[STORE], user_of(request))
    entries = await queue.snapshot(request.app[STORE], now, request.app[SETTINGS])
    entries = [e for e in entries if where.covers(e.conversation)]
    return web.json_response(
        [
            {
                "conversation_id": e.conversation.id,
                "alias": e.texter_alias,
                "masked": e.masked,
                "priority": e.priority,
                "basis": queue.priority_basis(e.conversation, now, request.app[SETTINGS]),
                "waiting_s": e.waiting_s,
                "labels": e.labels,
                "language": e.conversation.language,
                "team": e.conversation.team,
            }
            for e in entries
        ]
    )


@routes.post("/dashboard/take-next")
@require_role(*TAKERS)
@back_to("/dashboard/queue")
async def take_next(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    where = await access.in_scope(request.app[STORE], user)
    conv = await handoff.take_next(
        request.app[STORE],
        user,
        utcnow(),
        request.app[SETTINGS],
        request.app[EVENTS],
        program_ids=None if where.every else where.program_ids,
    )
    if conv is None:
        raise Conflict("Nobody is waiting.")
    return done(request, f"/dashboard/conversations/{conv.id}", conversation_id=conv.id)


@routes.post("/dashboard/conversations/{cid}/claim")
@require_role(*TAKERS)
@back_to("/dashboard/queue")
async def claim(request: web.Request) -> web.StreamResponse:
    cid = conversation_id(request)
    await handoff.claim(request.app[STORE], cid, user_of(request), utcnow(), request.app[EVENTS])
    return done(request, f"/dashboard/conversations/{cid}", conversation_id=cid)

"""A referral to a partner program sharing this Haven: the advocate asks, Haven texts the
texter for consent, and their next message answers it (bot/programs.py)."""

from __future__ import annotations

from aiohttp import web

from bot import programs
from bot.dashboard.security import TAKERS, require_role, user_of
from bot.dashboard.views.common import back_to, conversation_id, done, form_field, utcnow
from bot.keys import EVENTS, SETTINGS, STORE

routes = web.RouteTableDef()


@routes.post("/dashboard/conversations/{cid}/partner")
@require_role(*TAKERS)
@back_to("/dashboard/conversations/{cid}")
async def refer_to_partner(request: web.Request) -> web.StreamResponse:
    cid = conversation_id(request)
    slug = await form_field(request, "program", 40)
    if not slug:
        raise ValueError("Choose a program first.")
    await programs.offer_partner(
        request.app[STORE],
        cid,
        user_of(request),
        slug,
        utcnow(),
        request.app[SETTINGS],
        request.app[EVENTS],
    )
    return done(request, f"/dashboard/conversations/{cid}", conversation_id=cid)

"""Training: a supervisor plays a texter from a fictional number, through the real flow."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot import programs, vocabulary
from bot.dashboard.security import SUPERVISORS, require_role, user_of
from bot.dashboard.views.common import back_to, base_context, done, form_field, utcnow
from bot.dashboard.views.conversation import transcript_context
from bot.keys import ENGINE, SETTINGS, STORE
from bot.store.base import NotFound

routes = web.RouteTableDef()
TRAINING_PREFIX = vocabulary.ROLE_PLAY_PREFIX  # 555-0100..0199 are reserved for fiction


async def training_number(request: web.Request, reset: bool = False) -> str:
    session = await get_session(request)
    number = session.get("training_number")
    if reset or not isinstance(number, str):
        number = f"{TRAINING_PREFIX}{secrets.randbelow(100):02d}"
        session["training_number"] = number
        session["training_convs"] = []
    return number


async def training_conversations(request: web.Request) -> list[int]:
    session = await get_session(request)
    ids = session.get("training_convs") or []
    return [int(i) for i in ids if isinstance(i, int)]


async def training_context(request: web.Request) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async with request.app[STORE].transaction() as tx:
        for cid in await training_conversations(request):
            try:
                conv = await tx.get_conversation(cid)
            except NotFound:
                continue
            rows.extend((await transcript_context(tx, conv))["messages"])
    return {"messages": rows}


@routes.get("/dashboard/training", name="training")
@require_role(*SUPERVISORS)
async def training_page(request: web.Request) -> web.StreamResponse:
    number = await training_number(request)
    context = await base_context(
        request,
        number=number,
        masked=vocabulary.mask_number(number),
        **await training_context(request),
    )
    return aiohttp_jinja2.render_template("training.html", request, context)


@routes.get("/dashboard/training/transcript")
@require_role(*SUPERVISORS)
async def training_transcript(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "_training.html", request, await base_context(request, **await training_context(request))
    )


@routes.post("/dashboard/training/send")
@require_role(*SUPERVISORS)
@back_to("/dashboard/training")
async def training_send(request: web.Request) -> web.StreamResponse:
    """The role-play texter's message goes through the real engine, as an inbound SMS from
    a fictional number, so it meets the real flow, triage and queue."""
    from bot.sms.webhook import InboundSms  # the transport's record; imported late on purpose

    user = user_of(request)
    body = await form_field(request, "body", 1600)
    if not body:
        raise ValueError("Type a message first.")
    number = await training_number(request)
    settings = request.app[SETTINGS]
    sms = InboundSms(
        message_sid="SMtraining" + secrets.token_hex(12),
        from_=number,
        # The trainee's own program's number, so the role-play lands where they can see it.
        to=await programs.number_for(
            request.app[STORE], user, settings.twilio_from_number or "+15550000000"
        ),
        body=body,
    )
    outcome = await request.app[ENGINE].handle_inbound(sms)
    session = await get_session(request)
    ids = await training_conversations(request)
    if outcome.conversation_id is not None and outcome.conversation_id not in ids:
        ids.append(outcome.conversation_id)
        session["training_convs"] = ids[-5:]
    async with request.app[STORE].transaction() as tx:
        await tx.audit(user.id, "training", outcome.conversation_id, "role-play message", utcnow())
    return done(request, "/dashboard/training", conversation_id=outcome.conversation_id)


@routes.post("/dashboard/training/reset")
@require_role(*SUPERVISORS)
async def training_reset(request: web.Request) -> web.StreamResponse:
    await training_number(request, reset=True)
    return done(request, "/dashboard/training")

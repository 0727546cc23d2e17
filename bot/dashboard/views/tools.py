"""Help beyond the queue, from one conversation (issue 8): the local resource directory
searched from the texter's ZIP with a referral recorded on insert, the screening tools an
advocate administers (bot.screens), and the safety plan (bot.safety_plan), texted only
when rule 2 allows.

Reading these needs what reading the conversation needs; recording them needs holding the
conversation (or a supervisor's role), as replying does."""

from __future__ import annotations

import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import resources, safety_plan, screens
from bot.dashboard import access
from bot.dashboard.security import ANY_STAFF, TAKERS, require_role, user_of
from bot.dashboard.views.common import (
    back_to,
    base_context,
    conversation_id,
    done,
    form_field,
    publish,
    user_name,
    utcnow,
    wants_json,
)
from bot.keys import ENGINE, STORE
from bot.store.base import Conflict, Conversation, Tx, User

routes = web.RouteTableDef()
CONVERSATION = "/dashboard/conversations/{cid}"
ZIP = re.compile(r"\b(\d{5})\b")
DEFAULT_RESULTS = 5
MAX_RESULTS = 20
# Staff-facing names of the plan's sections (the texter sees the localised headings).
SECTION_NAMES = {
    "contacts": "Safe contacts",
    "code_word": "Code word",
    "place": "A place to go",
    "documents": "Documents",
    "children": "Children",
    "pets": "Pets",
    "technology": "Technology safety",
}


def may_act(user: User, conv: Conversation) -> bool:
    """Recording a screen, a plan or a referral: the holder, or a supervisor."""
    return access.holds(user, conv) or user.role == "supervisor"


async def acting_on(tx: Tx, user: User, conv: Conversation) -> None:
    if not await access.may_read(tx, user, conv):
        raise web.HTTPForbidden(text="that conversation is held by someone else")
    if not may_act(user, conv):
        raise web.HTTPForbidden(text="only the advocate holding this conversation can do that")


def zip_of(location: str | None) -> str:
    match = ZIP.search(location or "")
    return match[1] if match else ""


def screen_form(kind: str, intake: dict[str, str], last: dict[str, str] | None) -> dict[str, Any]:
    """One screening tool as a form: the last recorded answers, or else what the texter
    already answered by text."""
    tool = screens.tool(kind)
    given = last if last is not None else screens.prefill(kind, intake)
    return {
        "kind": kind,
        "title": tool.title,
        "questions": [
            {"id": item.id, "n": n, "text": item.text, "value": given.get(item.id, "")}
            for n, item in enumerate(tool.items, 1)
        ],
    }


async def page_context(tx: Tx, conv: Conversation, user: User) -> dict[str, Any]:
    """What the conversation page shows of these tools (conversation.html's side cards)."""
    referrals = [
        {"r": r, "by": await user_name(tx, r.user_id, "Haven")}
        for r in await tx.list_referrals(conv.id)
    ]
    recorded = await tx.list_screens(conv.id)
    done_screens = [
        {
            "title": screens.tool(s.kind).title if s.kind in screens.TOOLS else s.kind,
            "screened_in": bool(s.data.get("screened_in")),
            "basis": str(s.data.get("basis", "")),
            "at": s.created_at,
            "by": await user_name(tx, s.user_id, "former user"),
        }
        for s in recorded
    ]
    latest = {s.kind: dict(s.data.get("answers", {})) for s in recorded}
    trafficking = screens.trafficking_kind(conv.answers)
    plan = await tx.get_safety_plan(conv.id)
    sections = plan.sections if plan else {}
    return {
        "tools_act": may_act(user, conv),
        "resource_zip": zip_of(conv.location),
        "resource_needs": resources.NEEDS,
        "referrals": referrals,
        "screens_done": done_screens,
        "screen_forms": [
            screen_form(kind, conv.answers, latest.get(kind))
            for kind in (screens.LETHALITY.kind, trafficking)
        ],
        "plan_sections": [
            {
                "id": s,
                "name": SECTION_NAMES[s],
                "heading": safety_plan.heading(s, conv.language),
                "text": sections.get(s, ""),
            }
            for s in safety_plan.SECTIONS
        ],
        "plan_saved": plan is not None,
        "plan_sent_at": plan.sent_at if plan else None,
    }


# -- the resource directory ------------------------------------------------------------
@routes.get(CONVERSATION + "/resources")
@require_role(*ANY_STAFF)
async def resource_search(request: web.Request) -> web.StreamResponse:
    """Services nearest a ZIP (the texter's by default), as a fragment for the page or as
    JSON; each with the one line `as_text` puts in a reply, in the texter's language."""
    user = user_of(request)
    query = request.query
    need = query.get("need", "") or None
    raw_limit = query.get("limit", "") or str(DEFAULT_RESULTS)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_RESULTS:
        raise ValueError(f"limit must be 1 to {MAX_RESULTS}")
    error, found = "", list[resources.Resource]()
    async with request.app[STORE].transaction() as tx:
        conv = await tx.get_conversation(conversation_id(request))
        if not await access.may_read(tx, user, conv):
            raise web.HTTPForbidden(text="that conversation is held by someone else")
        zip_code = query.get("zip", "").strip()[:20] or zip_of(conv.location)
        try:
            found = await resources.near(
                tx, zip_code, need=need, limit=int(raw_limit), now=utcnow()
            )
        except resources.UnknownZip:
            error = "Unknown ZIP"
    rows = [{"resource": r, "text": resources.as_text(r, conv.language)} for r in found]
    if wants_json(request):
        if error:
            return web.json_response({"ok": False, "error": error}, status=400)
        return web.json_response(
            {
                "ok": True,
                "results": [
                    {**r.as_json(), "text": resources.as_text(r, conv.language)} for r in found
                ],
            }
        )
    context = await base_context(
        request, conv=conv, rows=rows, error=error, insert=access.holds(user, conv)
    )
    return aiohttp_jinja2.render_template("_resources.html", request, context)


@routes.post(CONVERSATION + "/referrals")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def add_referral(request: web.Request) -> web.StreamResponse:
    """An advocate inserted a directory entry into their reply: recorded once per service
    and conversation (inserting it again changes nothing)."""
    user = user_of(request)
    service_id = await form_field(request, "service_id", 200)
    if not service_id:
        raise ValueError("service_id is required")
    async with request.app[STORE].transaction() as tx:
        conv = await tx.get_conversation(conversation_id(request))
        await acting_on(tx, user, conv)
        given = [r for r in await tx.list_referrals(conv.id) if r.service_id == service_id]
        referral = given[0] if given else None
        if referral is None:
            referral = await tx.record_referral(conv.id, service_id, user.id, utcnow())
            await tx.audit(user.id, "referral", conv.id, f"referral {referral.id}", utcnow())
    return done(
        request,
        f"/dashboard/conversations/{conv.id}",
        referral_id=referral.id,
        name=referral.name,
        new=not given,
    )


# -- screening tools -------------------------------------------------------------------
@routes.post(CONVERSATION + "/screens")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def record_screen(request: web.Request) -> web.StreamResponse:
    """Record one screen; a screen-in raises priority (never lowers it), adds its signal
    (and the trafficking label), under the texter's lock."""
    user = user_of(request)
    kind = await form_field(request, "kind", 40)
    tool = screens.tool(kind)
    answers = {}
    for item in tool.items:
        value = (await form_field(request, item.id, 10)).lower()
        if value:
            answers[item.id] = value
    result = screens.score(kind, answers)
    cid, now = conversation_id(request), utcnow()
    async with request.app[STORE].locked_conversation(cid) as (tx, conv):
        await acting_on(tx, user, conv)
        before = (conv.priority, list(conv.labels), list(conv.signals))
        raised = screens.apply(conv, result)
        if before != (conv.priority, conv.labels, conv.signals):
            conv.updated_at = now
            await tx.save_conversation(conv)
        saved = await tx.add_screen(cid, kind, user.id, result.as_data(), now)
        outcome = "screened in" if result.screened_in else "did not screen in"
        await tx.audit(user.id, "screen", cid, f"{kind} screen {saved.id}: {outcome}", now)
    publish(request, "conversation", conversation_id=cid, state=conv.state)
    if raised:
        publish(request, "queue")
    return done(
        request,
        f"/dashboard/conversations/{cid}",
        screen_id=saved.id,
        screened_in=result.screened_in,
        basis=result.basis,
        priority=conv.priority,
    )


# -- the safety plan -------------------------------------------------------------------
@routes.post(CONVERSATION + "/safety-plan")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def save_plan(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    form = {s: await form_field(request, s, safety_plan.MAX_SECTION) for s in safety_plan.SECTIONS}
    plan = safety_plan.clean(form)
    async with request.app[STORE].transaction() as tx:
        conv = await tx.get_conversation(conversation_id(request))
        await acting_on(tx, user, conv)
        await tx.save_safety_plan(conv.id, user.id, plan, utcnow())
        await tx.audit(user.id, "safety_plan", conv.id, f"{len(plan)} sections", utcnow())
    return done(request, f"/dashboard/conversations/{conv.id}", sections=len(plan))


@routes.post(CONVERSATION + "/safety-plan/send")
@require_role(*TAKERS)
@back_to(CONVERSATION)
async def send_plan(request: web.Request) -> web.StreamResponse:
    """Text the saved plan as a short series, each text through the advocate's own path
    (stored, audited, sent once through the outbox), only when rule 2 allows texting
    first: 409 with the reason otherwise."""
    user = user_of(request)
    cid = conversation_id(request)
    engine = request.app[ENGINE]
    store = request.app[STORE]
    async with store.transaction() as tx:
        conv = await tx.get_conversation(cid)
        await acting_on(tx, user, conv)
        plan = await tx.get_safety_plan(cid)
        if plan is None or not plan.sections:
            raise ValueError("Save the plan with at least one section first.")
        bodies = safety_plan.texts(plan.sections, conv.language)
    sent: list[int | None] = []
    for body in bodies:
        # Checked before every text: a texter who says it is no longer safe stops the rest.
        async with store.transaction() as tx:
            texter = await tx.get_texter((await tx.get_conversation(cid)).texter_id)
        reason = safety_plan.refusal(texter, utcnow(), engine.hours)
        if reason is not None:
            if sent:
                reason += f" {len(sent)} of {len(bodies)} texts had gone."
            raise Conflict(reason)
        sent.append((await engine.send_from_advocate(cid, user, body, utcnow())).id)
    async with store.transaction() as tx:
        await tx.mark_safety_plan_sent(cid, utcnow())
    return done(request, f"/dashboard/conversations/{cid}", sent=len(sent), message_ids=sent)

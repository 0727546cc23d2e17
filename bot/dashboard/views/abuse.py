"""The block list (block and unblock a texter's number from their conversation page) and
the supervisors' audit-log viewer. Both are audited or show the audit; neither shows any
texter content."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.dashboard import access
from bot.dashboard.security import ANY_STAFF, SUPERVISORS, require_role, user_of
from bot.dashboard.views.common import (
    back_to,
    base_context,
    conversation_id,
    done,
    publish,
    user_name,
    utcnow,
)
from bot.engine import staff_step
from bot.keys import STORE
from flows.states import AFTER_HOURS, QUEUED

routes = web.RouteTableDef()
CONVERSATION = "/dashboard/conversations/{cid}"
AUDIT_PAGE = 50
# Blocking takes a waiting texter out of the queue (closed); one an advocate holds stays
# with them, to close in the usual way.
LEAVES_THE_QUEUE = (QUEUED, AFTER_HOURS)


async def _set_blocked(request: web.Request, blocked: bool) -> web.StreamResponse:
    user, cid, now = user_of(request), conversation_id(request), utcnow()
    async with request.app[STORE].locked_conversation(cid) as (tx, conv):
        if not await access.may_read(tx, user, conv):
            raise web.HTTPForbidden(text="that conversation is held by someone else")
        if blocked:
            changed = await tx.block_texter(conv.texter_id, user.id, now)
            if conv.state in LEAVES_THE_QUEUE and conv.advocate_id is None:
                await staff_step(tx, conv, "close", now)
                conv.disposition = "blocked"
                await tx.save_conversation(conv)
        else:
            changed = await tx.unblock_texter(conv.texter_id)
        if changed:
            await tx.audit(user.id, "block" if blocked else "unblock", conv.id, "", now)
    publish(request, "queue")
    publish(request, "conversation", conversation_id=cid, state=conv.state)
    return done(request, f"/dashboard/conversations/{cid}", blocked=blocked)


@routes.post(CONVERSATION + "/block")
@require_role(*ANY_STAFF)
@back_to(CONVERSATION)
async def block(request: web.Request) -> web.StreamResponse:
    """Block this texter's number: no replies, out of the queue; messages still kept."""
    return await _set_blocked(request, True)


@routes.post(CONVERSATION + "/unblock")
@require_role(*ANY_STAFF)
@back_to(CONVERSATION)
async def unblock(request: web.Request) -> web.StreamResponse:
    return await _set_blocked(request, False)


@routes.get("/dashboard/audit", name="audit")
@require_role(*SUPERVISORS)
async def audit_page(request: web.Request) -> web.StreamResponse:
    """Audit rows newest first, a page at a time (?before=<id> for older ones): who did
    what to which conversation, when. Audit rows never hold texter content."""
    raw = request.query.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) <= 12 else None
    async with request.app[STORE].transaction() as tx:
        entries = await tx.audit_page(before, AUDIT_PAGE + 1)
        names: dict[int | None, str] = {}
        rows: list[dict[str, Any]] = []
        for entry in entries[:AUDIT_PAGE]:
            if entry.user_id not in names:
                names[entry.user_id] = await user_name(tx, entry.user_id, "system")
            rows.append({"entry": entry, "who": names[entry.user_id] or "system"})
    older = entries[AUDIT_PAGE - 1].id if len(entries) > AUDIT_PAGE else None
    context = await base_context(request, rows=rows, older=older, before=before)
    return aiohttp_jinja2.render_template("audit.html", request, context)

"""The supervisor's view: every conversation of the shift by risk, each advocate's load,
reassigning, the shift's charts and the intake flow diagram."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot import handoff, reports
from bot.dashboard import access, diagram
from bot.dashboard.security import ANY_STAFF, SUPERVISORS, require_role, user_of
from bot.dashboard.views import alarms
from bot.dashboard.views.common import (
    back_to,
    base_context,
    conversation_id,
    done,
    epoch,
    form_field,
    publish,
    utcnow,
    wait_text,
)
from bot.dashboard.wording import basis_words
from bot.keys import EVENTS, SETTINGS, STORE

routes = web.RouteTableDef()


async def supervisor_context(request: web.Request) -> dict[str, Any]:
    now = utcnow()
    where = await access.in_scope(request.app[STORE], user_of(request))
    shift = await reports.board(request.app[STORE], now, request.app[SETTINGS], where)
    return {
        "rows": [
            {
                "r": r,
                "basis": basis_words(r.basis),
                "since": epoch(r.since),
                "wait": wait_text((now - r.since).total_seconds()),
            }
            for r in shift.rows
        ],
        "staff": shift.staff,
        "assignable": shift.assignable,
        "waiting": shift.waiting,
    }


@routes.get("/dashboard/supervisor", name="supervisor")
@require_role(*SUPERVISORS)
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    context = await supervisor_context(request)
    async with request.app[STORE].transaction() as tx:
        await tx.audit(user.id, "view_supervisor", None, f"{len(context['rows'])} shown", utcnow())
    return aiohttp_jinja2.render_template(
        "supervisor.html", request, await base_context(request, **context)
    )


@routes.get("/dashboard/fragments/supervisor")
@require_role(*SUPERVISORS)
async def supervisor_fragment(request: web.Request) -> web.StreamResponse:
    context = await supervisor_context(request)
    return aiohttp_jinja2.render_template(
        "_supervisor.html", request, await base_context(request, **context)
    )


@routes.get("/dashboard/supervisor/stats.json")
@require_role(*SUPERVISORS)
async def supervisor_stats(request: web.Request) -> web.StreamResponse:
    where = await access.in_scope(request.app[STORE], user_of(request))
    return web.json_response(await reports.shift_stats(request.app[STORE], utcnow(), where))


@routes.post("/dashboard/conversations/{cid}/reassign")
@require_role(*SUPERVISORS)
@back_to("/dashboard/supervisor")
async def reassign(request: web.Request) -> web.StreamResponse:
    cid = conversation_id(request)
    target = await form_field(request, "to", 12)
    if not target.isdigit():
        raise ValueError("to must be an advocate's id")
    supervisor = user_of(request)
    store = request.app[STORE]
    await access.check_target(store, cid, int(target))
    await handoff.reassign(store, cid, supervisor, int(target), utcnow(), request.app[EVENTS])
    for kind, data in await alarms.after_reassign(store, cid, supervisor, int(target)):
        publish(request, kind, **data)
    return done(request, "/dashboard/supervisor")


@routes.get("/dashboard/flow", name="flow")
@require_role(*ANY_STAFF)
async def flow_page(request: web.Request) -> web.StreamResponse:
    text = diagram.flow_mermaid()
    svg = diagram.render_svg(diagram.parse_mermaid(text))
    return aiohttp_jinja2.render_template(
        "flow.html", request, await base_context(request, mermaid=text, svg=svg)
    )

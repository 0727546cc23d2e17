"""Dashboard pages and JSON: login, queue, conversation, supervisor, flow diagram, training.

Server-rendered through aiohttp-jinja2 (autoescape on); the small scripts in static/ only
fetch fragments from these same handlers when a WebSocket event says something changed.
"""

from __future__ import annotations

import secrets
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot import alarms, handoff, queue, vocabulary
from bot.dashboard import accounts, diagram
from bot.dashboard.security import (
    ANY_STAFF,
    SUPERVISORS,
    TAKERS,
    USER,
    csrf_token,
    current_user,
    require_role,
    start_session,
    user_of,
)
from bot.events import Event
from bot.keys import ENGINE, EVENTS, SETTINGS, STORE
from bot.store.base import ENDED_STATES, Conflict, Conversation, NotFound, Tx, User
from bot.triage import DANGER

routes = web.RouteTableDef()
THROTTLE = web.AppKey("dashboard_throttle", accounts.LoginThrottle)

PRESENCE = ("available", "away", "offline")
MAX_CAPACITY = 10
MAX_NOTE = 4000
SHIFT_HOURS = 12
BUCKET_MINUTES = 5
TRAINING_PREFIX = vocabulary.ROLE_PLAY_PREFIX  # 555-0100..0199 are reserved for fiction
# Screening answers as an advocate reads them, in the order the flow asks.
QUESTION_NAMES = {
    "weapon": "weapon used or threatened",
    "threats_kill": "threatened to kill",
    "might_kill": "thinks they might kill",
    "choked": "ever choked",
    "under_18": "under 18",
    "age": "age",
    "free_to_leave": "free to leave",
    "id_held": "ID or papers held",
    "debt": "owes a debt",
    "minor_sex": "traded sex",
}


def readable_answers(answers: dict[str, Any]) -> list[tuple[str, str]]:
    order = list(QUESTION_NAMES)
    known = sorted((k for k in answers if k in QUESTION_NAMES), key=order.index)
    rest = sorted(k for k in answers if k not in QUESTION_NAMES)
    return [(QUESTION_NAMES.get(k, k.replace("_", " ")), str(answers[k])) for k in known + rest]


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- helpers ----------------------------------------------------------------------------


async def flash(request: web.Request, text: str) -> None:
    session = await get_session(request)
    session["flash"] = text[:300]


async def base_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    session = await get_session(request)
    message = session.pop("flash", None)
    user = request.get(USER)
    context: dict[str, Any] = {
        "csrf": await csrf_token(request),
        "user": user,
        "flash": message,
        "org": request.app[SETTINGS].org_name,
        "alarms": await standing_alarms(request, user) if user is not None else [],
    }
    context.update(extra)
    return context


async def standing_alarms(request: web.Request, user: User) -> list[dict[str, Any]]:
    """Alarms that still stand, drawn on every page load so a reload or a late sign-in
    never hides one: the same records the live alarms came from (bot.alarms)."""
    return await alarms.standing(request.app[STORE], user, utcnow(), request.app[SETTINGS])


def ctx_user(request: web.Request) -> User:
    return user_of(request)


def wait_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value else 0


def conversation_id(request: web.Request) -> int:
    raw = request.match_info.get("cid", "")
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound(text="no such conversation")
    return int(raw)


async def form_field(request: web.Request, name: str, limit: int = 200) -> str:
    form = await request.post()
    value = form.get(name, "")
    if not isinstance(value, str):
        raise web.HTTPBadRequest(text=f"{name} must be text")
    value = value.strip()
    if len(value) > limit:
        raise web.HTTPBadRequest(text=f"{name} is longer than {limit} characters")
    return value


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def done(request: web.Request, location: str, **data: Any) -> web.StreamResponse:
    """A form POST answers with a redirect; the same POST from fetch() gets JSON."""
    if wants_json(request):
        return web.json_response({"ok": True, **data})
    raise web.HTTPSeeOther(location)


async def refuse(request: web.Request, status: int, text: str, back: str) -> web.StreamResponse:
    """A refused action: JSON for fetch(), else a flash message and back to the page."""
    if wants_json(request):
        return web.json_response({"ok": False, "error": text}, status=status)
    await flash(request, text)
    raise web.HTTPSeeOther(back)


def may_view(user: User, conv: Conversation) -> bool:
    if user.role in ("supervisor", "admin"):
        return True
    return conv.advocate_id == user.id or conv.transfer_to == user.id or conv.state == "queued"


async def load_viewable(request: web.Request, tx: Tx, user: User) -> Conversation:
    try:
        conv = await tx.get_conversation(conversation_id(request))
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    if not may_view(user, conv):
        raise web.HTTPForbidden(text="that conversation is held by someone else")
    return conv


@cache
def canned(language: str) -> list[dict[str, str]]:
    """Canned responses for a language (bot/dashboard/canned/<lang>.toml), English fallback."""
    name = f"{language}.toml" if language in ("en", "es") else "en.toml"
    text = resources.files("bot.dashboard").joinpath("canned", name).read_text("utf-8")
    items = tomllib.loads(text).get("response", [])
    return [{"id": str(i["id"]), "title": str(i["title"]), "text": str(i["text"])} for i in items]


def publish(request: web.Request, kind: str, **data: Any) -> None:
    request.app[EVENTS].publish(Event(kind, data))  # every process's screens


# -- sign in / out ----------------------------------------------------------------------


@routes.get("/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if await current_user(request) is not None:
        raise web.HTTPSeeOther("/dashboard/queue")
    return aiohttp_jinja2.render_template("login.html", request, await base_context(request))


def client_address(request: web.Request) -> str:
    """The browser's address for login throttling. Behind a platform's router every request
    comes from the router: its X-Forwarded-For hop (the last one, which the router itself
    appended) names the browser. Name-based throttling does not depend on this."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    return hops[-1] if hops else (request.remote or "unknown")


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    throttle = request.app[THROTTLE]
    now = utcnow()
    address = client_address(request)
    wait = throttle.retry_after(name, address, now)
    if wait > 0:
        context = await base_context(request, error="Too many attempts. Try again shortly.")
        response = aiohttp_jinja2.render_template("login.html", request, context, status=429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = await accounts.authenticate(request.app[STORE], name, password)
    if user is None:
        throttle.failed(name, address, now)
        context = await base_context(request, error="Wrong name or password.")
        return aiohttp_jinja2.render_template("login.html", request, context, status=401)
    throttle.succeeded(name, address)
    await start_session(request, user)
    async with request.app[STORE].transaction() as tx:
        fresh = await tx.get_user(user.id)
        if fresh.presence == "offline":  # signing in is coming on shift
            fresh.presence = "available"
            await tx.save_user(fresh)
        await tx.audit(user.id, "login", None, "", now)
    publish(request, "presence", user_id=user.id)
    raise web.HTTPSeeOther("/dashboard/queue")


@routes.post("/logout", name="logout")
@require_role(*ANY_STAFF)
async def logout(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    # Nobody stays held by someone who has gone: they go back to the queue in their place.
    await handoff.sign_out(request.app[STORE], user, utcnow(), request.app[EVENTS])
    async with request.app[STORE].transaction() as tx:
        fresh = await tx.get_user(user.id)
        fresh.presence = "offline"  # no hand-overs to someone who has left
        fresh.session_epoch += 1  # every copy of this session's cookie stops working
        await tx.save_user(fresh)
        await tx.audit(user.id, "logout", None, "", utcnow())
    publish(request, "presence", user_id=user.id)
    session = await get_session(request)
    session.invalidate()
    raise web.HTTPSeeOther("/login")


@routes.get("/dashboard")
@require_role(*ANY_STAFF)
async def dashboard_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/dashboard/queue")


# -- queue ------------------------------------------------------------------------------


async def queue_context(request: web.Request, user: User) -> dict[str, Any]:
    now = utcnow()
    store = request.app[STORE]
    entries = await queue.snapshot(store, now, request.app[SETTINGS])
    async with store.transaction() as tx:
        held = await tx.list_conversations(states=list(queue.HELD_STATES))
        mine: list[dict[str, Any]] = []
        offers: list[dict[str, Any]] = []
        for conv in held:
            if conv.advocate_id == user.id or conv.transfer_to == user.id:
                texter = await tx.get_texter(conv.texter_id)
                row = {
                    "conv": conv,
                    "alias": texter.alias,
                    "masked": vocabulary.mask_number(texter.phone),
                }
                (offers if conv.transfer_to == user.id else mine).append(row)
        fresh = await tx.get_user(user.id)
    rows = [
        {
            "entry": e,
            "conv": e.conversation,
            "since": epoch(e.conversation.queued_at),
            "wait": wait_text(e.waiting_s),
            "answers": readable_answers(e.conversation.answers),
        }
        for e in entries
    ]
    return {
        "rows": rows,
        "mine": mine,
        "offers": offers,
        "me": fresh,
        "held_count": len(mine),
    }


@routes.get("/dashboard/queue", name="queue")
@require_role(*ANY_STAFF)
async def queue_page(request: web.Request) -> web.StreamResponse:
    user = ctx_user(request)
    context = await queue_context(request, user)
    async with request.app[STORE].transaction() as tx:
        await tx.audit(user.id, "view_queue", None, f"{len(context['rows'])} waiting", utcnow())
    return aiohttp_jinja2.render_template(
        "queue.html", request, await base_context(request, **context, presences=PRESENCE)
    )


@routes.get("/dashboard/fragments/queue")
@require_role(*ANY_STAFF)
async def queue_fragment(request: web.Request) -> web.StreamResponse:
    user = ctx_user(request)
    context = await queue_context(request, user)
    return aiohttp_jinja2.render_template(
        "_queue.html", request, await base_context(request, **context)
    )


@routes.get("/dashboard/queue.json")
@require_role(*ANY_STAFF)
async def queue_json(request: web.Request) -> web.StreamResponse:
    entries = await queue.snapshot(request.app[STORE], utcnow(), request.app[SETTINGS])
    return web.json_response(
        [
            {
                "conversation_id": e.conversation.id,
                "alias": e.texter_alias,
                "masked": e.masked,
                "priority": e.priority,
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
async def take_next(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    try:
        conv = await handoff.take_next(
            request.app[STORE], user, utcnow(), request.app[SETTINGS], request.app[EVENTS]
        )
    except Conflict as exc:
        return await refuse(request, 409, str(exc), "/dashboard/queue")
    if conv is None:
        return await refuse(request, 409, "Nobody is waiting.", "/dashboard/queue")
    return done(request, f"/dashboard/conversations/{conv.id}", conversation_id=conv.id)


@routes.post("/dashboard/presence")
@require_role(*ANY_STAFF)
async def set_presence(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    presence = await form_field(request, "presence", 20)
    capacity_raw = await form_field(request, "capacity", 3)
    if presence not in PRESENCE:
        raise web.HTTPBadRequest(text=f"presence must be one of {', '.join(PRESENCE)}")
    if not capacity_raw.isdigit() or not 1 <= int(capacity_raw) <= MAX_CAPACITY:
        raise web.HTTPBadRequest(text=f"capacity must be a whole number from 1 to {MAX_CAPACITY}")
    async with request.app[STORE].transaction() as tx:
        fresh = await tx.get_user(user.id)
        fresh.presence, fresh.capacity = presence, int(capacity_raw)
        await tx.save_user(fresh)
        await tx.audit(user.id, "presence", None, f"{presence} capacity {capacity_raw}", utcnow())
    publish(request, "presence", user_id=user.id)
    return done(request, "/dashboard/queue")


# -- one conversation -------------------------------------------------------------------


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


@routes.get("/dashboard/conversations/{cid}", name="conversation")
@require_role(*ANY_STAFF)
async def conversation_page(request: web.Request) -> web.StreamResponse:
    user = ctx_user(request)
    async with request.app[STORE].transaction() as tx:
        conv = await load_viewable(request, tx, user)
        texter = await tx.get_texter(conv.texter_id)
        transcript = await transcript_context(tx, conv)
        notes = []
        for note in await tx.list_notes(conv.id):
            try:
                author = (await tx.get_user(note.user_id)).name
            except NotFound:
                author = "former user"
            notes.append({"note": note, "author": author})
        colleagues = [
            u
            for u in await tx.list_users()
            if u.active and u.id != user.id and u.role in ("advocate", "supervisor")
        ]
        holder = None
        if conv.advocate_id is not None:
            try:
                holder = (await tx.get_user(conv.advocate_id)).name
            except NotFound:
                holder = None
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
        holds=conv.state in queue.HELD_STATES and conv.advocate_id == user.id,
        offered=conv.transfer_to == user.id,
        ended=conv.state in ENDED_STATES,
        answers=readable_answers(conv.answers),
        training=queue.is_role_play(texter),
        **transcript,
    )
    return aiohttp_jinja2.render_template("conversation.html", request, context)


@routes.get("/dashboard/conversations/{cid}/transcript")
@require_role(*ANY_STAFF)
async def transcript_fragment(request: web.Request) -> web.StreamResponse:
    user = ctx_user(request)
    async with request.app[STORE].transaction() as tx:
        conv = await load_viewable(request, tx, user)
        context = await transcript_context(tx, conv)
        await tx.audit(user.id, "view", conv.id, "live update", utcnow())
    return aiohttp_jinja2.render_template(
        "_transcript.html", request, await base_context(request, conv=conv, **context)
    )


@routes.post("/dashboard/conversations/{cid}/claim")
@require_role(*TAKERS)
async def claim(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    cid = conversation_id(request)
    try:
        await handoff.claim(request.app[STORE], cid, user, utcnow(), request.app[EVENTS])
    except Conflict as exc:
        return await refuse(request, 409, str(exc), "/dashboard/queue")
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    return done(request, f"/dashboard/conversations/{cid}", conversation_id=cid)


@routes.post("/dashboard/conversations/{cid}/reply")
@require_role(*TAKERS)
async def reply(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    cid = conversation_id(request)
    body = await form_field(request, "body", 1600)
    back = f"/dashboard/conversations/{cid}"
    try:
        message = await request.app[ENGINE].send_from_advocate(cid, user, body)
    except ValueError as exc:
        return await refuse(request, 400, str(exc), back)
    except Conflict as exc:
        return await refuse(request, 409, str(exc), back)
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    return done(request, back, message_id=message.id)


@routes.post("/dashboard/conversations/{cid}/notes")
@require_role(*ANY_STAFF)
async def add_note(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    body = await form_field(request, "body", MAX_NOTE)
    cid = conversation_id(request)
    back = f"/dashboard/conversations/{cid}"
    if not body:
        return await refuse(request, 400, "The note is empty.", back)
    async with request.app[STORE].transaction() as tx:
        conv = await load_viewable(request, tx, user)
        note = await tx.add_note(conv.id, user.id, body, utcnow())
        await tx.audit(user.id, "note", conv.id, f"note {note.id}", utcnow())
    return done(request, back, note_id=note.id)


@routes.post("/dashboard/conversations/{cid}/transfer")
@require_role(*TAKERS)
async def transfer(request: web.Request) -> web.StreamResponse:
    """To another advocate (who must accept) or, with to=queue, back to the queue."""
    user = user_of(request)
    cid = conversation_id(request)
    target = await form_field(request, "to", 40)
    back = f"/dashboard/conversations/{cid}"
    store, events = request.app[STORE], request.app[EVENTS]
    try:
        if target == "queue":
            await handoff.release(store, cid, user, utcnow(), events)
        elif target.startswith("team:") and target[5:] in queue.TEAMS:
            await handoff.release(store, cid, user, utcnow(), events, team=target[5:])
        elif target.isdigit():
            await handoff.offer_transfer(store, cid, user, int(target), utcnow(), events)
        else:
            raise web.HTTPBadRequest(text="to must be an advocate's id, 'queue' or a team")
    except Conflict as exc:
        return await refuse(request, 409, str(exc), back)
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation or advocate") from None
    return done(request, "/dashboard/queue")


@routes.post("/dashboard/conversations/{cid}/accept")
@require_role(*TAKERS)
async def accept(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    cid = conversation_id(request)
    try:
        await handoff.accept_transfer(request.app[STORE], cid, user, utcnow(), request.app[EVENTS])
    except Conflict as exc:
        return await refuse(request, 409, str(exc), "/dashboard/queue")
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    return done(request, f"/dashboard/conversations/{cid}", conversation_id=cid)


@routes.post("/dashboard/conversations/{cid}/decline")
@require_role(*TAKERS)
async def decline(request: web.Request) -> web.StreamResponse:
    """Say no to a transfer offer: the texter stays with the advocate who offered it."""
    user = user_of(request)
    cid = conversation_id(request)
    try:
        await handoff.decline_transfer(request.app[STORE], cid, user, utcnow(), request.app[EVENTS])
    except Conflict as exc:
        return await refuse(request, 409, str(exc), "/dashboard/queue")
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    return done(request, "/dashboard/queue")


@routes.post("/dashboard/conversations/{cid}/close")
@require_role(*TAKERS)
async def close(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    cid = conversation_id(request)
    disposition = await form_field(request, "disposition", 40)
    back = f"/dashboard/conversations/{cid}"
    try:
        await handoff.close(
            request.app[STORE], cid, user, disposition, utcnow(), request.app[EVENTS]
        )
    except ValueError as exc:
        return await refuse(request, 400, str(exc), back)
    except Conflict as exc:
        return await refuse(request, 409, str(exc), back)
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    return done(request, "/dashboard/queue")


@routes.post("/dashboard/conversations/{cid}/reassign")
@require_role(*SUPERVISORS)
async def reassign(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    cid = conversation_id(request)
    target = await form_field(request, "to", 12)
    if not target.isdigit():
        raise web.HTTPBadRequest(text="to must be an advocate's id")
    try:
        await handoff.reassign(
            request.app[STORE], cid, user, int(target), utcnow(), request.app[EVENTS]
        )
    except Conflict as exc:
        return await refuse(request, 409, str(exc), "/dashboard/supervisor")
    except NotFound:
        raise web.HTTPNotFound(text="no such conversation or advocate") from None
    return done(request, "/dashboard/supervisor")


# -- supervisor -------------------------------------------------------------------------


async def supervisor_context(request: web.Request) -> dict[str, Any]:
    now = utcnow()
    settings = request.app[SETTINGS]
    async with request.app[STORE].transaction() as tx:
        convs = await tx.list_conversations(limit=300)
        users = await tx.list_users()
        names = {u.id: u.name for u in users}
        load = Counter(c.advocate_id for c in convs if c.state in queue.HELD_STATES)
        rows: list[dict[str, Any]] = []
        for conv in convs:
            if (
                conv.state in ENDED_STATES
                and conv.closed_at
                and now - conv.closed_at > timedelta(hours=SHIFT_HOURS)
            ):
                continue
            texter = await tx.get_texter(conv.texter_id)
            since = conv.claimed_at if conv.state == "with_advocate" else conv.queued_at
            rows.append(
                {
                    "conv": conv,
                    "alias": texter.alias,
                    "masked": vocabulary.mask_number(texter.phone),
                    "holder": names.get(conv.advocate_id or -1, ""),
                    "offered": names.get(conv.transfer_to or -1, ""),
                    "priority": queue.effective_priority(conv, now, settings)
                    if conv.state == "queued"
                    else conv.priority,
                    "since": epoch(since or conv.updated_at),
                    "wait": wait_text((now - (since or conv.updated_at or now)).total_seconds()),
                }
            )
    staff = [
        {"u": u, "held": load.get(u.id, 0)}
        for u in users
        if u.active and u.role in ("advocate", "supervisor")
    ]
    return {
        "rows": rows,
        "staff": staff,
        "assignable": [s["u"] for s in staff],
        "waiting": sum(1 for r in rows if r["conv"].state == "queued"),
    }


@routes.get("/dashboard/supervisor", name="supervisor")
@require_role(*SUPERVISORS)
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    user = ctx_user(request)
    context = await supervisor_context(request)
    async with request.app[STORE].transaction() as tx:
        await tx.audit(user.id, "view_supervisor", None, f"{len(context['rows'])} shown", utcnow())
    return aiohttp_jinja2.render_template(
        "supervisor.html", request, await base_context(request, **context)
    )


@routes.get("/dashboard/fragments/supervisor")
@require_role(*SUPERVISORS)
async def supervisor_fragment(request: web.Request) -> web.StreamResponse:
    ctx_user(request)
    context = await supervisor_context(request)
    return aiohttp_jinja2.render_template(
        "_supervisor.html", request, await base_context(request, **context)
    )


def shift_series(
    convs: list[Conversation],
    now: datetime,
    hours: int = SHIFT_HOURS,
    step_min: int = BUCKET_MINUTES,
) -> dict[str, Any]:
    """Texters waiting in each bucket and mean wait by priority over the shift, rebuilt
    from the stored queued_at / claimed_at times, so every web process draws the same
    picture."""
    step = timedelta(minutes=step_min)
    start = now - timedelta(hours=hours)
    start = start - timedelta(seconds=start.timestamp() % step.total_seconds())
    times: list[datetime] = []
    t = start
    while t <= now:
        times.append(t)
        t += step
    times.append(now)
    length = {p: [0] * len(times) for p in (1, 2, 3, 4)}
    wait_sum = {p: [0.0] * len(times) for p in (1, 2, 3, 4)}
    wait_n = {p: [0] * len(times) for p in (1, 2, 3, 4)}
    for conv in convs:
        if conv.queued_at is None:
            continue
        p = min(4, max(1, conv.priority))
        left = conv.claimed_at if conv.claimed_at and conv.claimed_at >= conv.queued_at else None
        if left is None and conv.state != "queued":
            left = conv.closed_at or conv.updated_at
        end = left or now
        for i, moment in enumerate(times):
            # Waiting at any time in this bucket: a two-minute wait between samples still
            # shows (an instant sample would miss it).
            if conv.queued_at < moment + step and (end > moment or end == now):
                length[p][i] += 1
        if left is not None and conv.claimed_at is not None and left >= start:
            i = min(len(times) - 1, int((left - start) / step))
            wait_sum[p][i] += (left - conv.queued_at).total_seconds() / 60
            wait_n[p][i] += 1
    waits: dict[int, list[float | None]] = {
        p: [
            round(wait_sum[p][i] / wait_n[p][i], 2) if wait_n[p][i] else None
            for i in range(len(times))
        ]
        for p in (1, 2, 3, 4)
    }
    return {
        "t": [int(x.timestamp()) for x in times],
        "queue": {str(p): length[p] for p in (1, 2, 3, 4)},
        "wait_minutes": {str(p): waits[p] for p in (1, 2, 3, 4)},
    }


@routes.get("/dashboard/supervisor/stats.json")
@require_role(*SUPERVISORS)
async def supervisor_stats(request: web.Request) -> web.StreamResponse:
    async with request.app[STORE].transaction() as tx:
        convs = await tx.list_conversations(limit=2000)
    return web.json_response(shift_series(convs, utcnow()))


@routes.get("/dashboard/flow", name="flow")
@require_role(*ANY_STAFF)
async def flow_page(request: web.Request) -> web.StreamResponse:
    ctx_user(request)
    text = diagram.flow_mermaid()
    svg = diagram.render_svg(diagram.parse_mermaid(text))
    return aiohttp_jinja2.render_template(
        "flow.html", request, await base_context(request, mermaid=text, svg=svg)
    )


# -- training ---------------------------------------------------------------------------


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


@routes.get("/dashboard/training", name="training")
@require_role(*SUPERVISORS)
async def training_page(request: web.Request) -> web.StreamResponse:
    ctx_user(request)
    number = await training_number(request)
    context = await base_context(
        request,
        number=number,
        masked=vocabulary.mask_number(number),
        **await _training_ctx(request),
    )
    return aiohttp_jinja2.render_template("training.html", request, context)


async def _training_ctx(request: web.Request) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async with request.app[STORE].transaction() as tx:
        for cid in await training_conversations(request):
            try:
                conv = await tx.get_conversation(cid)
            except NotFound:
                continue
            for row in (await transcript_context(tx, conv))["messages"]:
                rows.append(row)
    return {"messages": rows}


@routes.get("/dashboard/training/transcript")
@require_role(*SUPERVISORS)
async def training_transcript(request: web.Request) -> web.StreamResponse:
    ctx_user(request)
    return aiohttp_jinja2.render_template(
        "_training.html", request, await base_context(request, **await _training_ctx(request))
    )


@routes.post("/dashboard/training/send")
@require_role(*SUPERVISORS)
async def training_send(request: web.Request) -> web.StreamResponse:
    """The role-play texter's message goes through the real engine, as an inbound SMS from
    a fictional number, so it meets the real flow, triage and queue."""
    from bot.sms.webhook import InboundSms  # the transport's record; imported late on purpose

    user = user_of(request)
    body = await form_field(request, "body", 1600)
    if not body:
        return await refuse(request, 400, "Type a message first.", "/dashboard/training")
    number = await training_number(request)
    settings = request.app[SETTINGS]
    sms = InboundSms(
        message_sid="SMtraining" + secrets.token_hex(12),
        from_=number,
        to=settings.twilio_from_number or "+15550000000",
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

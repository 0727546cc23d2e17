"""Signing in and out, and presence (available, away, offline; how many texters at once)."""

from __future__ import annotations

import ipaddress

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot import handoff
from bot.dashboard import accounts
from bot.dashboard.security import ANY_STAFF, current_user, require_role, start_session, user_of
from bot.dashboard.views.common import (
    back_to,
    base_context,
    done,
    form_field,
    publish,
    utcnow,
)
from bot.keys import EVENTS, SETTINGS, STORE
from bot.settings import IPNetwork

routes = web.RouteTableDef()
THROTTLE = web.AppKey("dashboard_throttle", accounts.LoginThrottle)

PRESENCE = ("available", "away", "offline")
MAX_CAPACITY = 10


@routes.get("/login", name="login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if await current_user(request) is not None:
        raise web.HTTPSeeOther("/dashboard/queue")
    return aiohttp_jinja2.render_template("login.html", request, await base_context(request))


def client_address(request: web.Request) -> str:
    """The browser's address for login throttling. X-Forwarded-For is believed only when the
    connection comes from a proxy named in HAVEN_TRUSTED_PROXIES: then, reading its hops from
    the right, the first one that is not itself a trusted proxy names the browser (a client
    can write anything on the left). Served directly, anyone could invent the header, so it
    is ignored and the peer's own address counts."""
    peer = request.remote or "unknown"
    trusted = request.app[SETTINGS].trusted_networks
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


def _is_trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # not an address at all: never a proxy we trust
    return any(ip in network for network in trusted)


async def _refused(request: web.Request, wait: float, message: str) -> web.StreamResponse:
    context = await base_context(request, error=message)
    response = aiohttp_jinja2.render_template("login.html", request, context, status=429)
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    code = str(form.get("code", ""))[:16]  # the authenticator code, for enrolled accounts
    throttle, store = request.app[THROTTLE], request.app[STORE]
    now = utcnow()
    address = client_address(request)
    # Counted here, in the database, before the password is checked: however many guesses
    # arrive at once, at any number of processes, at most the limit are checked.
    wait = await throttle.begin(store, name, address, now)
    if wait > 0:
        return await _refused(request, wait, "Too many attempts. Try again shortly.")
    try:
        user = await accounts.authenticate(store, name, password, code)
    except accounts.HasherBusy:
        await throttle.failed(store, name, address, now)
        return await _refused(request, 5, "Too many sign-ins at once. Try again shortly.")
    if user is None:
        await throttle.failed(store, name, address, now)
        context = await base_context(request, error="Wrong name, password or code.")
        return aiohttp_jinja2.render_template("login.html", request, context, status=401)
    await throttle.succeeded(store, name, address, now)
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


@routes.post("/dashboard/presence")
@require_role(*ANY_STAFF)
@back_to("/dashboard/queue")
async def set_presence(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    presence = await form_field(request, "presence", 20)
    capacity_raw = await form_field(request, "capacity", 3)
    if presence not in PRESENCE:
        raise ValueError(f"presence must be one of {', '.join(PRESENCE)}")
    if not capacity_raw.isdigit() or not 1 <= int(capacity_raw) <= MAX_CAPACITY:
        raise ValueError(f"capacity must be a whole number from 1 to {MAX_CAPACITY}")
    async with request.app[STORE].transaction() as tx:
        fresh = await tx.get_user(user.id)
        fresh.presence, fresh.capacity = presence, int(capacity_raw)
        await tx.save_user(fresh)
        await tx.audit(user.id, "presence", None, f"{presence} capacity {capacity_raw}", utcnow())
    publish(request, "presence", user_id=user.id)
    return done(request, "/dashboard/queue")

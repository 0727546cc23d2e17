"""The dashboard's WebSocket: forwards events (ids only, never text) to each screen that may
see them. Pages then fetch what they need over authenticated HTTP, so one access rule (the
views') decides what anyone reads."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot import alarms
from bot.dashboard.security import ANY_STAFF, current_user, require_role, user_of
from bot.events import Event
from bot.keys import EVENTS, STORE
from bot.store.base import NotFound, Store, User

HEARTBEAT = 25.0
RECHECK_EVERY = 60.0  # seconds between re-reads of the account (deactivation ends the socket)
# Kinds every signed-in screen receives: they carry no conversation the advocate may not see.
PUBLIC_KINDS = frozenset({"queue", "presence"})
CONVERSATION_KINDS = frozenset({"message", "status", "conversation"})


async def may_see(store: Store, user: User, event: Event) -> bool:
    """Advocates see the queue, alarms for unclaimed texters, and what happens in
    conversations they hold or are offered; supervisors and admins see everything."""
    if user.role in ("supervisor", "admin"):
        return True
    if event.kind in PUBLIC_KINDS:
        return True
    if event.kind == "alarm":
        if event.data.get("reason") == "p1_unclaimed":
            return True
        return event.data.get("advocate_id") == user.id
    if event.kind == "transfer":
        return event.data.get("advocate_id") == user.id
    if event.kind in CONVERSATION_KINDS:
        if event.data.get("advocate_id") == user.id:
            return True  # e.g. the texter deleted it: the row is gone, the holder is told
        cid = event.data.get("conversation_id")
        if not isinstance(cid, int):
            return False
        try:
            async with store.transaction() as tx:
                conv = await tx.get_conversation(cid)
        except NotFound:
            return False
        return user.id in (conv.advocate_id, conv.transfer_to)
    return False


def same_origin(request: web.Request) -> bool:
    """Browsers always send Origin on a WebSocket handshake; refuse other sites' pages
    (cross-site WebSocket hijacking), whatever cookies they manage to carry."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser: the session cookie is still required
    return urlsplit(origin).netloc == request.host


@require_role(*ANY_STAFF)
async def websocket(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    user = user_of(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT)
    await ws.prepare(request)
    store = request.app[STORE]
    loop = asyncio.get_running_loop()
    async with request.app[EVENTS].subscribe() as events:

        async def forward() -> None:
            checked = loop.time()
            while not ws.closed:
                try:
                    event = await asyncio.wait_for(events.get(), RECHECK_EVERY)
                except TimeoutError:
                    event = None
                # Store look-ups are shielded: this task is cancelled when the socket
                # closes, and a transaction must never be abandoned half-way.
                if loop.time() - checked >= RECHECK_EVERY:
                    checked = loop.time()
                    if await asyncio.shield(current_user(request)) is None:
                        await ws.close(code=4401, message=b"signed out")
                        return
                if event is not None and await asyncio.shield(may_see(store, user, event)):
                    if event.kind == "alarm":  # events carry ids; the screen gets words
                        event = await asyncio.shield(alarms.for_screen(store, event))
                    await ws.send_str(event.to_json())

        sender = asyncio.create_task(forward())
        try:
            async for msg in ws:  # the page sends nothing but pings; read until it closes
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await sender
    return ws

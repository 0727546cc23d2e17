"""The dashboard's WebSocket: forwards events to each screen that may see them, by the same
policy as the pages (bot.dashboard.access). Pages then fetch what they need over
authenticated HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot import alarms
from bot.dashboard.access import may_see
from bot.dashboard.security import ANY_STAFF, current_user, require_role, user_of
from bot.keys import EVENTS, STORE

HEARTBEAT = 25.0
RECHECK_EVERY = 60.0  # seconds between re-reads of the account (deactivation ends the socket)


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

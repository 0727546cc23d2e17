"""The dashboard's WebSocket: forwards events to each screen that may see them, by the same
policy as the pages (bot.dashboard.access). Pages then fetch what they need over
authenticated HTTP.

One dispatcher per process (`Screens`) takes each event once, judges it for every open
screen from one store read (access.who_sees), and puts the text on each screen's own
outbox; each socket's writer sends from its outbox. A screen that falls SCREEN_BACKLOG
events behind loses its backlog for one `resync` message (the page re-reads what it shows):
events are never dropped silently, and a slow browser never holds up the others."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import structlog
from aiohttp import WSMsgType, web

from bot import alarms
from bot.dashboard.access import who_sees_each
from bot.dashboard.security import ANY_STAFF, current_user, require_role, user_of
from bot.events import RESYNC, Event, put_or_resync
from bot.keys import EVENTS, STORE
from bot.store.base import User

HEARTBEAT = 25.0
RECHECK_EVERY = 60.0  # seconds between re-reads of the account (deactivation ends the socket)
BATCH = 200  # events judged together (one store read) when they pile up
SCREEN_BACKLOG = 1000  # texts waiting for one socket before it is told to resync
RESYNC_TEXT = Event(RESYNC).to_json()
SCREENS: web.AppKey[Screens] = web.AppKey("screens")
log = structlog.get_logger(__name__)


class Screen:
    """One open socket: who is signed in on it and what waits to be sent to it."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.outbox: asyncio.Queue[str] = asyncio.Queue(SCREEN_BACKLOG)
        self.resyncs = 0

    def put(self, text: str) -> None:
        if put_or_resync(self.outbox, text, RESYNC_TEXT):  # too slow: it re-reads instead
            self.resyncs += 1


class Screens:
    """Every open dashboard socket of this process, fed by one task while any is open."""

    def __init__(self, app: web.Application) -> None:
        self._app = app  # its STORE and EVENTS are there once it has started
        self._screens: set[Screen] = set()
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def open(self, user: User) -> AsyncIterator[Screen]:
        screen = Screen(user)
        self._screens.add(screen)
        if self._task is None or self._task.done():
            ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(ready))
            await ready  # subscribed: nothing published from here on is missed
        try:
            yield screen
        finally:
            self._screens.discard(screen)
            if not self._screens and self._task is not None:
                task, self._task = self._task, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self, ready: asyncio.Future[None]) -> None:
        async with self._app[EVENTS].subscribe() as inbox:
            ready.set_result(None)
            while True:
                batch = [await inbox.get()]
                while not inbox.empty() and len(batch) < BATCH:  # what piled up meanwhile
                    batch.append(inbox.get_nowait())
                try:
                    # Shielded: a store read must never be abandoned half-way.
                    await asyncio.shield(self.deliver(batch))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Judging failed (the store is down?): nobody may miss it unseen.
                    log.exception("dashboard events not judged; screens resync")
                    for screen in list(self._screens):
                        screen.put(RESYNC_TEXT)

    async def deliver(self, batch: list[Event]) -> None:
        """Judge a batch of events for every open screen (one store read), in order."""
        screens = list(self._screens)
        if not screens:
            return
        events = [e for e in batch if e.kind != RESYNC]
        allowed = await who_sees_each(self._app[STORE], [s.user for s in screens], events)
        verdicts = iter(allowed)
        for event in batch:
            if event.kind == RESYNC:  # this process's inbox overflowed: everyone re-reads
                for screen in screens:
                    screen.put(RESYNC_TEXT)
                continue
            who = next(verdicts)
            if not any(who):
                continue
            if event.kind == "alarm":  # events carry ids; the screen gets words (once)
                event = await alarms.for_screen(self._app[STORE], event)
            text = event.to_json()
            for screen, ok in zip(screens, who, strict=True):
                if ok:
                    screen.put(text)


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
    loop = asyncio.get_running_loop()
    async with request.app[SCREENS].open(user) as screen:

        async def forward() -> None:
            checked = loop.time()
            while not ws.closed:
                try:
                    text: str | None = await asyncio.wait_for(screen.outbox.get(), RECHECK_EVERY)
                except TimeoutError:
                    text = None
                if loop.time() - checked >= RECHECK_EVERY:
                    checked = loop.time()
                    # Shielded: this task is cancelled when the socket closes, and a
                    # transaction must never be abandoned half-way.
                    if await asyncio.shield(current_user(request)) is None:
                        await ws.close(code=4401, message=b"signed out")
                        return
                if text is not None:
                    await ws.send_str(text)

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

"""What every dashboard page shares: the clock, the page context (flash, CSRF, standing
alarms), form reading, answers to form posts and fetch() alike, and the one place where a
store refusal becomes an HTTP answer."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from bot import alarms, vocabulary
from bot.dashboard.security import USER, csrf_token, is_protected
from bot.events import Event
from bot.keys import EVENTS, SETTINGS, STORE
from bot.store.base import Conflict, NotFound, Tx

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BACK = web.RequestKey[str]("dashboard_back")
DEFAULT_BACK = "/dashboard/queue"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def utcnow() -> datetime:
    """The dashboard's clock (tests move it forward here)."""
    return vocabulary.utcnow()


async def flash(request: web.Request, text: str) -> None:
    session = await get_session(request)
    session["flash"] = text[:300]


async def base_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    session = await get_session(request)
    message = session.pop("flash", None)
    user = request.get(USER)
    standing = []
    if user is not None:
        standing = await alarms.standing(request.app[STORE], user, utcnow(), request.app[SETTINGS])
    context: dict[str, Any] = {
        "csrf": await csrf_token(request),
        "user": user,
        "flash": message,
        "org": request.app[SETTINGS].org_name,
        "alarms": standing,
    }
    context.update(extra)
    return context


def wait_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value else 0


def iso(value: datetime | None) -> str:
    """For <time datetime>: the browser shows it in the advocate's own zone."""
    return value.isoformat(timespec="seconds") if value else ""


def clock(value: datetime | None) -> str:
    """What a page shows before (or without) its script: the UTC time of day."""
    return value.strftime("%H:%M UTC") if value else ""


async def user_name(tx: Tx, user_id: int | None, missing: str = "") -> str:
    if user_id is None:
        return missing
    try:
        return (await tx.get_user(user_id)).name
    except NotFound:
        return missing


def conversation_id(request: web.Request) -> int:
    raw = request.match_info.get("cid", "")
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound("no such conversation")
    return int(raw)


async def form_field(request: web.Request, name: str, limit: int = 200) -> str:
    """One text field of the posted form, stripped; ValueError (so 400) when it is not
    text or too long."""
    form = await request.post()
    value = form.get(name, "")
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def done(request: web.Request, location: str, **data: Any) -> web.StreamResponse:
    """A form POST answers with a redirect; the same POST from fetch() gets JSON."""
    if wants_json(request):
        return web.json_response({"ok": True, **data})
    raise web.HTTPSeeOther(location)


def publish(request: web.Request, kind: str, **data: Any) -> None:
    request.app[EVENTS].publish(Event(kind, data))  # every process's screens


def back_to(path: str) -> Callable[[Handler], Handler]:
    """Where a refused form post returns the browser (with the reason as a flash
    message); "{cid}" is the conversation in the URL."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            request[BACK] = path.format(cid=request.match_info.get("cid", ""))
            return await handler(request)

        return inner

    return wrap


# Which refusal is which answer: a lost race or a state that no longer allows it; a record
# that is not there; bad input.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Conflict, 409),
    (NotFound, 404),
    (ValueError, 400),
)


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Store refusals from any dashboard handler: fetch() gets {"ok": false, "error"} with
    409/404/400; a form post gets the reason as a flash message and a redirect back; a
    page that is not there is a plain 404."""
    if not is_protected(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except (Conflict, NotFound, ValueError) as exc:
        status = next(code for kind, code in STATUS if isinstance(exc, kind))
        text = str(exc) or "not allowed"
        if isinstance(exc, NotFound):  # the store's "no user 7" as an advocate reads it
            text = "no such advocate" if text.startswith("no user") else "no such conversation"
        if wants_json(request):
            return web.json_response({"ok": False, "error": text}, status=status)
        if request.method in UNSAFE and status != 404:
            await flash(request, text)
            raise web.HTTPSeeOther(request.get(BACK, DEFAULT_BACK)) from None
        raise _http(status, text) from None


def _http(status: int, text: str) -> web.HTTPException:
    kinds: dict[int, type[web.HTTPException]] = {
        409: web.HTTPConflict,
        404: web.HTTPNotFound,
        400: web.HTTPBadRequest,
    }
    return kinds[status](text=text)

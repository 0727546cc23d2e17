"""Sessions, CSRF, security headers and role checks for the dashboard."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_session import Session, get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.crypto import Crypto
from bot.keys import SETTINGS, STORE
from bot.store.base import NotFound, User

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

COOKIE_NAME = "haven_session"
SESSION_MAX_AGE = 12 * 3600  # one long shift
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"
# Browser-facing paths. Twilio's webhooks are POSTs too, but they carry a signature instead.
PROTECTED_PREFIXES = ("/login", "/logout", "/dashboard", "/ws")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

USER = web.RequestKey[User]("dashboard_user")


def dashboard_only(*chain: Middleware) -> Middleware:
    """One middleware that runs `chain` (outermost first) for browser-facing paths
    (PROTECTED_PREFIXES: every dashboard route, /static aside) and nothing for the rest:
    Twilio's webhooks, the probes and /static never open a session, check a CSRF token or
    map refusals to pages. Those paths have no session to protect and no page to show; the
    dashboard's paths get exactly the chain they had as separate middlewares."""
    inner = tuple(reversed(chain))

    @web.middleware
    async def dashboard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_protected(request.path):
            return await handler(request)
        for middleware in inner:
            handler = functools.partial(middleware, handler=handler)
        return await handler(request)

    return dashboard


def session_and_csrf(app: web.Application) -> tuple[Middleware, Middleware]:
    """The session middleware (an encrypted cookie) and the CSRF check, in that order; and
    the security headers on every response."""
    settings = app[SETTINGS]
    # The app's Crypto is built at start-up (cleanup_ctx); the session key is derived the
    # same way from the same secret, and is needed now, while middlewares can still be added.
    storage = EncryptedCookieStorage(
        Crypto(settings.secret_key).session_secret().decode(),  # str: a Fernet key as is
        cookie_name=COOKIE_NAME,
        httponly=True,
        samesite="Strict",
        secure=settings.public_url.startswith("https"),
        max_age=SESSION_MAX_AGE,
        path="/",
    )
    app.on_response_prepare.append(_add_security_headers)
    return session_middleware(storage), csrf_middleware


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(PROTECTED_PREFIXES):
        # Pages show texters' words: never keep them in a shared cache or the back button.
        response.headers.setdefault("Cache-Control", "no-store")


def is_protected(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


async def csrf_token(request: web.Request) -> str:
    """This session's CSRF token, made on first use."""
    session = await get_session(request)
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing browser request carries the session's token, in the form field
    `_csrf` or the X-CSRF-Token header; otherwise 403 before the handler runs."""
    if request.method in UNSAFE_METHODS and is_protected(request.path):
        session = await get_session(request)
        expected = session.get("csrf")
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            try:
                form = await request.post()
            except (LookupError, ValueError):  # undecodable bytes, unknown charset
                raise web.HTTPBadRequest(text="the form is not readable text") from None
            value = form.get(CSRF_FIELD, "")
            sent = value if isinstance(value, str) else ""
        if not isinstance(expected, str) or not expected or not sent:
            raise web.HTTPForbidden(text="missing CSRF token")
        if not hmac.compare_digest(expected.encode(), sent.encode()):
            raise web.HTTPForbidden(text="bad CSRF token")
    return await handler(request)


async def start_session(request: web.Request, user: User) -> Session:
    """A fresh session after sign-in (a new cookie and token: no session fixation)."""
    session = await new_session(request)
    session["uid"] = user.id
    session["epoch"] = user.session_epoch
    session["csrf"] = secrets.token_urlsafe(32)
    return session


async def current_user(request: web.Request) -> User | None:
    """The signed-in, still active user, re-read on every request so a role change or a
    deactivation takes effect at once."""
    session = await get_session(request)
    uid = session.get("uid")
    if not isinstance(uid, int):
        return None
    try:
        async with request.app[STORE].transaction() as tx:
            user = await tx.get_user(uid)
    except NotFound:
        session.invalidate()
        return None
    if not user.active or session.get("epoch") != user.session_epoch:
        session.invalidate()  # deactivated, or signed out since this cookie was made
        return None
    return user


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Handler decorator: unauthenticated → 401 (or a redirect to /login for a page
    request); signed in with another role → 403."""
    allowed = frozenset(roles)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            user = await current_user(request)
            if user is None:
                if _wants_html(request):
                    raise web.HTTPSeeOther("/login")
                raise web.HTTPUnauthorized(text="sign in first")
            if user.role not in allowed:
                raise web.HTTPForbidden(text="not allowed for your role")
            request[USER] = user
            return await handler(request)

        inner.roles = allowed  # type: ignore[attr-defined]
        return inner

    return wrap


def user_of(request: web.Request) -> User:
    return request[USER]


ANY_STAFF = ("advocate", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")  # admins run accounts and may watch, not take texters
TAKERS = ("advocate", "supervisor")

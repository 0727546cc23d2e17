"""create_app(settings): routes, middlewares and cleanup_ctx — nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from aiohttp import web

from bot import probes
from bot.crypto import Crypto
from bot.engine import Engine, utcnow
from bot.events import CHANNEL, Events
from bot.keys import CRYPTO, ENGINE, EVENTS, SENDER, SETTINGS, STORE
from bot.logs import get_logger
from bot.rekey import KeyRefused, check_key
from bot.settings import Settings, SettingsError
from bot.sms import handlers
from bot.sms.outbox import OutboxWorker
from bot.sms.sender import make_sender
from bot.store import Store, Tx, open_store

log = get_logger("haven.app")
WORKER = web.AppKey("worker", OutboxWorker)
RETENTION_EVERY = timedelta(hours=1)
# Login-throttle state is kept a day: well past its window and its longest lock-out.
LOGIN_THROTTLE_KEPT = timedelta(days=1)
STARTUP_TIMEOUT = 5.0  # seconds to reach the database at start-up


async def apply_retention(tx: Tx, settings: Settings, now: datetime) -> tuple[int, int]:
    """Retention, hourly in serve and on demand in `purge`: conversations and audit rows
    past their periods, and the login throttle's old counts. Returns the conversations and
    audit rows removed."""
    removed = await tx.purge_before(now - timedelta(days=settings.retention_days))
    audit = await tx.purge_audit_before(now - timedelta(days=settings.audit_retention_days))
    await tx.prune_login_throttle(now - LOGIN_THROTTLE_KEPT)
    return removed, audit


@web.middleware
async def request_context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Bind a request id for every log line of this request; log one line per request
    (path only: query strings and bodies may hold content). Handlers add their own
    fields to that one line with structlog.contextvars.bind_contextvars (the webhook's
    conversation id and reply count) instead of logging a second line."""
    request_id = request.headers.get("X-Request-Id", "")[:64] or os.urandom(8).hex()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )


class StartupError(RuntimeError):
    """Serving cannot start; the message is the one line the operator is shown."""


async def open_checked(settings: Settings, crypto: Crypto) -> Store:
    """Open the store within STARTUP_TIMEOUT and check its schema (applying pending
    migrations outside production); closed again on any failure."""
    store = open_store(settings, crypto)
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            await store.open()
            pending = await store.pending_migrations()
            if pending and settings.production:
                raise StartupError(f"migrations {pending} are pending: run `python -m bot migrate`")
            if pending:
                applied = await store.migrate()
                log.info("migrations_applied", migrations=applied)
            try:
                await check_key(store, settings)
            except KeyRefused as exc:
                raise StartupError(str(exc)) from None
    except BaseException:
        await store.close()
        raise
    return store


async def preflight(settings: Settings) -> None:
    """What `serve` checks before it warms up and listens: the database opens, its schema is
    current (or migrated, outside production), and the port is free. Raises on the first
    problem (see startup_error_line)."""
    store = await open_checked(settings, Crypto(settings.secret_key))
    await store.close()
    with socket.socket() as probe:
        # The same options aiohttp's server uses, so a free port here is free there.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((settings.host, settings.port))


def startup_error_line(exc: BaseException, settings: Settings) -> str:
    """One clear line for an error that stopped start-up (no traceback, no secrets: a
    database URL's password is never repeated)."""
    where = f"the SQLite file {settings.sqlite_path}" if settings.sqlite_path else "PostgreSQL"
    if isinstance(exc, StartupError | SettingsError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"{where} did not answer within {STARTUP_TIMEOUT:.0f} s (check DATABASE_URL)"
    if isinstance(exc, sqlite3.DatabaseError):
        return f"cannot use {where}: {exc} (is it a Haven database, writable by this user?)"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {settings.host}:{settings.port}: the port is in use (PORT)"
    if isinstance(exc, OSError) and not settings.sqlite_path:
        return f"cannot reach PostgreSQL (check DATABASE_URL): {exc.strerror or exc}"
    if type(exc).__module__.startswith("asyncpg"):
        return f"PostgreSQL refused: {type(exc).__name__} (check DATABASE_URL)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename or 'network'})"
    return f"{type(exc).__name__}: {exc}"


async def resources(app: web.Application) -> AsyncIterator[None]:
    """Open the store, check its schema, build the engine; close all on shutdown."""
    settings = app[SETTINGS]
    crypto = Crypto(settings.secret_key)
    store = await open_checked(settings, crypto)
    events = Events()
    sender = make_sender(settings)
    worker = OutboxWorker(store, sender, settings, events)
    app[CRYPTO], app[STORE], app[EVENTS], app[SENDER], app[WORKER] = (
        crypto,
        store,
        events,
        sender,
        worker,
    )
    app[ENGINE] = Engine(settings, store, crypto.lookup_hash, events, worker.wake)
    yield
    await sender.close()
    await store.close()


async def background(app: web.Application) -> AsyncIterator[None]:
    """Outbox, timers, alarms and retention, each claimed so it fires once across processes."""
    stop = asyncio.Event()
    settings, engine, store = app[SETTINGS], app[ENGINE], app[STORE]

    async def ticker() -> None:
        last_retention = utcnow() - RETENTION_EVERY
        while not stop.is_set():
            try:
                now = utcnow()
                await engine.run_timers(now)
                await engine.open_shift(now)
                await engine.check_alarms(now)
                if now - last_retention >= RETENTION_EVERY:
                    async with store.transaction() as tx:
                        removed, audit = await apply_retention(tx, settings, now)
                    last_retention = now
                    log.info(
                        "retention_applied", conversations_removed=removed, audit_removed=audit
                    )
            except Exception:
                log.exception("ticker_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.tick_seconds)

    async def bridge_events() -> None:
        """Dashboard events from other processes (PostgreSQL LISTEN); reconnect if lost."""
        events = app[EVENTS]
        while not stop.is_set():
            listener = store.listen(CHANNEL)
            if listener is None:
                return  # SQLite: one process, nothing to bridge
            events.bridge(lambda payload: store.notify(CHANNEL, payload))
            try:
                async for payload in listener:
                    events.receive_remote(payload)
            except ConnectionError:
                log.warning("event_bridge_reconnecting")
                await asyncio.sleep(1)

    tasks = [
        asyncio.create_task(app[WORKER].run_forever(stop)),
        asyncio.create_task(ticker()),
        asyncio.create_task(bridge_events()),
    ]
    yield
    stop.set()
    tasks[-1].cancel()  # the event bridge waits on its connection, not on `stop`
    await asyncio.gather(*tasks, return_exceptions=True)


async def guarded_metrics(request: web.Request) -> web.StreamResponse:
    """/metrics, behind a bearer token when HAVEN_METRICS_TOKEN is set (label counts say
    something about who texts in)."""
    token = request.app[SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
    return await probes.metrics(request)


def create_app(settings: Settings, *, run_background: bool = True) -> web.Application:
    if not settings.secret_key:
        raise ValueError("settings.secret_key is required (see bot.settings.ensure_secret_key)")
    app = web.Application(middlewares=[request_context], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(resources)
    if run_background:
        app.cleanup_ctx.append(background)
    app.router.add_post("/twilio/sms", handlers.inbound_sms)
    app.router.add_post("/twilio/status", handlers.delivery_status)
    app.router.add_get("/healthz", probes.healthz)
    app.router.add_get("/readyz", probes.readyz)
    app.router.add_get("/metrics", guarded_metrics)
    try:
        from bot.dashboard import setup_dashboard
    except ImportError:  # the dashboard package is optional while it is being built
        pass
    else:
        setup_dashboard(app)
    return app

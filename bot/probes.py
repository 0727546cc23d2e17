"""Operator probes: alive, ready (database reachable, schema current), Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.keys import STORE


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    try:
        await store.ping()
        pending = await store.pending_migrations()
    except Exception as exc:  # any failure to reach the database means not ready
        return web.json_response({"status": "unavailable", "error": type(exc).__name__}, status=503)
    if pending:
        return web.json_response({"status": "migrations_pending", "pending": pending}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

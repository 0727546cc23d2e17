"""The dashboard's middlewares (session, CSRF, refusals, program guard) run for the
dashboard's paths and for nothing else (issue 11: Twilio's webhooks skip them)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.dashboard.security import Handler, dashboard_only


async def test_the_chain_runs_in_order_for_dashboard_paths_only(aiohttp_client: Any) -> None:
    """A request to /login, /dashboard/..., /ws passes through every middleware of the
    chain, outermost first; /twilio/sms, /healthz and /static/... pass through none."""
    seen: list[str] = []

    def named(name: str) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            seen.append(name)
            return await handler(request)

        return middleware

    async def ok(request: web.Request) -> web.Response:
        seen.append("handler")
        return web.Response(text="ok")

    app = web.Application(middlewares=[dashboard_only(named("a"), named("b"), named("c"))])
    for path in ("/login", "/dashboard/queue", "/ws", "/twilio/sms", "/healthz", "/static/x"):
        app.router.add_get(path, ok)
    client = await aiohttp_client(app)
    for path, expected in (
        ("/login", ["a", "b", "c", "handler"]),
        ("/dashboard/queue", ["a", "b", "c", "handler"]),
        ("/ws", ["a", "b", "c", "handler"]),
        ("/twilio/sms", ["handler"]),
        ("/healthz", ["handler"]),
        ("/static/x", ["handler"]),
    ):
        seen.clear()
        response = await client.get(path)
        assert response.status == 200
        assert seen == expected, path


async def test_a_refusal_raised_inside_the_chain_still_reaches_the_outer_middlewares(
    aiohttp_client: Any,
) -> None:
    """An HTTP error raised by an inner middleware (as CSRF's 403 is) propagates through
    the outer ones unchanged."""

    @web.middleware
    async def refuse(request: web.Request, handler: Handler) -> web.StreamResponse:
        raise web.HTTPForbidden(text="missing CSRF token")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[dashboard_only(refuse)])
    app.router.add_post("/dashboard/x", ok)
    app.router.add_post("/twilio/sms", ok)
    client = await aiohttp_client(app)
    assert (await client.post("/dashboard/x")).status == 403
    assert (await client.post("/twilio/sms")).status == 200

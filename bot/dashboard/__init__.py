"""The advocates' and supervisors' web side: sign-in, queue, conversations, supervisor view,
flow diagram, training mode and live updates over a WebSocket (DESIGN.md section 6)."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.dashboard import access, accounts, security, views, ws

STATIC = Path(__file__).parent / "static"


def setup_dashboard(app: web.Application) -> None:
    """Add the dashboard to an app that already holds SETTINGS, CRYPTO, STORE, EVENTS and
    ENGINE. Installs the dashboard's middlewares, so call it before the app starts: the
    session, CSRF, refusals (after the session's: a refusal flashes) and the program guard
    (other programs' conversations: 403), run for the dashboard's paths only."""
    session, csrf = security.session_and_csrf(app)
    app.middlewares.append(
        security.dashboard_only(session, csrf, views.refusals, access.program_guard)
    )
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("bot.dashboard", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    )
    env.globals["wait_text"] = views.wait_text
    env.globals["epoch"] = views.epoch
    env.globals["iso"] = views.iso
    env.globals["clock"] = views.clock
    app[views.THROTTLE] = accounts.LoginThrottle()
    views.add_routes(app)
    app[ws.SCREENS] = ws.Screens(app)  # the one dispatcher of live events to sockets
    app.router.add_get("/ws", ws.websocket, name="ws")
    app.router.add_static("/static/", STATIC, name="static", append_version=True)


__all__ = ["setup_dashboard"]

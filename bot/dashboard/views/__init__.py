"""Dashboard pages and JSON, one module per job: auth (sign-in, presence), queue,
conversation, tools (resources, screens, safety plan), supervisor (with the flow diagram)
and training; common holds what they share, including the one middleware that turns store
refusals into answers.

Server-rendered through aiohttp-jinja2 (autoescape on); the small scripts in static/ only
fetch fragments from these same handlers when a WebSocket event says something changed.
"""

from __future__ import annotations

from aiohttp import web

from bot.dashboard.views import (
    abuse,
    auth,
    conversation,
    partner,
    queue,
    supervisor,
    tools,
    training,
)
from bot.dashboard.views.auth import THROTTLE
from bot.dashboard.views.common import clock, epoch, iso, refusals, wait_text

TABLES = (
    auth.routes,
    queue.routes,
    conversation.routes,
    tools.routes,
    supervisor.routes,
    training.routes,
    partner.routes,
    abuse.routes,
)


def add_routes(app: web.Application) -> None:
    for table in TABLES:
        app.router.add_routes(table)


__all__ = ["THROTTLE", "add_routes", "clock", "epoch", "iso", "refusals", "wait_text"]

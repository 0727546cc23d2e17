"""Typed application keys, in one place (aiohttp-demos style)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.crypto import Crypto
    from bot.engine import Engine
    from bot.events import Events
    from bot.settings import Settings
    from bot.sms.sender import Sender
    from bot.store.base import Store

SETTINGS = web.AppKey["Settings"]("settings")
CRYPTO = web.AppKey["Crypto"]("crypto")
STORE = web.AppKey["Store"]("store")
EVENTS = web.AppKey["Events"]("events")
SENDER = web.AppKey["Sender"]("sender")
ENGINE = web.AppKey["Engine"]("engine")

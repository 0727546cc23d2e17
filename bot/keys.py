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

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CRYPTO: web.AppKey[Crypto] = web.AppKey("crypto")
STORE: web.AppKey[Store] = web.AppKey("store")
EVENTS: web.AppKey[Events] = web.AppKey("events")
SENDER: web.AppKey[Sender] = web.AppKey("sender")
ENGINE: web.AppKey[Engine] = web.AppKey("engine")

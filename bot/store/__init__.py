"""Storage: one interface (base.py), SQLite and PostgreSQL backends, numbered migrations.

store = open_store(settings, crypto)
await store.open()
await store.migrate()          # or refuse to start while store.pending_migrations()
async with store.transaction(lock_key=phone_hash) as tx:
    texter = await tx.get_texter_by_hash(phone_hash)
"""

from __future__ import annotations

from bot.crypto import Crypto
from bot.settings import Settings
from bot.store.base import (
    ENDED_STATES,
    INTAKE_STATES,
    Alarm,
    AuditEntry,
    Conflict,
    Conversation,
    Direction,
    Message,
    Note,
    NotFound,
    OutboxItem,
    Store,
    Texter,
    Tx,
    User,
)

__all__ = [
    "ENDED_STATES",
    "INTAKE_STATES",
    "Alarm",
    "AuditEntry",
    "Conflict",
    "Conversation",
    "Direction",
    "Message",
    "NotFound",
    "Note",
    "OutboxItem",
    "Store",
    "Texter",
    "Tx",
    "User",
    "open_store",
]


def open_store(settings: Settings, crypto: Crypto) -> Store:
    """The backend for settings.database_url, not yet opened (the caller awaits .open())."""
    path = settings.sqlite_path
    if path is not None:
        from bot.store.sqlite import SqliteStore

        return SqliteStore(path, crypto)
    if settings.database_url.startswith("postgresql://"):
        from bot.store.postgres import PostgresStore

        return PostgresStore(settings.database_url, crypto)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")

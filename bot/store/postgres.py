"""PostgreSQL backend: an asyncpg pool, shared by any number of `web` processes.

`transaction(lock_key)` takes a transaction-scoped advisory lock on the key as its first
statement, before anything is loaded, so one texter's messages are handled one at a time
across processes. Single-conversation loads are `FOR UPDATE`, so a claim from the dashboard
waits for (and then sees) an engine transaction that loaded the same row. Timers and the
outbox are claimed `FOR UPDATE SKIP LOCKED`. Events cross processes with NOTIFY/LISTEN.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg

from bot.crypto import Crypto
from bot.store.base import Conflict, NotFound, Store, Tx
from bot.store.sql import Row, SqlTx, load_migrations, no_nesting, utc

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def advisory_key(key: str) -> int:
    """A signed 64-bit advisory-lock id for a string key, the same in every process."""
    digest = hashlib.blake2b(b"haven:" + key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_MIGRATION_LOCK = advisory_key("\0migrations")
_OUTBOX_LOCK = advisory_key("\0outbox-claims")


@lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """`?` placeholders to asyncpg's `$1, $2, ...` (our queries have no other `?`)."""
    count = 0

    def next_mark(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"\?", next_mark, sql)


class PgTx(SqlTx):
    _FOR_UPDATE = " FOR UPDATE"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    _LATERAL = True

    async def _serialise_claims(self) -> None:
        # Another worker's claim, not yet committed, still reads as 'pending': taking turns
        # lets "no earlier text of this conversation is being sent" see it.
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _OUTBOX_LOCK)

    async def _lock_names(self, names: list[str]) -> None:
        for name in names:
            await self._conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(name))

    def __init__(self, conn: asyncpg.Connection, crypto: Crypto) -> None:
        super().__init__(crypto)
        self._conn = conn

    async def _fetch(self, sql: str, *args: Any) -> list[Row]:
        self._guard()
        try:
            return list(await self._conn.fetch(_numbered(sql), *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _integrity(exc) from exc

    async def _execute(self, sql: str, *args: Any) -> int:
        self._guard()
        try:
            status = await self._conn.execute(_numbered(sql), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _integrity(exc) from exc
        # "UPDATE 3", "DELETE 0", "INSERT 0 1": the last word is the row count.
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    def _ts(self, value: datetime) -> datetime:
        return value

    def _dt(self, value: Any) -> datetime:
        return utc(value)


def _integrity(exc: asyncpg.IntegrityConstraintViolationError) -> Exception:
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound("a referenced record does not exist")
    return Conflict(str(exc))


class PgListener:
    """NOTIFY payloads on one channel, over a dedicated connection. The connection opens
    on `start()` (or the first `__anext__`); a lost connection raises ConnectionError, after
    which the caller may ask the store to listen() again."""

    _CLOSED = object()
    _LOST = object()

    def __init__(self, dsn: str, channel: str, server_settings: dict[str, str] | None) -> None:
        self._dsn = dsn
        self.channel = channel
        self._server_settings = server_settings
        self._conn: asyncpg.Connection | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=10_000)
        self._closed = False

    def _put(self, item: object) -> None:
        if self._queue.full():  # a stalled reader drops the oldest events, not the process
            self._queue.get_nowait()
        self._queue.put_nowait(item)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._put(payload)

    def _on_lost(self, _conn: object) -> None:
        if not self._closed:
            self._put(self._LOST)

    async def start(self) -> None:
        """Connect and LISTEN; every NOTIFY sent after this returns is delivered."""
        if self._closed:
            raise RuntimeError("this listener is closed")
        if self._conn is None:
            conn = await asyncpg.connect(self._dsn, server_settings=self._server_settings)
            conn.add_termination_listener(self._on_lost)
            await conn.add_listener(self.channel, self._on_notify)
            self._conn = conn

    def __aiter__(self) -> PgListener:
        return self

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        await self.start()
        item = await self._queue.get()
        if item is self._CLOSED:
            raise StopAsyncIteration
        if item is self._LOST:
            self._conn = None
            raise ConnectionError("lost the LISTEN connection to PostgreSQL")
        assert isinstance(item, str)
        return item

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._put(self._CLOSED)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


class PostgresStore(Store):
    def __init__(
        self,
        dsn: str,
        crypto: Crypto,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        """`schema` sets the search_path (tests give each run its own schema)."""
        if schema is not None and not _IDENT.match(schema):
            raise ValueError("schema must be a plain SQL identifier")
        self._dsn = dsn
        self._crypto = crypto
        self._server_settings = {"search_path": schema} if schema else None
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._listeners: set[PgListener] = set()

    async def open(self) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                server_settings=self._server_settings,
            )

    async def close(self) -> None:
        for listener in list(self._listeners):
            await listener.aclose()
        self._listeners.clear()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open; await store.open() first")
        return self._pool

    async def ping(self) -> None:
        await self._get_pool().fetchval("SELECT 1")

    # -- migrations ---------------------------------------------------------------------------
    async def pending_migrations(self) -> list[int]:
        async with self._get_pool().acquire() as conn:
            done = await self._applied(conn)
        return [m.number for m in load_migrations("postgres") if m.number not in done]

    async def _applied(self, conn: asyncpg.Connection) -> set[int]:
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return set()
        return {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._get_pool().acquire() as conn:
            # Each step under one advisory lock, so two `release` processes take turns.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
            for m in load_migrations("postgres"):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                    if m.number in await self._applied(conn):
                        continue
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", m.number
                    )
                applied.append(m.number)
        return applied

    # -- transactions -------------------------------------------------------------------------
    def transaction(self, lock_key: str | None = None) -> AbstractAsyncContextManager[Tx]:
        return self._transaction(lock_key)

    @asynccontextmanager
    async def _transaction(self, lock_key: str | None) -> AsyncIterator[Tx]:
        pool = self._get_pool()
        with no_nesting():
            async with pool.acquire() as conn, conn.transaction():
                if lock_key is not None:  # first statement, before anything is loaded
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(lock_key))
                tx = PgTx(conn, self._crypto)
                try:
                    yield tx
                finally:
                    tx.closed = True

    # -- events across processes ----------------------------------------------------------------
    async def notify(self, channel: str, payload: str) -> None:
        await self._get_pool().execute("SELECT pg_notify($1, $2)", channel, payload)

    def listen(self, channel: str) -> PgListener:
        if not _IDENT.match(channel):
            raise ValueError("channel must be a plain SQL identifier")
        listener = PgListener(self._dsn, channel, self._server_settings)
        self._listeners.add(listener)
        return listener

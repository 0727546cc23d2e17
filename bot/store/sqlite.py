"""SQLite backend (the default): one aiosqlite connection, WAL, foreign keys on.

Every transaction holds one asyncio lock from BEGIN IMMEDIATE to COMMIT, so tasks never
interleave inside a transaction. `transaction(lock_key)` first takes a per-key lock as well,
so the per-texter serialisation contract reads the same as PostgreSQL's advisory locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from typing import Any

import aiosqlite

from bot.crypto import Crypto
from bot.store.base import Conflict, NotFound, Store, Tx
from bot.store.sql import Row, SqlTx, load_migrations, no_nesting, utc

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # fixed width, so text order is time order
BUSY_TIMEOUT_MS = 5000
# Upserts and UPDATE/DELETE ... RETURNING (claims, alarms, statuses) need SQLite 3.35.
MIN_SQLITE = (3, 35, 0)


class SqliteTx(SqlTx):
    def __init__(self, conn: aiosqlite.Connection, crypto: Crypto) -> None:
        super().__init__(crypto)
        self._conn = conn

    async def _fetch(self, sql: str, *args: Any) -> list[Row]:
        self._guard()
        try:
            return list(await self._conn.execute_fetchall(sql, args))
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc

    async def _execute(self, sql: str, *args: Any) -> int:
        self._guard()
        try:
            async with self._conn.execute(sql, args) as cursor:
                return cursor.rowcount
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc

    def _ts(self, value: datetime) -> str:
        return value.strftime(_TS_FORMAT)

    def _dt(self, value: Any) -> datetime:
        return utc(datetime.fromisoformat(value))


def _integrity(exc: sqlite3.IntegrityError) -> Exception:
    if "FOREIGN KEY" in str(exc):
        return NotFound("a referenced record does not exist")
    return Conflict(str(exc))


def _private_file(path: str) -> None:
    """Create the database file readable by its owner only (SQLite gives the -wal and -shm
    files the database file's mode), and tighten one an older Haven created 0644."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        with contextlib.suppress(OSError):  # not ours to change (e.g. read-only): leave it
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
    else:
        os.close(fd)


def _can_open(path: str) -> None:
    """Raise sqlite3's own error if the database file cannot be opened."""
    sqlite3.connect(path).close()


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


async def _rollback(conn: aiosqlite.Connection) -> None:
    """Roll back even when the task was cancelled mid-statement. aiosqlite runs statements
    in order on its own thread, so a BEGIN or COMMIT still in flight runs before this
    ROLLBACK; checking `in_transaction` first would race with it. Shielded, so a second
    cancellation cannot leave the shared connection inside a transaction."""
    try:
        await asyncio.shield(conn.execute("ROLLBACK"))
    except sqlite3.OperationalError:
        pass  # no transaction was active: BEGIN never ran, or COMMIT already did
    except asyncio.CancelledError:
        pass  # the shielded ROLLBACK still runs; the caller is already unwinding


class SqliteStore(Store):
    single_process = True

    def __init__(self, path: str, crypto: Crypto) -> None:
        self.path = path
        self._crypto = crypto
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._key_locks: dict[str, _KeyLock] = {}

    async def open(self) -> None:
        if self._conn is not None:
            return
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(
                f"Haven needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer (RETURNING);"
                f" this Python has {sqlite3.sqlite_version}: use PostgreSQL or a newer Python"
            )
        if self.path != ":memory:" and not self.path.startswith("file:"):
            _private_file(self.path)
        # Opened once directly first: when aiosqlite fails to open a file, it queues its
        # worker thread's stop without waiting, and that thread may then report to an event
        # loop that has closed (a traceback at exit, after start-up's one clear line).
        await asyncio.to_thread(_can_open, self.path)
        conn = await aiosqlite.connect(self.path, isolation_level=None)  # we say BEGIN
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                await conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            # aiosqlite's thread would otherwise keep the process alive after the error.
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            async with self._write_lock:  # let a running transaction finish first
                await conn.close()

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the store is not open; await store.open() first")
        return self._conn

    async def ping(self) -> None:
        await self._connection().execute_fetchall("SELECT 1")

    # -- migrations ---------------------------------------------------------------------------
    async def _applied(self, conn: aiosqlite.Connection) -> set[int]:
        exists = await conn.execute_fetchall(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        if not exists:
            return set()
        return {r[0] for r in await conn.execute_fetchall("SELECT version FROM schema_migrations")}

    async def pending_migrations(self) -> list[int]:
        done = await self._applied(self._connection())
        return [m.number for m in load_migrations("sqlite") if m.number not in done]

    async def migrate(self) -> list[int]:
        conn = self._connection()
        applied: list[int] = []
        async with self._write_lock:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            done = await self._applied(conn)
            for m in load_migrations("sqlite"):
                if m.number in done:
                    continue
                # One script, one transaction: the version row first, so a second
                # migrator racing on the same file fails cleanly instead of half-applying.
                script = (
                    f"BEGIN IMMEDIATE;\nINSERT INTO schema_migrations (version)"
                    f" VALUES ({m.number});\n{m.sql}\nCOMMIT;"
                )
                try:
                    await conn.executescript(script)
                except BaseException:
                    if conn.in_transaction:
                        await conn.execute("ROLLBACK")
                    raise
                applied.append(m.number)
        return applied

    # -- transactions -------------------------------------------------------------------------
    def transaction(self, lock_key: str | None = None) -> AbstractAsyncContextManager[Tx]:
        return self._transaction(lock_key)

    @asynccontextmanager
    async def _key_lock(self, key: str) -> AsyncIterator[None]:
        entry = self._key_locks.get(key)
        if entry is None:
            entry = self._key_locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:  # nobody holds or waits: forget the key
                del self._key_locks[key]

    @asynccontextmanager
    async def _transaction(self, lock_key: str | None) -> AsyncIterator[Tx]:
        conn = self._connection()
        with no_nesting():
            async with self._key_lock(lock_key) if lock_key is not None else nullcontext():
                async with self._write_lock:
                    tx = SqliteTx(conn, self._crypto)
                    try:
                        await conn.execute("BEGIN IMMEDIATE")
                        yield tx
                        await conn.execute("COMMIT")
                    except BaseException:
                        await _rollback(conn)
                        raise
                    finally:
                        tx.closed = True

    @property
    def key_locks_held(self) -> int:
        """How many per-key lock entries exist (for tests: they are cleaned up)."""
        return len(self._key_locks)

"""SQLite backend (the default): one aiosqlite connection, WAL, foreign keys on.

Every transaction holds one asyncio lock (the write lock) while its statements run, so
tasks never interleave inside a transaction. `transaction(lock_key)` first takes a per-key
lock as well, so the per-texter serialisation contract reads the same as PostgreSQL's
advisory locks.

Group commit (issue 11). Transactions that follow each other while others wait for the
write lock share one SQLite transaction: the first opens it (BEGIN IMMEDIATE), each later
one runs inside a SAVEPOINT of its own (so a failure undoes only its own work), and one
COMMIT (one fsync) ends them all. Nobody's `transaction()` block returns before that COMMIT
has returned: a webhook is acknowledged only once its message is durable, and a kill -9
loses nothing acknowledged. A transaction that finds nobody waiting commits at once, as
before. The opening statement (BEGIN or SAVEPOINT) goes to SQLite's thread in the same hop
as the transaction's first statement, so it costs no round trip of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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
# A group commits at the latest when it has this many members or is this old (seconds),
# so a steady stream of webhooks still gets acknowledged.
GROUP_MAX = 64
GROUP_MAX_AGE = 0.05


class SqliteTx(SqlTx):
    def __init__(
        self,
        conn: aiosqlite.Connection,
        crypto: Crypto,
        opening: Callable[[SqliteTx], str],
    ) -> None:
        super().__init__(crypto)
        self._conn = conn
        self._opening: Callable[[SqliteTx], str] | None = opening
        self.opened = False  # its opening statement was sent (it may be running still)
        self.savepoint: str | None = None  # its savepoint inside a shared transaction
        self._later: list[tuple[str, tuple[Any, ...]]] = []  # writes sent with the next hop

    def _run(self, sql: str | None, args: tuple[Any, ...], fetch: bool) -> Awaitable[Any]:
        """One statement in SQLite's thread, preceded in the same hop by this transaction's
        opening statement (BEGIN IMMEDIATE or SAVEPOINT) if it has not been sent yet, and
        by the writes held back by `_execute_later`, in the order they were made. With
        `sql` None, only those."""
        self._guard()
        first: list[tuple[str, tuple[Any, ...]]] = []
        if self._opening is not None:
            first.append((self._opening(self), ()))
            self._opening = None
            self.opened = True
        first += self._later
        self._later = []
        conn = self._conn

        def work() -> Any:
            # aiosqlite runs `work` on its own thread, in order with every other call.
            db = conn._conn  # the sqlite3 connection behind aiosqlite (private)
            for statement, params in first:
                db.execute(statement, params).close()
            if sql is None:
                return None
            cursor = db.execute(sql, args)
            try:
                return cursor.fetchall() if fetch else cursor.rowcount
            finally:
                cursor.close()

        return conn._execute(work)  # queue `work` on aiosqlite's thread (private)

    async def _fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._run(sql, args, fetch=True))
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc

    async def _execute(self, sql: str, *args: Any) -> int:
        try:
            return int(await self._run(sql, args, fetch=False))
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc

    async def _execute_later(self, sql: str, *args: Any) -> None:
        self._guard()
        self._later.append((sql, args))

    async def flush_writes(self) -> None:
        if self._later:
            try:
                await self._run(None, (), fetch=False)
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


async def _rollback(conn: aiosqlite.Connection, statement: str = "ROLLBACK") -> None:
    """Roll back (or back to a savepoint) even when the task was cancelled mid-statement.
    aiosqlite runs statements in order on its own thread, so a BEGIN, SAVEPOINT or COMMIT
    still in flight runs before this; checking `in_transaction` first would race with it.
    Shielded, so a second cancellation cannot leave the shared connection inside a
    transaction."""
    try:
        await asyncio.shield(conn.execute(statement))
    except sqlite3.OperationalError:
        pass  # nothing to undo: BEGIN or SAVEPOINT never ran, or COMMIT already did
    except asyncio.CancelledError:
        pass  # the shielded statement still runs; the caller is already unwinding


async def _through(task: asyncio.Future[None]) -> None:
    """Wait for `task` even through cancellation (then re-raise it once it is done): the
    write lock must not be let go while a COMMIT is still running on the connection."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


async def _open_reader(path: str) -> aiosqlite.Connection:
    """The read-only connection: it sees what is committed, and refuses to write."""
    reader = await aiosqlite.connect(path, isolation_level=None)
    try:
        reader.row_factory = aiosqlite.Row
        await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await reader.execute("PRAGMA query_only = ON")
    except BaseException:
        await reader.close()
        raise
    return reader


class _Group:
    """One SQLite transaction shared by transactions that followed each other."""

    __slots__ = ("committed", "members", "started")

    def __init__(self) -> None:
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.members = 0  # savepoints handed out (the first member needs none)
        self.started = time.monotonic()


class SqliteStore(Store):
    single_process = True

    def __init__(self, path: str, crypto: Crypto) -> None:
        self.path = path
        self._crypto = crypto
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._key_locks: dict[str, _KeyLock] = {}
        self._waiting = 0  # tasks waiting for the write lock
        self._group: _Group | None = None  # the open shared transaction, if any
        self._flush: asyncio.Task[None] | None = None  # a commit queued behind the waiters
        # Reads outside the write lock: a second, read-only connection (WAL lets it read
        # the last committed state while a write transaction runs). None in memory.
        self._reader: aiosqlite.Connection | None = None
        self._read_lock = asyncio.Lock()

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
        if self.path != ":memory:" and not self.path.startswith("file:"):
            self._reader = await _open_reader(self.path)

    async def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            async with self._read_lock:
                await reader.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            async with self._write_lock:  # let a running transaction finish first
                if self._group is not None:  # nothing waiting on a commit is dropped
                    await _through(asyncio.ensure_future(self._commit(conn)))
                await conn.close()

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the store is not open; await store.open() first")
        return self._conn

    async def trace(self, callback: Callable[[str], object] | None) -> None:
        """Have SQLite call `callback` with every statement it runs on this store's
        connections (None stops it): for counting statements (tests, tools)."""
        # aiosqlite's stub wants a callable; None is what sqlite3 takes to stop tracing.
        await self._connection().set_trace_callback(callback)  # type: ignore[arg-type]

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
            if self._group is not None:  # never inside a shared transaction
                await _through(asyncio.ensure_future(self._commit(conn)))
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

    def reading(self) -> AbstractAsyncContextManager[Tx]:
        return self._reading()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Tx]:
        reader = self._reader
        if reader is None:  # an in-memory database has one connection: share its lock
            async with self._transaction(None) as tx:
                yield tx
            return
        with no_nesting():
            async with self._read_lock:  # one reader at a time; never the write lock
                tx = SqliteTx(reader, self._crypto, lambda _tx: "BEGIN")  # one snapshot
                try:
                    yield tx
                    await tx.flush_writes()  # a write held back is refused here too
                finally:
                    tx.closed = True
                    if tx.opened:
                        await _rollback(reader)  # ends the snapshot; it wrote nothing

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
            # The key lock is held until this transaction's work is committed: the
            # texter's next message is loaded only once this one is durable.
            async with self._key_lock(lock_key) if lock_key is not None else nullcontext():
                self._waiting += 1
                try:
                    await self._write_lock.acquire()
                finally:
                    self._waiting -= 1
                locked = True
                try:
                    tx = SqliteTx(conn, self._crypto, self._opening)
                    try:
                        yield tx
                        await tx.flush_writes()  # the writes held back, in one hop
                    except BaseException:
                        tx.closed = True
                        if tx.opened and tx.savepoint is None:
                            self._group = None  # it began the shared transaction, alone
                            await _rollback(conn)
                        elif tx.opened:
                            await _rollback(conn, f"ROLLBACK TO {tx.savepoint}")
                        raise
                    tx.closed = True
                    group = self._group
                    if not tx.opened or group is None:
                        return  # it ran no statement: nothing to commit
                    if (
                        self._waiting == 0
                        or group.members >= GROUP_MAX
                        or time.monotonic() - group.started >= GROUP_MAX_AGE
                    ):
                        await _through(asyncio.ensure_future(self._commit(conn)))
                        return
                    # Others wait for the lock: let them add their work to this
                    # transaction, and commit behind them (asyncio.Lock is first come,
                    # first served), unless one of them commits first.
                    if self._flush is None:
                        self._flush = asyncio.create_task(self._commit_later())
                    self._write_lock.release()
                    locked = False
                    await asyncio.shield(group.committed)  # raises if the COMMIT failed
                finally:
                    if locked:
                        self._write_lock.release()

    def _opening(self, tx: SqliteTx) -> str:
        """The statement that opens a transaction's work (sent with its first statement):
        the shared transaction's BEGIN, or a savepoint inside it."""
        if self._group is None:
            self._group = _Group()
            return "BEGIN IMMEDIATE"
        self._group.members += 1
        tx.savepoint = f"haven_{self._group.members}"
        return f"SAVEPOINT {tx.savepoint}"

    async def _commit(self, conn: aiosqlite.Connection) -> None:
        """COMMIT the shared transaction (the caller holds the write lock) and tell every
        member waiting on it; if the COMMIT fails, all of it is rolled back and they all
        fail (their webhooks get a 5xx and Twilio sends them again)."""
        group, self._group = self._group, None
        if group is None:
            return
        try:
            await conn.execute("COMMIT")
        except BaseException as exc:
            await _rollback(conn)
            failure = exc if isinstance(exc, Exception) else RuntimeError("COMMIT interrupted")
            group.committed.set_exception(failure)
            group.committed.exception()  # retrieved here; each member re-raises it
            raise
        group.committed.set_result(None)

    async def _commit_later(self) -> None:
        try:
            async with self._write_lock:
                if self._group is not None and self._conn is not None:
                    await self._commit(self._conn)
        except Exception:  # each member waiting on the group raises it
            pass
        finally:
            self._flush = None

    @property
    def key_locks_held(self) -> int:
        """How many per-key lock entries exist (for tests: they are cleaned up)."""
        return len(self._key_locks)

"""SQLite backend (the default): WAL, foreign keys on, one writing connection.

The writing connection runs its statements on the event loop's own thread: a point read or
a one-row write costs SQLite a few microseconds, and a hop to a worker thread and back cost
the loop ten times that in wake-ups and GIL hand-overs (issue 11's profile: the hops were
half of a webhook's CPU). Only what can take long leaves the loop: the fsync that makes a
COMMIT durable, checkpoints, a BEGIN that has to wait for another process's write (retried
with `asyncio.sleep`, never a blocking busy wait), migrations, and every read of
`reading()`, which runs on a second, read-only connection in a thread of its own so a big
dashboard read never stalls a webhook.

Every transaction holds one asyncio lock (the write lock) from its first statement to its
end, so tasks never interleave inside a transaction. `transaction(lock_key)` first takes a
per-key lock as well, so the per-texter serialisation contract reads the same as
PostgreSQL's advisory locks.

Group commit (issue 11). Transactions that follow each other (those ready on the same turn
of the loop, or waiting for the write lock) share one SQLite transaction: the first opens
it (BEGIN IMMEDIATE), each later one runs inside a SAVEPOINT of its own (so a failure
undoes only its own work), and one COMMIT ends them all, writing each changed page once.
Durability: on a database file, the writer runs with synchronous = NORMAL, so its COMMIT
writes the WAL without waiting for the disk and the write lock goes to the next group at
once; the commit thread then fsyncs the WAL (one fsync for every COMMIT made before it
started), and only then does each member's `transaction()` block return. A webhook is
acknowledged only once its message is on disk, so neither a kill -9 nor a power cut loses
anything acknowledged, and the disk's wait overlaps the next group's work instead of
stalling it. Checkpoints (copying the WAL into the database) run in that thread too, on a
connection of their own, never inside a webhook's COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from bot.crypto import Crypto
from bot.store.base import Conflict, NotFound, Store, Tx
from bot.store.sql import Row, SqlTx, load_migrations, no_nesting, utc

_T = TypeVar("_T")
# How long a statement waits for another process's write lock (a CLI command, say) before
# it fails: BEGIN on the loop retries with asyncio.sleep; the threads let SQLite wait.
BUSY_TIMEOUT_MS = 5000
# Upserts and UPDATE/DELETE ... RETURNING (claims, alarms, statuses) need SQLite 3.35.
MIN_SQLITE = (3, 35, 0)
# A group commits at the latest when it has this many members or is this old (seconds),
# so a steady stream of webhooks still gets acknowledged.
GROUP_MAX = 64
GROUP_MAX_AGE = 0.05
# The commit thread checkpoints at most this often (seconds) while commits come in (SQLite's
# own automatic checkpoint is off on the writer: it would run inside a COMMIT, on the loop).
CHECKPOINT_EVERY = 1.0
_BUSY_FIRST_SLEEP = 0.001


class SqliteTx(SqlTx):
    """A transaction on one connection. `thread` None: statements run on the calling (event
    loop) thread; else each call runs there, in order, as one unit of work."""

    def __init__(
        self,
        db: sqlite3.Connection,
        crypto: Crypto,
        opening: Callable[[SqliteTx], str],
        thread: ThreadPoolExecutor | None = None,
    ) -> None:
        super().__init__(crypto)
        self._db = db
        self._thread = thread
        self._opening: Callable[[SqliteTx], str] | None = opening
        self.opened = False  # its opening statement ran
        self.savepoint: str | None = None  # its savepoint inside a shared transaction
        self._later: list[tuple[str, tuple[Any, ...]]] = []  # writes run before the next call

    async def _call(self, sql: str | None, args: tuple[Any, ...], fetch: bool) -> Any:
        """One statement (with `sql` None, none), preceded by this transaction's opening
        statement (BEGIN IMMEDIATE, BEGIN or SAVEPOINT) if it has not run yet, and by the
        writes held back by `_execute_later`, in the order they were made."""
        self._guard()
        first: list[tuple[str, tuple[Any, ...]]] = []
        if self._opening is not None:
            opening, self._opening = self._opening(self), None
            if self._thread is None:
                await _begin(self._db, opening)
            else:
                first.append((opening, ()))
            self.opened = True
        first += self._later
        self._later = []
        work = partial(_statements, self._db, first, sql, args, fetch)
        try:
            if self._thread is None:
                return work()
            return await asyncio.get_running_loop().run_in_executor(self._thread, work)
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc

    async def _fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._call(sql, args, fetch=True))

    async def _execute(self, sql: str, *args: Any) -> int:
        return int(await self._call(sql, args, fetch=False))

    async def _execute_later(self, sql: str, *args: Any) -> None:
        self._guard()
        self._later.append((sql, args))

    async def flush_writes(self) -> None:
        if self._later:
            await self._call(None, (), fetch=False)

    def _ts(self, value: datetime) -> str:
        # "2025-01-01T00:00:00.000000+00:00": fixed width (microseconds always, the value is
        # UTC), so text order is time order; isoformat costs a third of strftime.
        return value.isoformat(timespec="microseconds")

    def _dt(self, value: Any) -> datetime:
        return utc(datetime.fromisoformat(value))


def _statements(
    db: sqlite3.Connection,
    first: list[tuple[str, tuple[Any, ...]]],
    sql: str | None,
    args: tuple[Any, ...],
    fetch: bool,
) -> Any:
    for statement, params in first:
        db.execute(statement, params).close()
    if sql is None:
        return None
    cursor = db.execute(sql, args)
    try:
        return cursor.fetchall() if fetch else cursor.rowcount
    finally:
        cursor.close()


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


async def _begin(db: sqlite3.Connection, statement: str) -> None:
    """Open the writer's transaction on the loop. The connection never waits inside SQLite
    (busy timeout 0): when another process holds the write lock, sleep and try again, so
    the loop keeps serving (health checks, dashboard reads) meanwhile."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = _BUSY_FIRST_SLEEP
    while True:
        try:
            db.execute(statement).close()
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


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


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _connect(path: str, busy_ms: int) -> sqlite3.Connection:
    """A connection we BEGIN ourselves, usable from the loop and one thread of ours (never
    from two at once: the write lock, or the reader's lock and its single thread, see to
    that)."""
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_ms / 1000
    )
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON").close()
    except BaseException:
        db.close()
        raise
    return db


def _quiet_rollback(db: sqlite3.Connection, statement: str = "ROLLBACK") -> None:
    """Roll back (or back to a savepoint); nothing to undo is not an error."""
    with contextlib.suppress(sqlite3.OperationalError):
        db.execute(statement).close()


async def _through(task: asyncio.Future[_T]) -> _T:
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
    return task.result()


async def _in(thread: ThreadPoolExecutor, work: Callable[[], _T]) -> _T:
    return await asyncio.get_running_loop().run_in_executor(thread, work)


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
        self._db: sqlite3.Connection | None = None  # the writer, used on the loop
        self._commits: ThreadPoolExecutor | None = None  # fsyncs, checkpoints, migrations
        # On a database file: the WAL's descriptor (fsynced before groups are acknowledged)
        # and the connection that checkpoints, both used in the commit thread only.
        self._wal: int | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._unsynced: list[_Group] = []  # committed, waiting for the next fsync
        self._syncer: asyncio.Task[None] | None = None  # fsyncs while groups wait
        self._checkpointed = time.monotonic()
        self._write_lock = asyncio.Lock()
        self._key_locks: dict[str, _KeyLock] = {}
        self._waiting = 0  # tasks waiting for the write lock
        self._group: _Group | None = None  # the open shared transaction, if any
        self._flush: asyncio.Task[None] | None = None  # a commit queued behind the waiters
        # Reads outside the write lock: a second, read-only connection in its own thread
        # (WAL lets it read the last committed state while a write transaction runs).
        # None in memory.
        self._reader: sqlite3.Connection | None = None
        self._reads: ThreadPoolExecutor | None = None
        self._read_lock = asyncio.Lock()

    async def open(self) -> None:
        if self._db is not None:
            return
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise RuntimeError(
                f"Haven needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer (RETURNING);"
                f" this Python has {sqlite3.sqlite_version}: use PostgreSQL or a newer Python"
            )
        on_disk = self.path != ":memory:" and not self.path.startswith("file:")
        if on_disk:
            _private_file(self.path)
        db = _connect(self.path, 0)  # never waits inside SQLite on the loop: see _begin
        try:
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode = WAL").close()
            if on_disk:
                # COMMIT writes the WAL; the commit thread fsyncs it before anyone is
                # acknowledged (see the module's docstring), and checkpoints it.
                db.execute("PRAGMA synchronous = NORMAL").close()
                db.execute("PRAGMA wal_autocheckpoint = 0").close()
                # A first read creates the WAL file; it lives while any connection is open.
                db.execute("SELECT count(*) FROM sqlite_master").fetchall()
                self._wal = os.open(self.path + "-wal", os.O_RDWR | os.O_CLOEXEC)
                self._checkpointer = _connect(self.path, BUSY_TIMEOUT_MS)
        except BaseException:
            self._close_sync_side()
            db.close()
            raise
        self._db = db
        self._commits = ThreadPoolExecutor(1, thread_name_prefix="haven-sqlite-commit")
        if on_disk:
            reader = _connect(self.path, BUSY_TIMEOUT_MS)
            reader.execute("PRAGMA query_only = ON").close()  # it refuses to write
            self._reader = reader
            self._reads = ThreadPoolExecutor(1, thread_name_prefix="haven-sqlite-read")

    async def close(self) -> None:
        if self._reader is not None and self._reads is not None:
            reader, reads, self._reader = self._reader, self._reads, None
            async with self._read_lock:
                await _in(reads, reader.close)
            reads.shutdown(wait=False)
        if self._db is not None and self._commits is not None:
            db, commits = self._db, self._commits
            async with self._write_lock:  # let a running transaction finish first
                if self._group is not None:  # nothing waiting on a commit is dropped
                    self._commit()
                while self._syncer is not None:  # every commit made durable first
                    await asyncio.shield(self._syncer)
                self._db = None
                db.close()
                self._close_sync_side()
            commits.shutdown(wait=False)

    def _close_sync_side(self) -> None:
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    def _writer(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open; await store.open() first")
        return self._db

    async def trace(self, callback: Callable[[str], object] | None) -> None:
        """Have SQLite call `callback` with every statement it runs on the writing
        connection (None stops it): for counting statements (tests, tools)."""
        self._writer().set_trace_callback(callback)

    async def ping(self) -> None:
        if self._reader is not None and self._reads is not None:
            reader = self._reader
            async with self._read_lock:
                await _in(self._reads, lambda: reader.execute("SELECT 1").fetchall())
            return
        db = self._writer()
        async with self._write_lock:
            db.execute("SELECT 1").fetchall()

    # -- migrations ---------------------------------------------------------------------------
    def _applied(self) -> set[int]:
        db = self._writer()
        exists = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchall()
        if not exists:
            return set()
        return {r[0] for r in db.execute("SELECT version FROM schema_migrations")}

    async def pending_migrations(self) -> list[int]:
        self._writer()
        async with self._write_lock:
            done = self._applied()
        return [m.number for m in load_migrations("sqlite") if m.number not in done]

    async def migrate(self) -> list[int]:
        db = self._writer()
        assert self._commits is not None
        async with self._write_lock:
            if self._group is not None:  # never inside a shared transaction
                group = self._group
                self._commit()
                await asyncio.shield(group.committed)
            # In the commit thread, where SQLite may wait for another migrator's lock.
            return await _through(asyncio.ensure_future(_in(self._commits, partial(_migrate, db))))

    # -- transactions -------------------------------------------------------------------------
    def transaction(self, lock_key: str | None = None) -> AbstractAsyncContextManager[Tx]:
        return self._transaction(lock_key)

    def reading(self) -> AbstractAsyncContextManager[Tx]:
        return self._reading()

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Tx]:
        reader, reads = self._reader, self._reads
        if reader is None or reads is None:  # in memory, one connection: share its lock
            async with self._transaction(None) as tx:
                yield tx
            return
        with no_nesting():
            async with self._read_lock:  # one reader at a time; never the write lock
                tx = SqliteTx(reader, self._crypto, lambda _tx: "BEGIN", reads)  # a snapshot
                try:
                    yield tx
                    await tx.flush_writes()  # a write held back is refused here too
                finally:
                    tx.closed = True
                    if tx.opened:  # ends the snapshot (it wrote nothing), after any read
                        # still running in the reader's thread, even if we were cancelled
                        with contextlib.suppress(asyncio.CancelledError):
                            await asyncio.shield(_in(reads, partial(_quiet_rollback, reader)))

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
        db = self._writer()
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
                    tx = SqliteTx(db, self._crypto, self._opening)
                    try:
                        yield tx
                        await tx.flush_writes()  # the writes held back
                    except BaseException:
                        tx.closed = True
                        if tx.opened and tx.savepoint is None:
                            self._group = None  # it began the shared transaction, alone
                            _quiet_rollback(db)
                        elif tx.opened:
                            _quiet_rollback(db, f"ROLLBACK TO {tx.savepoint}")
                        raise
                    tx.closed = True
                    group = self._group
                    if not tx.opened or group is None:
                        return  # it ran no statement: nothing to commit
                    if (
                        group.members >= GROUP_MAX
                        or time.monotonic() - group.started >= GROUP_MAX_AGE
                    ):
                        self._commit()
                    elif self._flush is None:
                        # Commit on a later turn of the loop, behind every task that is
                        # ready to run by then or waits for the lock (asyncio.Lock is
                        # first come, first served): the requests that arrived with this
                        # one add their work to this transaction, so one COMMIT writes
                        # each changed page of the WAL once for all of them.
                        self._flush = asyncio.create_task(self._commit_later())
                    self._write_lock.release()
                    locked = False
                    # Returns once the group is committed and on disk; raises if not.
                    await asyncio.shield(group.committed)
                finally:
                    if locked:
                        self._write_lock.release()

    def _opening(self, tx: SqliteTx) -> str:
        """The statement that opens a transaction's work (run before its first statement):
        the shared transaction's BEGIN, or a savepoint inside it."""
        if self._group is None:
            self._group = _Group()
            return "BEGIN IMMEDIATE"
        self._group.members += 1
        tx.savepoint = f"haven_{self._group.members}"
        return f"SAVEPOINT {tx.savepoint}"

    def _commit(self) -> None:
        """COMMIT the shared transaction on the loop (the caller holds the write lock): on a
        database file this writes the WAL without waiting for the disk. Its members are told
        once the commit thread's next fsync has made it durable. If the COMMIT fails, all of
        it is rolled back and they all fail (their webhooks get a 5xx and Twilio sends them
        again)."""
        group, self._group = self._group, None
        if group is None or self._db is None:
            return
        db = self._db
        try:
            db.execute("COMMIT").close()
        except Exception as exc:
            _quiet_rollback(db)
            group.committed.set_exception(exc)
            group.committed.exception()  # retrieved here; each member re-raises it
            return
        if self._wal is None:  # in memory: nothing to make durable
            group.committed.set_result(None)
            return
        self._unsynced.append(group)
        if self._syncer is None:
            self._syncer = asyncio.create_task(self._sync())

    async def _sync(self) -> None:
        """fsync the WAL in the commit thread, again while groups committed meanwhile
        wait: each fsync covers every COMMIT made before it began. Then tell them, and
        checkpoint now and then."""
        assert self._commits is not None and self._wal is not None
        commits, wal = self._commits, self._wal
        try:
            while self._unsynced:
                batch, self._unsynced = self._unsynced, []
                try:
                    await _in(commits, partial(os.fsync, wal))
                except Exception as exc:  # the disk refused: none of them is acknowledged
                    for group in batch:
                        group.committed.set_exception(exc)
                        group.committed.exception()
                    continue
                for group in batch:
                    group.committed.set_result(None)
                if (
                    self._checkpointer is not None
                    and time.monotonic() - self._checkpointed >= CHECKPOINT_EVERY
                ):
                    self._checkpointed = time.monotonic()
                    await _in(commits, partial(_checkpoint, self._checkpointer))
        finally:
            self._syncer = None

    async def _commit_later(self) -> None:
        try:
            async with self._write_lock:
                if self._group is not None and self._db is not None:
                    self._commit()
        finally:
            self._flush = None

    @property
    def key_locks_held(self) -> int:
        """How many per-key lock entries exist (for tests: they are cleaned up)."""
        return len(self._key_locks)


def _checkpoint(db: sqlite3.Connection) -> None:
    """Copy the WAL into the database (PASSIVE: it never waits for, or blocks, the writer
    and readers); a checkpoint that cannot finish now is simply done later."""
    with contextlib.suppress(sqlite3.OperationalError):
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _migrate(db: sqlite3.Connection) -> list[int]:
    """Apply the pending migrations (in the commit thread, where waiting is allowed)."""
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}").close()
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        ).close()
        done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
        applied: list[int] = []
        for m in load_migrations("sqlite"):
            if m.number in done:
                continue
            # One script, one transaction: the version row first, so a second migrator
            # racing on the same file fails cleanly instead of half-applying.
            script = (
                f"BEGIN IMMEDIATE;\nINSERT INTO schema_migrations (version)"
                f" VALUES ({m.number});\n{m.sql}\nCOMMIT;"
            )
            try:
                db.executescript(script)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK").close()
                raise
            applied.append(m.number)
        return applied
    finally:
        db.execute("PRAGMA busy_timeout = 0").close()  # back to never waiting on the loop

"""SQLite's connection layer (issue 11). Group commit: transactions that queue for the
write lock share one COMMIT, each block returns only after its work is durable, and a
failure undoes only the failing transaction's work. Statements run on the loop; only the
COMMIT, and a wait for another process's lock, leave it or yield it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import open_store
from bot.store.sqlite import SqliteStore

NOW_HASH = "hash-{}"


@pytest.fixture
async def sqlite_store(tmp_path: Path, crypto: Crypto) -> SqliteStore:
    store = open_store(Settings(database_url=f"sqlite:///{tmp_path / 'haven.db'}"), crypto)
    assert isinstance(store, SqliteStore)
    await store.open()
    await store.migrate()
    return store


def _committed_replies(path: Path) -> set[str]:
    """What another connection (another process, or the disk after a crash) can see."""
    with sqlite3.connect(path) as other:
        return {r[0] for r in other.execute("SELECT message_sid FROM replies")}


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):  # 5 s
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not within 5 s")


async def test_queued_transactions_share_a_commit_and_return_only_once_durable(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Forty transactions started at once, each under its own texter's lock, write one
    row each. Fewer COMMITs than transactions run (they were grouped), and at the moment
    each transaction's block returns, a separate connection already sees its row: nothing
    is acknowledged before it is committed."""
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    ran: list[str] = []
    await sqlite_store.trace(ran.append)
    seen_on_return: dict[str, bool] = {}

    async def one(n: int) -> None:
        sid = f"SM{n:032d}"
        async with sqlite_store.transaction(lock_key=NOW_HASH.format(n)) as tx:
            await tx.save_reply(sid, "[]", now)
            await asyncio.sleep(0)  # let the others queue behind this one
        seen_on_return[sid] = sid in await asyncio.to_thread(
            _committed_replies, tmp_path / "haven.db"
        )

    try:
        await asyncio.gather(*(one(n) for n in range(40)))
    finally:
        await sqlite_store.trace(None)
        await sqlite_store.close()
    assert len(seen_on_return) == 40 and all(seen_on_return.values())
    commits = ran.count("COMMIT")
    assert 1 <= commits < 40, f"{commits} COMMITs for 40 transactions"
    assert _committed_replies(tmp_path / "haven.db") == set(seen_on_return)


async def test_a_failing_transaction_in_a_group_undoes_only_its_own_work(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Three transactions queue together; the middle one writes (and reads its write
    back), then raises. Its write is gone, the other two are committed (in one COMMIT),
    and only it sees the error."""
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    ran: list[str] = []
    await sqlite_store.trace(ran.append)

    async def write(sid: str, fail: bool) -> None:
        async with sqlite_store.transaction() as tx:
            await tx.save_reply(sid, "[]", now)
            assert await tx.get_reply(sid) == "[]"  # the write has reached the database
            await asyncio.sleep(0)
            if fail:
                raise KeyError("boom")

    try:
        results = await asyncio.gather(
            write("SMa", False), write("SMb", True), write("SMc", False), return_exceptions=True
        )
    finally:
        await sqlite_store.trace(None)
        await sqlite_store.close()
    assert results[0] is None and isinstance(results[1], KeyError) and results[2] is None
    assert _committed_replies(tmp_path / "haven.db") == {"SMa", "SMc"}
    assert ran.count("COMMIT") == 1, ran
    assert any(q.startswith("ROLLBACK TO") for q in ran), [q[:40] for q in ran]


async def test_reads_do_not_wait_behind_a_write_and_see_only_committed_data(
    sqlite_store: SqliteStore,
) -> None:
    """While a write transaction holds the write lock (mid-way, its row not yet
    committed), a reading() transaction runs at once on the read connection and sees the
    committed state only; a write inside reading() is refused; once the writer commits,
    the next read sees its row."""
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    async with sqlite_store.transaction() as tx:
        await tx.save_reply("SMold", "[]", now)
    written, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with sqlite_store.transaction() as tx:
            await tx.save_reply("SMnew", "[]", now)
            written.set()
            await release.wait()

    task = asyncio.create_task(writer())
    try:
        await asyncio.wait_for(written.wait(), 5)

        async def read() -> tuple[str | None, str | None]:
            async with sqlite_store.reading() as tx:
                return await tx.get_reply("SMold"), await tx.get_reply("SMnew")

        assert await asyncio.wait_for(read(), 2) == ("[]", None)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            async with sqlite_store.reading() as tx:
                await tx.save_reply("SMsneaky", "[]", now)
        release.set()
        await task
        assert (await read())[1] == "[]"
    finally:
        release.set()
        await task
        await sqlite_store.close()


async def test_acknowledged_only_after_the_wal_is_fsynced_while_the_next_work_goes_on(
    sqlite_store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement, COMMIT included, runs on the event loop's thread (no hop per
    statement); the fsync that makes a COMMIT durable runs on the commit thread, on the
    database's WAL file. A transaction's block does not return until that fsync has
    returned, though its row is already committed; meanwhile the next transaction runs and
    commits (the disk's wait does not hold up the next work), and it in turn waits for an
    fsync that began after its COMMIT."""
    import os
    import threading
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, tzinfo=UTC)
    real_fsync = os.fsync
    synced: list[tuple[str, str]] = []
    gate = threading.Event()

    def slow_fsync(fd: int) -> None:  # the disk, held until the test lets it go
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name))
        gate.wait(5)
        real_fsync(fd)

    where: list[tuple[str, str]] = []
    await sqlite_store.trace(lambda q: where.append((q, threading.current_thread().name)))
    monkeypatch.setattr(os, "fsync", slow_fsync)

    async def write(sid: str) -> None:
        async with sqlite_store.transaction(lock_key=sid) as tx:
            await tx.save_reply(sid, "[]", now)

    try:
        first = asyncio.create_task(write("SMfirst"))
        await _until(lambda: bool(synced))
        assert not first.done()
        assert _committed_replies(tmp_path / "haven.db") == {"SMfirst"}  # committed, unacked
        second = asyncio.create_task(write("SMsecond"))
        # The second commits while the first's fsync waits.
        await _until(lambda: _committed_replies(tmp_path / "haven.db") == {"SMfirst", "SMsecond"})
        assert not first.done() and not second.done()
        gate.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)
    finally:
        gate.set()
        await sqlite_store.trace(None)
        await sqlite_store.close()
    assert len(synced) >= 2  # the second COMMIT came after the first fsync began
    assert {path for path, _ in synced} == {str(tmp_path / "haven.db-wal")}
    assert all(name.startswith("haven-sqlite-commit") for _, name in synced), synced
    loop_thread = threading.current_thread().name
    assert [q for q, _ in where].count("COMMIT") == 2
    assert {name for _, name in where} == {loop_thread}, where


async def test_a_write_held_by_another_process_waits_without_stalling_the_loop(
    sqlite_store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a CLI command) holds SQLite's write lock: a transaction waits for
    it with the loop still turning (other tasks keep running), then goes through once the
    other commits; held past the busy timeout, the transaction fails with SQLite's own
    "locked" error and nothing of it is stored."""
    from datetime import UTC, datetime

    import bot.store.sqlite as backend

    now = datetime(2025, 1, 1, tzinfo=UTC)
    other = sqlite3.connect(tmp_path / "haven.db", isolation_level=None)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async def write(sid: str) -> None:
        async with sqlite_store.transaction() as tx:
            await tx.save_reply(sid, "[]", now)

    running = asyncio.create_task(ticker())
    try:
        other.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(write("SMwaits"))
        await asyncio.sleep(0.3)
        assert not waiting.done() and ticks >= 10, ticks  # waiting, and the loop is free
        other.execute("COMMIT")
        await asyncio.wait_for(waiting, 5)
        assert _committed_replies(tmp_path / "haven.db") == {"SMwaits"}

        monkeypatch.setattr(backend, "BUSY_TIMEOUT_MS", 200)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await asyncio.wait_for(write("SMgivesup"), 5)
        other.execute("ROLLBACK")
        await write("SMafter")  # the store is usable again
        assert _committed_replies(tmp_path / "haven.db") == {"SMwaits", "SMafter"}
    finally:
        running.cancel()
        other.close()
        await sqlite_store.close()


async def test_times_are_stored_fixed_width_so_text_order_is_time_order(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """SQLite stores times as text: a whole second keeps its six zeros and a time given in
    another zone is stored as UTC, so comparing the text compares the instants."""
    from datetime import UTC, datetime, timedelta, timezone

    whole = datetime(2025, 1, 1, tzinfo=UTC)
    elsewhere = datetime(2025, 1, 1, 1, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    async with sqlite_store.transaction() as tx:
        await tx.save_reply("SMwhole", "[]", whole)
        await tx.save_reply("SMzone", "[]", elsewhere)
    await sqlite_store.close()
    with sqlite3.connect(tmp_path / "haven.db") as other:
        stored = dict(other.execute("SELECT message_sid, created_at FROM replies"))
    assert stored == {
        "SMwhole": "2025-01-01T00:00:00.000000+00:00",
        "SMzone": "2024-12-31T23:00:00.000005+00:00",
    }

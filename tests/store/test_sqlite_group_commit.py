"""SQLite group commit (issue 11): transactions that queue for the write lock share one
COMMIT, each block returns only after its work is durable, and a failure undoes only the
failing transaction's work."""

from __future__ import annotations

import asyncio
import sqlite3
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

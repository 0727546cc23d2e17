"""Backends for the store contract suite: SQLite always (a file under tmp_path), PostgreSQL
when HAVEN_TEST_POSTGRES names a database. Each PostgreSQL test gets its own schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import Store, open_store
from bot.store.postgres import PostgresStore

PG_URL = os.environ.get("HAVEN_TEST_POSTGRES", "")
SECRET = "test-secret-key-that-is-long-enough-0123456789"


@dataclass
class Backend:
    name: str
    make: Callable[[], Store]  # a new, unopened Store on the same database (a "restart")
    raw_dump: Callable[[], Awaitable[bytes]]  # everything stored, as the database holds it


@pytest.fixture
def crypto() -> Crypto:
    return Crypto(SECRET)


def _sqlite_dump(path: Path) -> Callable[[], Awaitable[bytes]]:
    async def dump() -> bytes:
        # The main file and the write-ahead log, where fresh writes sit until a checkpoint.
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(p.read_bytes() for p in files if p.exists())

    return dump


def _pg_dump(schema: str) -> Callable[[], Awaitable[bytes]]:
    async def dump() -> bytes:
        conn = await asyncpg.connect(PG_URL)
        try:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema
            )
            parts: list[str] = []
            for t in tables:
                rows = await conn.fetch(f'SELECT t::text AS r FROM "{schema}"."{t[0]}" t')
                parts.extend(r["r"] for r in rows)
            return "\n".join(parts).encode()
        finally:
            await conn.close()

    return dump


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, crypto: Crypto
) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "haven.db"
        settings = Settings(database_url=f"sqlite:///{path}")
        yield Backend("sqlite", lambda: open_store(settings, crypto), _sqlite_dump(path))
        return
    if not PG_URL:
        pytest.skip("HAVEN_TEST_POSTGRES is not set")
    schema = f"haven_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Backend(
            "postgres",
            lambda: PostgresStore(PG_URL, crypto, schema=schema, max_size=12),
            _pg_dump(schema),
        )
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = backend.make()
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()

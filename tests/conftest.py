"""Shared fixtures: the real app on a temporary SQLite file served on 127.0.0.1, a
Twilio-signed client, and the store's backends (SQLite always, PostgreSQL when
HAVEN_TEST_POSTGRES names a database; each PostgreSQL test gets its own schema).
Plain helpers are in tests/helpers.py."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.crypto import Crypto
from bot.engine import Engine
from bot.events import Events
from bot.settings import Settings
from bot.store import Store, open_store
from bot.store.postgres import PostgresStore
from tests.helpers import (
    AUTH_TOKEN,
    PG_URL,
    PUBLIC_URL,
    TEST_SECRET,
    Backend,
    SignedPost,
    free_port,
    new_sid,
    secure_jar,
    sign,
)


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Test settings; a module or test marked `@pytest.mark.settings(name=value, ...)`
    gets those changes (instead of a fixture redefined under the same name)."""
    marker = request.node.get_closest_marker("settings")
    changes = dict(marker.kwargs) if marker is not None else {}
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'haven.db'}",
        secret_key=TEST_SECRET,
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        org_name="Harbor House",
        secret_file=tmp_path / ".haven-secret",
        tick_seconds=0.05,
    ).with_(**changes)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient:
    """The app on 127.0.0.1 with a cookie jar that keeps its Secure session cookie."""
    port = free_port()
    server = TestServer(app, host="127.0.0.1", port=port)
    made: TestClient = await aiohttp_client(server, cookie_jar=secure_jar(port))
    return made


@pytest.fixture
def signed_post(client: TestClient) -> SignedPost:
    async def post(path: str, params: Mapping[str, str], signature: str | None = None) -> Any:
        headers = {"X-Twilio-Signature": signature if signature is not None else sign(path, params)}
        return await client.post(path, data=dict(params), headers=headers)

    return post


@pytest.fixture
def text(signed_post: SignedPost) -> Callable[..., Awaitable[list[str]]]:
    """Send one SMS from a texter through the signed webhook; return Haven's reply texts."""

    async def send(
        body: str, number: str = "+15551230001", sid: str | None = None, **extra: str
    ) -> list[str]:
        params = {
            "MessageSid": sid or new_sid(),
            "AccountSid": "AC" + "0" * 32,
            "From": number,
            "To": "+15559990000",
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        response = await signed_post("/twilio/sms", params)
        assert response.status == 200, await response.text()
        assert response.content_type == "text/xml"
        root = ET.fromstring(await response.text())
        assert root.tag == "Response"
        return [m.text or "" for m in root.findall("Message")]

    return send


@pytest.fixture
def crypto() -> Crypto:
    return Crypto(TEST_SECRET)


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


@pytest.fixture
def engine(store: Store, crypto: Crypto, settings: Settings) -> Engine:
    """The real engine on each store backend (for queue policy, hand-offs and alarms)."""
    return Engine(settings, store, crypto.lookup_hash, Events())

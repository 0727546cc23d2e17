"""Two Haven web processes sharing one PostgreSQL (DESIGN.md section 8): one texter's
messages are handled one at a time across both, timers fire once, events cross over.

Runs when HAVEN_TEST_POSTGRES names a database (CI always sets it)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.engine import utcnow
from bot.events import Event
from bot.keys import ENGINE, EVENTS, STORE
from bot.settings import Settings
from tests.helpers import new_sid, sign

PG_URL = os.environ.get("HAVEN_TEST_POSTGRES", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="HAVEN_TEST_POSTGRES is not set"),
]
NUMBER = "+15551239999"


@pytest.fixture
async def pg_settings(settings: Settings) -> AsyncIterator[Settings]:
    schema = f"haven_e2e_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield settings.with_(database_url=f"{PG_URL}{sep}search_path={schema}")
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest.fixture
async def two_processes(
    pg_settings: Settings, aiohttp_client: Any
) -> tuple[TestClient, TestClient]:
    """Two apps on one PostgreSQL schema. pg_settings comes first so that it is torn down
    last: the schema is dropped only after both apps (and their background work) stop."""
    first = await aiohttp_client(create_app(pg_settings))
    second = await aiohttp_client(create_app(pg_settings))
    return first, second


async def send(client: TestClient, body: str, number: str = NUMBER) -> int:
    params = {"MessageSid": new_sid(), "From": number, "To": "+15559990000", "Body": body}
    response = await client.post(
        "/twilio/sms", data=params, headers={"X-Twilio-Signature": sign("/twilio/sms", params)}
    )
    return response.status


async def test_one_texter_across_two_processes_loses_nothing(
    two_processes: tuple[TestClient, TestClient],
) -> None:
    """Twelve texts at once, alternating between processes: every one stored in one
    conversation, which ends exactly where the same texts sent one by one end."""
    first, second = two_processes
    one_by_one = "+15551238888"
    for body in ["hi", *(f"part {i}" for i in range(12))]:
        assert await send(first, body, one_by_one) == 200
    assert await send(first, "hi") == 200
    statuses = await asyncio.gather(
        *(send(first if i % 2 else second, f"part {i}") for i in range(12))
    )
    assert statuses == [200] * 12
    async with first.app[STORE].transaction() as tx:
        stats = await tx.stats()
        sequential, concurrent = sorted(await tx.list_conversations(), key=lambda c: c.id)
        transcripts = [
            [(m.direction, m.status) for m in await tx.list_messages(c.id)]
            for c in (sequential, concurrent)
        ]
    assert stats["conversations"] == 2 and stats["texters"] == 2
    assert stats["messages_in"] == 26
    assert (concurrent.state, concurrent.flow) == (sequential.state, sequential.flow)
    assert transcripts[0] == transcripts[1]


async def test_a_timer_fires_once_across_processes(
    two_processes: tuple[TestClient, TestClient],
) -> None:
    """Both processes see the nudge due at once; exactly one nudge is queued."""
    first, second = two_processes
    await send(first, "hi")
    await send(first, "yes")
    later = utcnow() + timedelta(minutes=11)
    fired = await asyncio.gather(
        first.app[ENGINE].run_timers(later), second.app[ENGINE].run_timers(later)
    )
    assert sum(fired) == 1
    async with first.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations()
        queued = [
            m
            for m in await tx.list_messages(conv.id)
            if m.direction == "out" and m.author == "haven" and m.status != "replied"
        ]
    assert len(queued) == 1


async def test_events_cross_processes(two_processes: tuple[TestClient, TestClient]) -> None:
    """An event published in one process reaches a dashboard subscriber in the other."""
    first, second = two_processes
    await asyncio.sleep(0.3)  # let both LISTEN connections start
    async with second.app[EVENTS].subscribe() as inbox:
        first.app[EVENTS].publish(Event("queue", {"probe": 1}))
        event = await asyncio.wait_for(inbox.get(), 5)
    assert event.kind == "queue" and event.data == {"probe": 1}

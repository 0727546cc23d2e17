"""The inbound webhook's hot path (issue 11): what one ordinary message costs the database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import STORE
from bot.settings import Settings
from bot.store.sqlite import SqliteStore
from tests.helpers import new_sid, sign

NUMBER = "+15551230077"
# Every statement SQLite runs for one ordinary inbound message (a texter mid-intake
# answering a question), BEGIN and COMMIT included. main before issue 11 ran 15: six reads
# the engine now makes in one, existence checks the foreign keys make anyway, a texter
# row rewritten unchanged.
ORDINARY_MESSAGE_STATEMENTS = 8


async def _text(client: TestClient, body: str) -> list[str]:
    params = {
        "MessageSid": new_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": NUMBER,
        "To": "+15559990000",
        "Body": body,
        "NumMedia": "0",
    }
    response = await client.post(
        "/twilio/sms", data=params, headers={"X-Twilio-Signature": sign("/twilio/sms", params)}
    )
    assert response.status == 200
    return [m.text or "" for m in ET.fromstring(await response.text()).findall("Message")]


async def test_an_ordinary_inbound_message_runs_few_sql_statements(
    aiohttp_client: Any, settings: Settings
) -> None:
    """One ordinary inbound message on SQLite (a texter who said YES answering "what do you
    need?") runs at most ORDINARY_MESSAGE_STATEMENTS statements, counted by SQLite's own
    trace callback on the store's connection (no background work running), and still gets
    its reply. main before issue 11 ran 15 for the same message."""
    client = await aiohttp_client(create_app(settings, run_background=False))
    store = client.app[STORE]
    assert isinstance(store, SqliteStore)
    assert await _text(client, "hi")
    assert await _text(client, "yes")
    ran: list[str] = []
    await store.trace(ran.append)
    replies = await _text(client, "1")
    await store.trace(None)
    assert replies, "the answer to a question gets the next question"
    assert ran[0].startswith("BEGIN") and ran[-1] == "COMMIT", ran
    assert len(ran) <= ORDINARY_MESSAGE_STATEMENTS, "\n".join(ran)

"""Erasure at Twilio of the replies Haven gives inside the webhook's TwiML (issue 10), end to
end on both backends: the real app answers the signed webhook; each <Message> carries an
action URL (Haven's /twilio/status with an opaque reference); the test plays Twilio, which
sends each <Message> (the local fake Twilio REST server keeps its body under a new SID) and
posts that SID, signed, to the action URL; then EXIT or DELETE erases the conversation and
the app's own outbox redacts every body Twilio keeps, through the fake's REST API, including
SIDs that arrive after the erasure."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import CRYPTO, STORE
from bot.settings import Settings
from bot.sms.webhook import REPLY_REF
from tests.helpers import PG_URL, PUBLIC_URL, new_sid, pg_schema_url, sign
from tests.sms.fake_twilio import FakeTwilio
from tests.sms.test_outbox import _until

NUMBER = "+15551237001"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def twilio_app_settings(
    request: pytest.FixtureRequest, settings: Settings, fake_twilio: FakeTwilio
) -> AsyncIterator[Settings]:
    """The app's settings with a Twilio account at the fake, on SQLite or PostgreSQL."""
    settings = settings.with_(
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_from_number="+15005550006",
        twilio_api_base=fake_twilio.base_url,
    )
    if request.param == "sqlite":
        yield settings
        return
    if not PG_URL:
        pytest.skip("HAVEN_TEST_POSTGRES is not set")
    async with pg_schema_url("haven_redact") as url:
        yield settings.with_(database_url=url)


@pytest.fixture
async def app_client(twilio_app_settings: Settings, aiohttp_client: Any) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(twilio_app_settings))
    return client


class Twilio:
    """The test as Twilio: delivers texts to the webhook and sends the TwiML it gets back."""

    def __init__(self, client: TestClient, fake: FakeTwilio) -> None:
        self.client, self.fake = client, fake

    async def text(self, body: str) -> tuple[str, list[tuple[str, str]]]:
        """A texter's message (Twilio keeps its body too); its SID and the (text, action URL)
        of each <Message> in Haven's answer."""
        sid = new_sid()
        self.fake.inbound(sid, body)
        params = {"MessageSid": sid, "From": NUMBER, "To": "+15559990000", "Body": body}
        response = await self.client.post(
            "/twilio/sms",
            data=params,
            headers={"X-Twilio-Signature": sign("/twilio/sms", params, self.fake.auth_token)},
        )
        assert response.status == 200
        root = ET.fromstring(await response.text())
        return sid, [(m.text or "", m.get("action", "")) for m in root.findall("Message")]

    async def send(self, text: str, action: str) -> str:
        """Send one <Message> (the fake keeps its body under a new SID), then post the SID,
        signed as Twilio signs, to the message's action URL."""
        sid = self.fake.twiml_message(text)
        await self.report(sid, action)
        return sid

    async def report(self, sid: str, action: str, signature: str | None = None) -> int:
        path = action.removeprefix(PUBLIC_URL)
        params = {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": self.fake.account_sid}
        response = await self.client.post(
            path,
            data=params,
            headers={"X-Twilio-Signature": signature or sign(path, params, self.fake.auth_token)},
        )
        await response.read()
        return response.status


async def _redacted(fake: FakeTwilio, sids: set[str], seconds: float = 10.0) -> None:
    """Wait for the app's outbox to have redacted every one of `sids` at the fake."""
    try:
        await _until(lambda: sids <= set(fake.redacted), seconds)
    except TimeoutError:
        pytest.fail(f"not redacted: {sids - set(fake.redacted)}")
    assert all(fake.body_of(sid) == "" for sid in sids)


def _check_action(action: str) -> None:
    """An absolute URL to Haven's status route whose reference is opaque."""
    match = re.fullmatch(re.escape(PUBLIC_URL) + r"/twilio/status\?ref=(.+)", action)
    assert match and REPLY_REF.match(match[1]), action
    assert NUMBER[2:] not in action


async def test_exit_redacts_the_twiml_replies_at_twilio(
    app_client: TestClient, fake_twilio: FakeTwilio
) -> None:
    """Replies whose SIDs Twilio reported before EXIT are recorded on their messages and
    redacted when EXIT erases the conversation; the reply to EXIT itself (never stored)
    is redacted when its SID arrives; so are the texter's own messages. A callback with a
    bad signature changes nothing."""
    twilio = Twilio(app_client, fake_twilio)
    hi, replies = await twilio.text("hi")
    assert replies
    sids = set()
    for text, action in replies:
        _check_action(action)
        sids.add(await twilio.send(text, action))
    async with app_client.app[STORE].transaction() as tx:
        conv = await tx.get_conversation(1)
        stored = {m.provider_sid for m in await tx.list_messages(conv.id) if m.direction == "out"}
    assert stored == sids  # each reply's SID is on its message
    forged = fake_twilio.twiml_message("not ours")
    assert await twilio.report(forged, replies[0][1], signature="bad") == 403
    exit_sid, exit_replies = await twilio.text("EXIT")
    ((exit_text, exit_action),) = exit_replies
    _check_action(exit_action)
    exit_reply_sid = await twilio.send(exit_text, exit_action)
    await _redacted(fake_twilio, sids | {hi, exit_sid, exit_reply_sid})
    assert forged not in fake_twilio.redacted


async def test_sids_that_arrive_after_delete_are_redacted_at_once(
    app_client: TestClient, fake_twilio: FakeTwilio
) -> None:
    """Twilio's callbacks can be late: the replies to "hi" and to the first DELETE report
    their SIDs only after the second DELETE erased everything. Each is redacted at once
    (the reference names no message any more), as is the DELETE confirmation."""
    twilio = Twilio(app_client, fake_twilio)
    inbound, pending = set(), []
    for body in ("hi", "DELETE", "DELETE"):
        sid, replies = await twilio.text(body)
        inbound.add(sid)
        pending.extend(replies)
    async with app_client.app[STORE].transaction() as tx:
        assert await tx.get_texter_by_hash(app_client.app[CRYPTO].lookup_hash(NUMBER)) is None
    sids = {await twilio.send(text, action) for text, action in pending}
    assert len(sids) == len(pending) >= 3
    await _redacted(fake_twilio, sids | inbound)

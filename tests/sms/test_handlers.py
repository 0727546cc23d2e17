"""The Twilio webhooks at the HTTP boundary: signatures, malformed input, odd messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.keys import STORE
from bot.settings import Settings
from tests.helpers import SignedPost, new_sid, sign

Text = Callable[..., Awaitable[list[str]]]


def sms(body: str = "hi", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": new_sid(),
        "From": "+15551230002",
        "To": "+15559990000",
        "Body": body,
        **extra,
    }


async def counts(client: TestClient) -> dict[str, int]:
    async with client.app[STORE].transaction() as tx:
        return await tx.stats()


async def test_bad_signature_is_refused_and_changes_nothing(
    client: TestClient, signed_post: SignedPost
) -> None:
    """A signature made with another token gets 403 and stores nothing."""
    params = sms()
    response = await signed_post("/twilio/sms", params, signature=sign("/twilio/sms", params, "x"))
    assert response.status == 403
    assert (await counts(client))["messages_in"] == 0


async def test_missing_signature_is_refused(client: TestClient) -> None:
    """No X-Twilio-Signature header at all: 403."""
    response = await client.post("/twilio/sms", data=sms())
    assert response.status == 403
    assert (await counts(client))["texters"] == 0


async def test_signature_over_another_path_is_refused(
    client: TestClient, signed_post: SignedPost
) -> None:
    """A valid signature for /twilio/status does not open /twilio/sms."""
    params = sms()
    response = await signed_post("/twilio/sms", params, signature=sign("/twilio/status", params))
    assert response.status == 403


async def test_signed_query_string_is_part_of_the_url(
    client: TestClient,
) -> None:
    """Twilio signs the full URL, query included; so do we."""
    params = sms()
    good = sign("/twilio/sms?site=main", params)
    response = await client.post(
        "/twilio/sms?site=main", data=params, headers={"X-Twilio-Signature": good}
    )
    assert response.status == 200
    bad = await client.post(
        "/twilio/sms?site=other", data=sms(), headers={"X-Twilio-Signature": good}
    )
    assert bad.status == 403


async def test_malformed_but_signed_gets_400_not_500(
    client: TestClient, signed_post: SignedPost
) -> None:
    """No From, a From that is no phone number, no MessageSid, a bad NumMedia or a
    too-long body: 400, nothing stored."""
    for params in (
        {"MessageSid": new_sid(), "Body": "hi"},
        sms(From="88788"),
        sms(From="abcdef"),
        sms(From="+0123"),
        {"From": "+15551230002", "Body": "hi"},
        sms(NumMedia="lots"),
        sms("x" * 1601),
    ):
        response = await signed_post("/twilio/sms", params)
        assert response.status == 400, params
    assert (await counts(client))["messages_in"] == 0


async def test_unknown_params_empty_body_and_unicode_are_fine(
    client: TestClient, text: Text
) -> None:
    """Extra fields are ignored; an empty body and any Unicode are answered."""
    assert await text("", FromCity="SPRINGFIELD", SmsStatus="received", ApiVersion="2010-04-01")
    assert await text("🙏 ayúdame 你好 \u200b", number="+15551230003")
    assert await text("x" * 1600, number="+15551230004")
    assert (await counts(client))["messages_in"] == 3


async def test_media_only_message_is_kept_and_explained(client: TestClient, text: Text) -> None:
    """A picture with no words: stored with its content type, and we say we read text only."""
    await text("hi")
    reply = await text(
        "", NumMedia="1", MediaContentType0="image/jpeg", MediaUrl0="https://api.twilio.com/m/1"
    )
    assert any("text" in r.lower() for r in reply)
    async with client.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations()
        inbound = [m for m in await tx.list_messages(conv.id) if m.direction == "in"]
    assert inbound[-1].media_types == ["image/jpeg"]


async def test_nothing_to_say_is_an_empty_response(
    client: TestClient, signed_post: SignedPost, text: Text
) -> None:
    """After STOP, Haven answers with an empty <Response/> (TwiML, 200)."""
    await text("hi")
    await text("STOP")
    response = await signed_post("/twilio/sms", {**sms("anyone there?"), "From": "+15551230001"})
    assert response.status == 200
    root = ET.fromstring(await response.text())
    assert root.tag == "Response" and list(root) == []


async def test_status_callback_is_recorded_idempotently(
    client: TestClient, signed_post: SignedPost, text: Text
) -> None:
    """Delivery callbacks update the message; repeats and late 'sent' change nothing."""
    from bot.engine import utcnow
    from bot.store.base import Message

    await text("hi")
    async with client.app[STORE].transaction() as tx:
        (conv,) = await tx.list_conversations()
        message = await tx.add_message(Message(conv.id, "out", "hello", "haven", status="sending"))
        assert message.id is not None
        await tx.set_message_status(message.id, "sent", provider_sid="SMout0001")
    for status in ("delivered", "delivered", "sent"):
        response = await signed_post(
            "/twilio/status", {"MessageSid": "SMout0001", "MessageStatus": status}
        )
        assert response.status == 200
    async with client.app[STORE].transaction() as tx:
        stored = {m.id: m for m in await tx.list_messages(conv.id)}[message.id]
    assert stored.status == "delivered"
    unknown = await signed_post("/twilio/status", {"MessageSid": "SMnope", "MessageStatus": "sent"})
    assert unknown.status == 200
    bad = await signed_post("/twilio/status", {"MessageSid": "SMout0001", "MessageStatus": "??"})
    assert bad.status == 400
    for inbound in ("receiving", "received"):  # Twilio's word for our inbound messages
        ok = await signed_post("/twilio/status", {"MessageSid": "SMin1", "MessageStatus": inbound})
        assert ok.status == 200
    _ = utcnow


async def test_unsigned_requests_pass_only_without_a_token(
    aiohttp_client: Any, settings: Settings
) -> None:
    """With no TWILIO_AUTH_TOKEN in development, a laptop can post without signing."""
    client = await aiohttp_client(create_app(settings.with_(twilio_auth_token="")))
    response = await client.post("/twilio/sms", data=sms())
    assert response.status == 200


async def test_probes(client: TestClient) -> None:
    """healthz is alive, readyz sees the database, metrics speaks Prometheus."""
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    metrics = await (await client.get("/metrics")).text()
    assert "haven_messages_in_total" in metrics

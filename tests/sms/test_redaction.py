"""Erasure at Twilio: a quick exit, DELETE and retention also redact the bodies Twilio keeps
(POST Body="" to the message resource), through the outbox, retried, once per message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.settings import Settings
from bot.sms.outbox import OutboxWorker
from bot.sms.sender import TwilioSender
from bot.store.base import Message, Store
from tests.helpers import LATER, NOW, message, new_conversation, queue_text
from tests.sms.fake_twilio import FakeTwilio


@pytest.fixture
async def worker(
    outbox_store: Store, twilio: TwilioSender, store_settings: Settings
) -> AsyncIterator[OutboxWorker]:
    yield OutboxWorker(outbox_store, twilio, store_settings)


async def sent_conversation(store: Store, worker: OutboxWorker, phone: str) -> tuple[int, str]:
    """A conversation with one inbound text (SID known to the fake) and one sent reply."""
    conv = await new_conversation(store, phone)
    async with store.transaction() as tx:
        await tx.add_message(Message(conv, "in", "it's me", provider_sid="SMin" + phone[1:]))
    mid = await queue_text(store, conv, "we are here for you")
    assert await worker.run_once(NOW) == 1
    sid = (await message(store, conv, mid)).provider_sid
    assert sid is not None
    return conv, sid


async def test_quick_exit_redacts_the_bodies_twilio_keeps(
    outbox_store: Store, worker: OutboxWorker, fake_twilio: FakeTwilio
) -> None:
    """After EXIT purges a conversation, the next outbox pass asks Twilio to redact both
    its outbound and inbound messages (Body=""); Twilio's copies are blank, and later passes
    ask nothing more."""
    store = outbox_store
    conv, out_sid = await sent_conversation(store, worker, "+15551230011")
    fake_twilio.inbound("SMin15551230011", "it's me")
    async with store.transaction() as tx:
        await tx.purge_conversation(conv)
    await worker.run_once(LATER)
    assert sorted(fake_twilio.redacted) == sorted([out_sid, "SMin15551230011"])
    assert fake_twilio.body_of(out_sid) == "" and fake_twilio.body_of("SMin15551230011") == ""
    requests = len(fake_twilio.requests)
    await worker.run_once(LATER + timedelta(hours=1))
    assert len(fake_twilio.requests) == requests


async def test_delete_and_retention_redact_too(
    outbox_store: Store, worker: OutboxWorker, fake_twilio: FakeTwilio
) -> None:
    """DELETE (delete_texter) and retention (purge_before) record the SIDs before the rows
    go, and the outbox redacts them."""
    store = outbox_store
    conv_a, sid_a = await sent_conversation(store, worker, "+15551230012")
    conv_b, sid_b = await sent_conversation(store, worker, "+15551230013")
    async with store.transaction() as tx:
        texter = (await tx.get_conversation(conv_a)).texter_id
        await tx.delete_texter(texter)
        conv = await tx.get_conversation(conv_b)
        conv.state, conv.closed_at, conv.updated_at = "closed", NOW, NOW
        await tx.save_conversation(conv)
        assert await tx.purge_before(NOW + timedelta(days=1)) == 1
    await worker.run_once(LATER)
    assert {sid_a, sid_b} <= set(fake_twilio.redacted)


async def test_a_failed_redaction_is_retried_until_done(
    outbox_store: Store, worker: OutboxWorker, fake_twilio: FakeTwilio
) -> None:
    """A 500 from Twilio leaves a redaction pending with a backoff; a later pass redacts
    each message once."""
    store = outbox_store
    conv, sid = await sent_conversation(store, worker, "+15551230014")
    fake_twilio.inbound("SMin15551230014", "it's me")
    async with store.transaction() as tx:
        await tx.purge_conversation(conv)
    fake_twilio.fail_next(2, 500)  # both of its messages' redactions fail once
    await worker.run_once(LATER)
    assert fake_twilio.body_of(sid) != ""
    await worker.run_once(LATER)  # not due yet: backoff
    await worker.run_once(LATER + timedelta(hours=1))
    assert fake_twilio.body_of(sid) == "" and fake_twilio.body_of("SMin15551230014") == ""
    assert sorted(fake_twilio.redacted) == sorted([sid, "SMin15551230014"])


async def test_a_message_twilio_does_not_know_is_not_retried(
    outbox_store: Store, worker: OutboxWorker, fake_twilio: FakeTwilio
) -> None:
    """An inbound SID Twilio answers 404 for (nothing to redact) is done, not retried."""
    store = outbox_store
    conv = await new_conversation(store, "+15551230015")
    async with store.transaction() as tx:
        await tx.add_message(Message(conv, "in", "hi", provider_sid="SMunknown1"))
        await tx.purge_conversation(conv)
    await worker.run_once(LATER)
    await worker.run_once(LATER + timedelta(hours=1))
    assert [r.status for r in fake_twilio.requests] == [404]

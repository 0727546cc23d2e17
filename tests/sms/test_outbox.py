"""The outbox worker with the real SQLite store and the real twilio SDK against a fake Twilio."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bot.events import Event, Events
from bot.settings import Settings
from bot.sms.outbox import OutboxWorker, backoff_delay
from bot.sms.sender import ConsoleSender, TwilioSender
from bot.store.base import Store
from tests.helpers import LATER, NOW, message, new_conversation, open_outbox_store, queue_text
from tests.sms.fake_twilio import FakeTwilio

# The twilio SDK still calls aiohttp APIs deprecated for aiohttp 4 (BasicAuth, auth=).


def worker(
    store: Store,
    sender: TwilioSender | ConsoleSender,
    settings: Settings,
    events: Events | None = None,
    *,
    batch: int = 20,
    max_attempts: int = 10,
    sending_timeout: float = 300.0,
) -> OutboxWorker:
    return OutboxWorker(
        store,
        sender,
        settings,
        events,
        batch=batch,
        max_attempts=max_attempts,
        sending_timeout=sending_timeout,
        rng=random.Random(7),
    )


# -- backoff ---------------------------------------------------------------------------
def test_backoff_grows_is_jittered_and_capped() -> None:
    """Delays double per attempt, stay within [half, full] of nominal, and stop at the cap."""
    rng = random.Random(1)
    for attempt, nominal in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (20, 300.0)]:
        delays = [backoff_delay(attempt, 2.0, 300.0, rng) for _ in range(50)]
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert len(set(delays)) > 1  # jittered, not fixed
    with pytest.raises(ValueError):
        backoff_delay(0)


# -- sending ---------------------------------------------------------------------------
async def test_a_programs_texter_gets_texts_from_the_number_they_wrote_to(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """Two programs share one Haven: a text to a texter of the partner program goes from
    that program's number; a default-program texter's from the configured number."""
    store = outbox_store
    partner = await new_conversation(store, "+15551230043")
    default = await new_conversation(store, "+15551230044")
    async with store.transaction() as tx:
        program = await tx.add_program(
            "freedom", "Freedom Network", "+15557770000", None, None, False, NOW
        )
        await tx.set_conversation_program(partner, program.id)
    await queue_text(store, partner, "from the partner program")
    await queue_text(store, default, "from the default program")
    assert await worker(store, twilio, store_settings).run_once(NOW) == 2
    sent = {m.form["To"]: m.form.get("From") for m in fake_twilio.messages}
    assert sent == {"+15551230043": "+15557770000", "+15551230044": "+15005550006"}


async def test_queued_text_is_sent_once_with_sid_recorded(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """A queued text goes out once, the message records 'sent' and Twilio's SID, the status
    callback URL is the public one, dashboards get status events, and a second pass sends
    nothing more."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "hello from haven")
    events = Events()
    w = worker(store, twilio, store_settings, events)
    async with events.subscribe() as queue:
        assert await w.run_once(NOW) == 1
        assert await w.run_once(LATER) == 0
        seen = [queue.get_nowait() for _ in range(queue.qsize())]
    (sent,) = fake_twilio.messages
    assert sent.form["Body"] == "hello from haven" and sent.form["To"] == "+15551230042"
    assert sent.form["StatusCallback"] == "https://haven.example.org/twilio/status"
    got = await message(store, conv, mid)
    assert (got.status, got.provider_sid) == ("sent", sent.sid)
    assert seen == [
        Event("status", {"conversation_id": conv, "message_id": mid, "status": "sending"}),
        Event("status", {"conversation_id": conv, "message_id": mid, "status": "sent"}),
    ]


async def test_server_error_is_retried_later_and_sent_once(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """A 500 puts the text back in the queue with a backoff time: not retried before it is
    due, then sent exactly once."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "retry me")
    fake_twilio.fail_next(1, 500)
    w = worker(store, twilio, store_settings)
    assert await w.run_once(NOW) == 1
    assert (await message(store, conv, mid)).status == "queued"
    assert await w.run_once(NOW) == 0  # backoff: not due yet
    assert await w.run_once(LATER) == 1
    assert len(fake_twilio.requests) == 2 and len(fake_twilio.messages) == 1
    got = await message(store, conv, mid)
    assert (got.status, got.provider_sid) == ("sent", fake_twilio.messages[0].sid)


async def test_rate_limit_is_retried(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """A 429 is retried like a 5xx."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "slow down")
    fake_twilio.fail_next(2, 429)
    w = worker(store, twilio, store_settings)
    for hours in range(3):
        await w.run_once(NOW + timedelta(hours=hours))
    assert len(fake_twilio.requests) == 3 and len(fake_twilio.messages) == 1
    assert (await message(store, conv, mid)).status == "sent"


async def test_permanent_error_fails_visibly_and_is_not_retried(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """21610 (the texter sent STOP to the carrier) marks the message failed with that code,
    and nothing is tried again."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "you there?")
    fake_twilio.fail_next(1, 400, 21610)
    w = worker(store, twilio, store_settings)
    assert await w.run_once(NOW) == 1
    assert await w.run_once(LATER) == 0
    got = await message(store, conv, mid)
    assert (got.status, got.error_code, got.provider_sid) == ("failed", "21610", None)
    assert len(fake_twilio.requests) == 1


async def test_gives_up_after_max_attempts(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """A text that keeps meeting 5xx is failed (visibly, with the last code) after
    max_attempts tries, not retried for ever."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "outage")
    fake_twilio.fail_next(10, 503, 20503)
    w = worker(store, twilio, store_settings, max_attempts=3)
    for hours in range(6):
        await w.run_once(NOW + timedelta(hours=hours))
    assert len(fake_twilio.requests) == 3
    got = await message(store, conv, mid)
    assert (got.status, got.error_code) == ("failed", "20503")


async def test_connection_refused_is_retried(
    outbox_store: Store, store_settings: Settings, closed_port_url: str
) -> None:
    """With Twilio unreachable the text stays queued for a retry rather than failing."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "anyone?")
    sender = TwilioSender(store_settings.with_(twilio_api_base=closed_port_url))
    try:
        assert await worker(store, sender, store_settings).run_once(NOW) == 1
    finally:
        await sender.close()
    got = await message(store, conv, mid)
    assert got.status == "queued"


async def test_one_conversation_keeps_its_order_through_a_retry(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """If the first of two texts to a texter must be retried, the second waits for it, so
    they arrive in the order written."""
    store = outbox_store
    conv = await new_conversation(store)
    first = await queue_text(store, conv, "first")
    second = await queue_text(store, conv, "second")
    fake_twilio.fail_next(1, 500)
    w = worker(store, twilio, store_settings)
    await w.run_once(NOW)
    assert fake_twilio.messages == []
    assert (await message(store, conv, second)).status == "queued"
    await w.run_once(LATER)
    assert [m.form["Body"] for m in fake_twilio.messages] == ["first", "second"]
    assert (await message(store, conv, first)).status == "sent"


async def test_two_workers_racing_never_send_one_text_twice(
    outbox_store: Store, store_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    """Two workers, each with its own store connection as separate processes would have,
    pass over the same outbox at once: every text goes out exactly once."""
    store = outbox_store
    bodies = []
    for i in range(12):
        conv = await new_conversation(store, f"+1555000{i:04d}")
        for j in range(2):
            bodies.append(f"text {i}-{j}")
            await queue_text(store, conv, bodies[-1])
    other = await open_outbox_store(store_settings)
    senders = [TwilioSender(store_settings), TwilioSender(store_settings)]
    try:
        workers = [
            worker(store, senders[0], store_settings, batch=5),
            worker(other, senders[1], store_settings, batch=5),
        ]
        for _ in range(10):
            await asyncio.gather(*(w.run_once(NOW) for w in workers))
    finally:
        for sender in senders:
            await sender.close()
        await other.close()
    sent = sorted(m.form["Body"] for m in fake_twilio.messages)
    assert sent == sorted(bodies)
    assert len(fake_twilio.requests) == len(bodies)


async def test_console_sender_through_the_outbox(
    outbox_store: Store, store_settings: Settings
) -> None:
    """With no Twilio account the console sender prints the text and the message is 'sent'
    with a console SID, so the product runs on a laptop."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "hi from the console")
    out = io.StringIO()
    console = ConsoleSender(stream=out)
    await worker(store, console, store_settings).run_once(NOW)
    assert out.getvalue() == "[to texter …42] hi from the console\n"
    got = await message(store, conv, mid)
    assert got.status == "sent" and (got.provider_sid or "").startswith("SMconsole")


async def test_wake_sends_without_waiting_for_the_tick(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """With an hour-long tick, a text that was not yet due at the loop's first pass goes out
    as soon as wake() is called, and the loop stops cleanly when asked."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "wake up")  # due at NOW
    first_pass = asyncio.Event()
    times = iter([NOW - timedelta(days=1)])  # the first pass sees nothing due

    def clock() -> datetime:
        first_pass.set()
        return next(times, LATER)

    events = Events()
    w = OutboxWorker(store, twilio, store_settings.with_(tick_seconds=3600.0), events, clock=clock)
    async with events.subscribe() as queue, w.running():
        await first_pass.wait()
        w.wake()
        while True:
            # The timeout only guards against a hang; the tick alone would take an hour.
            event = await asyncio.wait_for(queue.get(), timeout=30)
            if event.data.get("status") == "sent":
                break
    assert event.data["message_id"] == mid
    assert len(fake_twilio.messages) == 1


async def _die_mid_send(store: Store, conversation_id: int) -> int:
    """Queue a text and claim it as a worker does just before its network call, then never
    record an outcome: what a crash mid-send leaves behind."""
    mid = await queue_text(store, conversation_id, "were we sent?")
    async with store.transaction() as tx:
        (item,) = await tx.claim_outbox(NOW)
        await tx.set_message_status(item.message_id, "sending")
    return mid


async def test_item_left_sending_by_a_dead_worker_is_never_resent(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """At-most-once: Twilio has no idempotency key, so a text whose send was interrupted is
    not sent again by later passes, however late."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await _die_mid_send(store, conv)
    w = worker(store, twilio, store_settings)
    assert await w.run_once(LATER) == 0
    assert await w.run_once(LATER + timedelta(days=1)) == 0
    assert fake_twilio.requests == []
    assert (await message(store, conv, mid)).status in ("sending", "uncertain")


async def test_interrupted_send_is_shown_uncertain_after_the_timeout(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """A text left 'sending' longer than sending_timeout becomes visibly 'uncertain' with
    code 'interrupted' (and a status event), rather than sitting in 'sending' for ever."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await _die_mid_send(store, conv)
    events = Events()
    w = worker(store, twilio, store_settings, events, sending_timeout=300)
    await w.run_once(NOW + timedelta(seconds=60))
    assert (await message(store, conv, mid)).status == "sending"  # maybe still in flight
    async with events.subscribe() as queue:
        await w.run_once(NOW + timedelta(seconds=600))
        event = queue.get_nowait()
    got = await message(store, conv, mid)
    assert (got.status, got.error_code) == ("uncertain", "interrupted")
    assert event.data == {"conversation_id": conv, "message_id": mid, "status": "uncertain"}
    assert fake_twilio.requests == []


# -- unknown outcome: sent once means once -----------------------------------------------
async def test_timed_out_send_is_uncertain_and_never_resent(
    outbox_store: Store, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """Twilio accepts the POST but answers after 30 s; the client gives up after its
    per-request timeout. The text may have gone out, so it is marked 'uncertain' (visible to
    the advocate, code 'timeout') and later passes never send it again: one message at
    Twilio, however long we wait."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await queue_text(store, conv, "did this arrive?")
    fake_twilio.delay_next(1, 30.0)
    events = Events()
    sender = TwilioSender(store_settings.with_(twilio_timeout=0.5))
    try:
        w = worker(store, sender, store_settings, events)
        async with events.subscribe() as queue:
            assert await w.run_once(NOW) == 1
            seen = [queue.get_nowait().data["status"] for _ in range(queue.qsize())]
        for later in (LATER, LATER + timedelta(days=1)):
            assert await w.run_once(later) == 0
    finally:
        await sender.close()
    assert len(fake_twilio.requests) == 1 and len(fake_twilio.messages) == 1
    got = await message(store, conv, mid)
    assert (got.status, got.error_code) == ("uncertain", "timeout")
    assert seen == ["sending", "uncertain"]


async def test_uncertain_text_does_not_hold_the_conversations_later_texts(
    outbox_store: Store, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """After a timed-out first text, the conversation's second text still goes out (once)."""
    store = outbox_store
    conv = await new_conversation(store)
    first = await queue_text(store, conv, "first")
    second = await queue_text(store, conv, "second")
    fake_twilio.delay_next(1, 30.0)
    sender = TwilioSender(store_settings.with_(twilio_timeout=0.5))
    try:
        w = worker(store, sender, store_settings)
        await w.run_once(NOW)
        await w.run_once(LATER)
    finally:
        await sender.close()
    assert [m.form["Body"] for m in fake_twilio.messages] == ["first", "second"]
    assert (await message(store, conv, first)).status == "uncertain"
    assert (await message(store, conv, second)).status == "sent"


# -- concurrency across conversations -----------------------------------------------------
async def _until(predicate: Callable[[], bool], within: float) -> float:
    """Seconds until predicate() holds, polling; raises TimeoutError after `within`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return loop.time() - started
            await asyncio.sleep(0.01)


async def test_a_hung_send_does_not_delay_other_conversations(
    outbox_store: Store, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """One conversation's request hangs at Twilio (answer after 30 s, client timeout 3 s).
    Another conversation's text, queued meanwhile, is delivered at once (well under the
    timeout), while the hung conversation's own second text waits its turn: order within one
    conversation, concurrency across them."""
    store = outbox_store
    hung, other = "+15551230001", "+15551230002"
    fake_twilio.delay_to(hung, 30.0)
    conv_a = await new_conversation(store, hung)
    conv_b = await new_conversation(store, other)
    settings = store_settings.with_(tick_seconds=3600.0, twilio_timeout=3.0)
    sender = TwilioSender(settings)
    w = OutboxWorker(store, sender, settings)
    bodies = lambda: [r.form["Body"] for r in fake_twilio.requests]  # noqa: E731
    try:
        async with w.running():
            await queue_text(store, conv_a, "a1")
            await queue_text(store, conv_a, "a2")
            w.wake()
            await _until(lambda: "a1" in bodies(), within=5)
            await queue_text(store, conv_b, "b1")
            w.wake()
            waited = await _until(lambda: "b1" in bodies(), within=5)
            assert waited < 1.5
            assert "a2" not in bodies()  # still behind the hung a1
            await _until(lambda: "a2" in bodies(), within=10)
    finally:
        await sender.close()
    assert bodies() == ["a1", "b1", "a2"]
    assert (await message(store, conv_b, 3)).status == "sent"


async def test_at_most_the_configured_number_of_sends_are_in_flight(
    outbox_store: Store, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """With every request hanging, 12 conversations' texts put at most
    outbox_concurrency (here 4) requests in flight at once."""
    store = outbox_store
    for i in range(12):
        number = f"+1555000{i:04d}"
        fake_twilio.delay_to(number, 30.0)
        await queue_text(store, await new_conversation(store, number), f"t{i}")
    settings = store_settings.with_(tick_seconds=0.05, twilio_timeout=1.0, outbox_concurrency=4)
    sender = TwilioSender(settings)
    try:
        async with OutboxWorker(store, sender, settings).running():
            await _until(lambda: len(fake_twilio.requests) >= 4, within=5)
            await asyncio.sleep(0.5)  # several ticks: nothing more may start
            assert len(fake_twilio.requests) == 4
    finally:
        await sender.close()


# -- recovery at start-up ---------------------------------------------------------------
async def test_text_left_sending_by_a_killed_process_is_recovered_at_start_up(
    outbox_store: Store, twilio: TwilioSender, fake_twilio: FakeTwilio, store_settings: Settings
) -> None:
    """A process was killed (kill -9) mid-send 5 s before this one started. At start-up the
    text it left 'sending' is marked 'uncertain' (code 'interrupted': it may have gone out),
    never resent, and the conversation's later text goes out at once rather than after the
    300 s the stale check would wait."""
    store = outbox_store
    conv = await new_conversation(store)
    mid = await _die_mid_send(store, conv)
    after = await queue_text(store, conv, "after the crash")
    started = NOW + timedelta(seconds=5)
    settings = store_settings.with_(tick_seconds=3600.0)
    events = Events()
    w = OutboxWorker(store, twilio, settings, events, clock=lambda: started)
    async with events.subscribe() as queue, w.running():
        await _until(lambda: len(fake_twilio.messages) == 1, within=5)
        await _until(lambda: queue.qsize() >= 3, within=5)
        seen = [queue.get_nowait().data for _ in range(queue.qsize())]
    assert [m.form["Body"] for m in fake_twilio.requests] == ["after the crash"]
    got = await message(store, conv, mid)
    assert (got.status, got.error_code) == ("uncertain", "interrupted")
    assert (await message(store, conv, after)).status == "sent"
    assert {"conversation_id": conv, "message_id": mid, "status": "uncertain"} in seen

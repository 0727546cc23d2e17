"""The store contract: every backend keeps it (SQLite always, PostgreSQL when
HAVEN_TEST_POSTGRES is set). Tests talk only to the Store/Tx interface, except where a test
looks at the raw database to prove what is (not) stored there."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import (
    Alarm,
    Conflict,
    Conversation,
    Message,
    NotFound,
    Store,
    Texter,
    Tx,
    open_store,
)
from bot.store.base import Ahead
from bot.store.postgres import PgListener, PostgresStore
from bot.store.sql import SqlTx, load_migrations
from bot.store.sqlite import SqliteStore
from tests.helpers import PG_URL, Backend

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PHONE = "+15559876543"


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


async def new_texter(tx: Tx, crypto: Crypto, phone: str = PHONE) -> Texter:
    return await tx.create_texter(crypto.lookup_hash(phone), phone, "en", NOW)


async def seed(store: Store, crypto: Crypto, phone: str = PHONE) -> tuple[Texter, Conversation]:
    async with store.transaction() as tx:
        texter = await new_texter(tx, crypto, phone)
        conversation = await tx.create_conversation(texter.id, "en", NOW)
    return texter, conversation


async def queue(store: Store, conversation_id: int) -> None:
    async with store.transaction() as tx:
        c = await tx.get_conversation(conversation_id)
        c.state, c.queued_at = "queued", NOW
        await tx.save_conversation(c)


async def outbound(tx: Tx, conversation_id: int, body: str = "hello") -> Message:
    return await tx.add_message(
        Message(conversation_id, "out", body, author="haven", status="queued", created_at=NOW)
    )


# -- set-up, migrations, restart ------------------------------------------------------------


async def test_migrations_apply_once_and_are_idempotent(backend: Backend) -> None:
    """A fresh database has every migration pending; migrate() applies them once, and a
    second migrate() (also after a restart) applies nothing."""
    store = backend.make()
    await store.open()
    try:
        pending = await store.pending_migrations()
        assert pending and pending == sorted(pending) and pending[0] == 1
        assert await store.migrate() == pending
        assert await store.pending_migrations() == []
        assert await store.migrate() == []
    finally:
        await store.close()
    again = backend.make()
    await again.open()
    try:
        assert await again.pending_migrations() == []
        assert await again.migrate() == []
        await again.ping()
    finally:
        await again.close()


async def test_conversation_survives_restart(backend: Backend, crypto: Crypto) -> None:
    """What one process wrote, a new store on the same database reads back unchanged."""
    first = backend.make()
    await first.open()
    await first.migrate()
    texter, conversation = await seed(first, crypto)
    conversation.state, conversation.location, conversation.answers = "queued", "60601", {"q": "y"}
    async with first.transaction() as tx:
        await tx.save_conversation(conversation)
        await tx.add_message(Message(conversation.id, "in", "hi there", created_at=NOW))
    await first.close()

    second = backend.make()
    await second.open()
    try:
        assert await second.pending_migrations() == []
        async with second.transaction(lock_key=texter.phone_hash) as tx:
            found = await tx.get_texter_by_hash(crypto.lookup_hash(PHONE))
            assert found == texter
            assert await tx.get_open_conversation(texter.id) == conversation
            assert [m.body for m in await tx.list_messages(conversation.id)] == ["hi there"]
    finally:
        await second.close()


async def test_open_store_picks_the_backend_from_the_url(crypto: Crypto) -> None:
    """sqlite: URLs give SQLite (":memory:" works for tests), postgresql:// gives PostgreSQL,
    and the store is returned unopened."""
    memory = open_store(Settings(database_url="sqlite://"), crypto)
    assert isinstance(memory, SqliteStore) and memory.path == ":memory:"
    with pytest.raises(RuntimeError, match="not open"):
        await memory.ping()
    await memory.open()
    try:
        await memory.migrate()
        texter, _ = await seed(memory, crypto)
        async with memory.transaction() as tx:
            assert (await tx.get_texter(texter.id)).phone == PHONE
    finally:
        await memory.close()
    pg = open_store(Settings(database_url="postgresql://u@localhost/db"), crypto)
    assert isinstance(pg, PostgresStore)
    with pytest.raises(ValueError):
        open_store(Settings(database_url="mysql://x"), crypto)


async def test_sqlite_too_old_for_returning_is_refused_at_open(
    crypto: Crypto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite library older than the store needs (RETURNING, upserts) stops open() with a
    message naming the version, instead of failing later on the first claim or alarm."""
    too_new = (*sqlite3.sqlite_version_info[:2], sqlite3.sqlite_version_info[2] + 1)
    monkeypatch.setattr("bot.store.sqlite.MIN_SQLITE", too_new)
    store = SqliteStore(":memory:", crypto)
    with pytest.raises(RuntimeError, match=re.escape(sqlite3.sqlite_version)):
        await store.open()
    with pytest.raises(RuntimeError, match="not open"):
        await store.ping()


# -- transactions ---------------------------------------------------------------------------


async def test_transaction_rolls_back_on_error(store: Store, crypto: Crypto) -> None:
    """An exception inside a transaction leaves nothing behind."""
    with pytest.raises(KeyError):
        async with store.transaction() as tx:
            await new_texter(tx, crypto)
            raise KeyError("boom")
    async with store.transaction() as tx:
        assert await tx.get_texter_by_hash(crypto.lookup_hash(PHONE)) is None
        assert (await tx.stats())["texters"] == 0


async def test_transactions_do_not_nest_and_end_with_their_block(store: Store) -> None:
    """Opening a transaction inside another in the same task is refused (on SQLite it would
    deadlock), and a Tx cannot be used after its block ends."""
    async with store.transaction() as tx:
        with pytest.raises(RuntimeError, match="nest"):
            async with store.transaction():
                pass
    with pytest.raises(RuntimeError, match="over"):
        await tx.stats()


async def test_per_key_lock_prevents_lost_updates(store: Store, crypto: Crypto) -> None:
    """Concurrent read-modify-write transactions on one lock key run one at a time: ten
    increments of a counter in the flow scratch give ten."""
    texter, conversation = await seed(store, crypto)

    async def bump() -> None:
        async with store.transaction(lock_key=texter.phone_hash) as tx:
            c = await tx.get_conversation(conversation.id)
            await asyncio.sleep(0)  # let the other tasks run between load and save
            c.flow["n"] = c.flow.get("n", 0) + 1
            await tx.save_conversation(c)

    await asyncio.gather(*(bump() for _ in range(10)))
    async with store.transaction() as tx:
        assert (await tx.get_conversation(conversation.id)).flow["n"] == 10
    if isinstance(store, SqliteStore):
        assert store.key_locks_held == 0  # per-key lock entries are cleaned up


async def test_per_key_lock_makes_first_contact_create_one_texter(
    store: Store, crypto: Crypto
) -> None:
    """Eight first messages from one new number at once, each doing the engine's
    load-or-create under the texter's lock, make one texter and one conversation and no
    errors. No row exists yet to lock, so only the key lock taken before loading helps."""
    phone_hash = crypto.lookup_hash(PHONE)

    async def first_message() -> int:
        async with store.transaction(lock_key=phone_hash) as tx:
            texter = await tx.get_texter_by_hash(phone_hash)
            await asyncio.sleep(0)
            if texter is None:
                texter = await tx.create_texter(phone_hash, PHONE, "en", NOW)
            conversation = await tx.get_open_conversation(texter.id)
            if conversation is None:
                conversation = await tx.create_conversation(texter.id, "en", NOW)
            return conversation.id

    ids = await asyncio.gather(*(first_message() for _ in range(8)))
    assert len(set(ids)) == 1
    async with store.transaction() as tx:
        stats = await tx.stats()
    assert (stats["texters"], stats["conversations"]) == (1, 1)


# -- texters --------------------------------------------------------------------------------


async def test_texter_round_trip_and_alias(store: Store, crypto: Crypto) -> None:
    """A texter is found by id and by phone hash with the number decrypted; its fields
    save; the alias is stable, human-friendly and holds no digit of the number."""
    async with store.transaction() as tx:
        created = await new_texter(tx, crypto)
    assert created.phone == PHONE and created.created_at == NOW
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+ \d+", created.alias)
    assert PHONE[-2:] not in created.alias and PHONE[-4:] not in created.alias
    created.language, created.safe_to_text = "es", True
    created.unsafe_hours, created.opted_out = "18:00-08:00", True
    async with store.transaction() as tx:
        await tx.save_texter(created)
    async with store.transaction() as tx:
        by_id = await tx.get_texter(created.id)
        by_hash = await tx.get_texter_by_hash(created.phone_hash)
        assert await tx.get_texter_by_hash(crypto.lookup_hash("+15550000000")) is None
    assert by_id == by_hash == created
    other_aliases = set()
    async with store.transaction() as tx:
        for n in range(5):
            other_aliases.add((await new_texter(tx, crypto, f"+1555000000{n}")).alias)
    assert len(other_aliases | {created.alias}) == 6


async def test_texter_bad_input_is_refused_and_changes_nothing(
    store: Store, crypto: Crypto
) -> None:
    """A duplicate phone hash is a Conflict; a malformed number, an unknown language or a
    naive datetime is a ValueError; none of them stores anything."""
    await seed(store, crypto)
    naive = datetime(2025, 1, 1, 12, 0)
    bad_calls = [
        (Conflict, dict(phone_hash=crypto.lookup_hash(PHONE), phone=PHONE, language="en")),
        (ValueError, dict(phone_hash="h1", phone="5551234", language="en")),
        (ValueError, dict(phone_hash="h2", phone="+15551112222", language="fr")),
    ]
    for error, kwargs in bad_calls:
        with pytest.raises(error):
            async with store.transaction() as tx:
                await tx.create_texter(now=NOW, **kwargs)
    with pytest.raises(ValueError, match="timezone"):
        async with store.transaction() as tx:
            await tx.create_texter("h3", "+15551113333", "en", naive)
    async with store.transaction() as tx:
        assert (await tx.stats())["texters"] == 1


async def test_missing_records_raise_not_found(store: Store, crypto: Crypto) -> None:
    """Every by-id read or write of something that does not exist raises NotFound."""
    texter, conversation = await seed(store, crypto)
    ghost_texter = replace(texter, id=999)
    ghost_conversation = replace(conversation, id=999)
    calls = [
        lambda tx: tx.get_texter(999),
        lambda tx: tx.save_texter(ghost_texter),
        lambda tx: tx.delete_texter(999),
        lambda tx: tx.get_conversation(999),
        lambda tx: tx.create_conversation(999, "en", NOW),
        lambda tx: tx.save_conversation(ghost_conversation),
        lambda tx: tx.purge_conversation(999),
        lambda tx: tx.claim(999, 1, NOW),
        lambda tx: tx.add_message(Message(999, "in", "x")),
        lambda tx: tx.set_message_status(999, "sent"),
        lambda tx: tx.enqueue_outbound(999, PHONE, NOW),
        lambda tx: tx.finish_outbox(999, "sent", NOW),
        lambda tx: tx.get_user(999),
        lambda tx: tx.add_note(999, 1, "x", NOW),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            async with store.transaction() as tx:
                await call(tx)


# -- conversations --------------------------------------------------------------------------


async def test_conversation_every_field_round_trips(store: Store, crypto: Crypto) -> None:
    """save_conversation writes every field back and get_conversation returns them as
    saved, with datetimes aware and in UTC (an aware non-UTC input is the same instant)."""
    _, c = await seed(store, crypto)
    assert c.state == "new" and c.priority == 4 and c.created_at == NOW
    plus2 = timezone(timedelta(hours=2))
    c.state, c.language, c.priority = "queued", "es", 2
    c.labels, c.signals = ["trafficking", "abuse"], ["trafficking:papers"]
    c.need, c.answers, c.location = "control", {"papers": "yes", "free": "skip"}, "Chicago"
    c.flow = {"asked": 2, "nested": {"a": [1, 2]}}
    c.team, c.advocate_id, c.transfer_to = "trafficking", None, 7
    c.updated_at, c.last_inbound_at, c.queued_at = at(1), at(2), at(3).astimezone(plus2)
    c.claimed_at, c.closed_at, c.disposition = at(4), at(5), "referred"
    c.nudge_at, c.expire_at = at(10), at(60)
    async with store.transaction() as tx:
        await tx.save_conversation(c)
    async with store.transaction() as tx:
        loaded = await tx.get_conversation(c.id)
    assert loaded == c
    assert loaded.queued_at is not None and loaded.queued_at.tzinfo == UTC
    c.priority = 9
    with pytest.raises(ValueError):
        async with store.transaction() as tx:
            await tx.save_conversation(c)


async def test_open_conversation_is_the_newest_not_ended(store: Store, crypto: Crypto) -> None:
    """get_open_conversation ignores closed, expired and exited conversations."""
    texter, first = await seed(store, crypto)
    async with store.transaction() as tx:
        assert await tx.get_open_conversation(texter.id) == first
        first.state = "closed"
        await tx.save_conversation(first)
        assert await tx.get_open_conversation(texter.id) is None
        second = await tx.create_conversation(texter.id, "es", at(1))
        assert await tx.get_open_conversation(texter.id) == second
        for state in ("expired", "exited"):
            second.state = state
            await tx.save_conversation(second)
            assert await tx.get_open_conversation(texter.id) is None


async def test_load_inbound_reads_what_the_engine_needs_in_one_statement(
    store: Store, crypto: Crypto
) -> None:
    """Issue 11: load_inbound gives, in one statement, the reply saved for the MessageSid,
    the texter, their block flag and reply window, and their newest conversation not
    ended (as get_open_conversation); an unknown number reads as nothing at all."""
    phone_hash = crypto.lookup_hash(PHONE)
    async with store.transaction() as tx:
        empty = await tx.load_inbound(phone_hash, "SM1")
    assert (empty.saved_reply, empty.texter, empty.blocked) == (None, None, False)
    assert (empty.reply_window, empty.conversation) == (None, None)

    texter, first = await seed(store, crypto)
    other, _ = await seed(store, crypto, "+15550001111")  # someone else's rows stay theirs
    async with store.transaction() as tx:
        await tx.save_reply("SM1", '["hello"]', NOW)
        await tx.block_texter(other.id, None, NOW)
        await tx.set_reply_window(other.id, at(-3), 7)
        loaded = await tx.load_inbound(phone_hash, "SM1")
        assert loaded.saved_reply == '["hello"]'
        assert loaded.texter == texter and loaded.conversation == first
        assert (loaded.blocked, loaded.reply_window) == (False, None)

        first.state = "closed"
        await tx.save_conversation(first)
        second = await tx.create_conversation(texter.id, "es", at(1))
        await tx.block_texter(texter.id, None, NOW)
        await tx.set_reply_window(texter.id, at(-2), 3)
        loaded = await tx.load_inbound(phone_hash, "SM2")
        assert loaded.saved_reply is None
        assert loaded.conversation == second and loaded.texter == texter
        assert (loaded.blocked, loaded.reply_window) == (True, (at(-2), 3))
        second.state = "expired"
        await tx.save_conversation(second)
        assert (await tx.load_inbound(phone_hash, "SM2")).conversation is None


async def test_list_conversations_filters_and_orders(store: Store, crypto: Crypto) -> None:
    """Filtering by states and by holder works; newest activity comes first; limit holds."""
    ids = []
    for n, state in enumerate(["queued", "with_advocate", "queued", "closed"]):
        _, c = await seed(store, crypto, f"+1555111000{n}")
        c.state, c.updated_at = state, at(n)
        c.advocate_id = 5 if state == "with_advocate" else None
        async with store.transaction() as tx:
            await tx.save_conversation(c)
        ids.append(c.id)
    async with store.transaction() as tx:
        assert [c.id for c in await tx.list_conversations()] == ids[::-1]
        queued = await tx.list_conversations(states=["queued"])
        assert [c.id for c in queued] == [ids[2], ids[0]]
        both = await tx.list_conversations(states=["queued", "with_advocate"])
        assert len(both) == 3
        assert [c.id for c in await tx.list_conversations(advocate_id=5)] == [ids[1]]
        assert await tx.list_conversations(states=[]) == []
        assert len(await tx.list_conversations(limit=2)) == 2


async def test_due_timers(store: Store, crypto: Crypto) -> None:
    """due_timers returns conversations whose nudge or expiry time has come, and only
    those."""
    made = []
    for n, (nudge, expire) in enumerate([(at(10), at(60)), (None, at(5)), (at(30), None)]):
        _, c = await seed(store, crypto, f"+1555222000{n}")
        c.nudge_at, c.expire_at = nudge, expire
        async with store.transaction() as tx:
            await tx.save_conversation(c)
        made.append(c.id)
    async with store.transaction() as tx:
        assert await tx.due_timers(at(1)) == []
        assert [c.id for c in await tx.due_timers(at(10))] == made[:2]
        assert [c.id for c in await tx.due_timers(at(60))] == made
        assert len(await tx.due_timers(at(60), limit=1)) == 1


async def test_claim_gives_a_queued_conversation_to_one_advocate(
    store: Store, crypto: Crypto
) -> None:
    """claim() moves a queued, unheld conversation to with_advocate; claiming it again, or
    claiming one that is not queued, is a Conflict that changes nothing."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        with pytest.raises(Conflict):
            await tx.claim(c.id, 1, NOW)  # still in intake
    await queue(store, c.id)
    async with store.transaction() as tx:
        claimed = await tx.claim(c.id, 1, at(1))
    assert (claimed.state, claimed.advocate_id, claimed.claimed_at) == ("with_advocate", 1, at(1))
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            await tx.claim(c.id, 2, at(2))
    async with store.transaction() as tx:
        assert await tx.get_conversation(c.id) == claimed


async def test_concurrent_claims_exactly_one_wins(store: Store, crypto: Crypto) -> None:
    """Two advocates claiming the same conversation at once: one gets it, one Conflict."""
    _, c = await seed(store, crypto)
    await queue(store, c.id)

    async def claim(advocate_id: int) -> Conversation | Conflict:
        try:
            async with store.transaction() as tx:
                return await tx.claim(c.id, advocate_id, NOW)
        except Conflict as exc:
            return exc

    for _ in range(3):  # a few rounds, releasing in between
        results = await asyncio.gather(claim(1), claim(2))
        winners = [r for r in results if isinstance(r, Conversation)]
        assert len(winners) == 1 and sum(isinstance(r, Conflict) for r in results) == 1
        async with store.transaction() as tx:
            held = await tx.get_conversation(c.id)
            assert held.advocate_id == winners[0].advocate_id
            held.state, held.advocate_id = "queued", None
            await tx.save_conversation(held)


@pytest.mark.parametrize("load", ["get_conversation", "load_inbound"])
async def test_claim_is_not_lost_to_an_engine_save(
    backend: Backend, store: Store, crypto: Crypto, load: str
) -> None:
    """While an engine transaction holds a loaded conversation (loaded alone, or with its
    texter by load_inbound, as the engine does), a claim waits for it and then wins on the
    saved row, so the engine's save cannot wipe the claim out."""
    if backend.name != "postgres":
        pytest.skip("SQLite runs one transaction at a time: nothing can interleave")
    texter, c = await seed(store, crypto)
    await queue(store, c.id)

    async def claim() -> Conversation:
        async with store.transaction() as tx:
            return await tx.claim(c.id, 1, NOW)

    admin = await asyncpg.connect(PG_URL)
    try:
        async with store.transaction(lock_key=texter.phone_hash) as tx:
            if load == "load_inbound":
                found = (await tx.load_inbound(texter.phone_hash, "SM1")).conversation
                assert found is not None
                loaded = found
            else:
                loaded = await tx.get_conversation(c.id)
            task = asyncio.create_task(claim())
            for _ in range(10_000):  # until the claim finished or waits on a row lock
                waiting = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'UPDATE conversations SET state = ''with_advocate''%'"
                )
                if task.done() or waiting:
                    break
            loaded.priority = 1  # the engine's change: a message raised the priority
            await tx.save_conversation(loaded)
        await task
    finally:
        await admin.close()
    async with store.transaction() as tx:
        final = await tx.get_conversation(c.id)
    assert (final.state, final.advocate_id, final.priority) == ("with_advocate", 1, 1)


# -- messages, status, outbox ---------------------------------------------------------------


async def test_messages_round_trip_oldest_first(store: Store, crypto: Crypto) -> None:
    """add_message sets id and created_at (now if not given) and list_messages returns
    every field, oldest first."""
    _, c = await seed(store, crypto)
    inbound = Message(
        c.id, "in", "is this safe?", provider_sid="SMin1", created_at=NOW,
        media_types=["image/jpeg"], labels=["abuse"],
    )  # fmt: skip
    async with store.transaction() as tx:
        saved = await tx.add_message(inbound)
        assert saved.id is not None and saved.created_at == NOW
        reply = await tx.add_message(Message(c.id, "out", "yes", author="advocate:3"))
        assert reply.created_at is not None and reply.created_at.tzinfo == UTC
        assert await tx.list_messages(c.id) == [saved, reply]
        with pytest.raises(ValueError):
            await tx.add_message(Message(c.id, "sideways", "x"))  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await tx.add_message(Message(c.id, "out", "x", status="lost"))


async def test_set_message_status_sets_sid_and_error(store: Store, crypto: Crypto) -> None:
    """The sender records the provider SID and errors; unknown statuses are refused."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        m = await outbound(tx, c.id)
        assert m.id is not None
        await tx.set_message_status(m.id, "sent", provider_sid="SMout1")
        await tx.set_message_status(m.id, "sent", error_code="30001")
        (loaded,) = await tx.list_messages(c.id)
        assert (loaded.status, loaded.provider_sid, loaded.error_code) == (
            "sent",
            "SMout1",
            "30001",
        )
        with pytest.raises(ValueError):
            await tx.set_message_status(m.id, "bogus")


async def test_record_status_never_moves_backwards(store: Store, crypto: Crypto) -> None:
    """Delivery callbacks move a status forward only (queued < sending < sent < delivered);
    delivered, failed and undelivered are final; repeats change nothing; an unknown SID
    gives None."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        a, b = await outbound(tx, c.id), await outbound(tx, c.id)
        assert a.id is not None and b.id is not None
        await tx.set_message_status(a.id, "queued", provider_sid="SMa")
        await tx.set_message_status(b.id, "queued", provider_sid="SMb")

    async def callback(sid: str, status: str, code: str | None = None) -> str | None:
        async with store.transaction() as tx:
            m = await tx.record_status(sid, status, code, NOW)
        return None if m is None else m.status

    steps = [("sent", "sent"), ("sending", "sent"), ("sent", "sent"), ("delivered", "delivered")]
    steps += [("sent", "delivered"), ("failed", "delivered"), ("delivered", "delivered")]
    for status, expected in steps:
        assert await callback("SMa", status) == expected
    assert await callback("SMb", "undelivered", "30003") == "undelivered"
    assert await callback("SMb", "delivered") == "undelivered"
    assert await callback("SMunknown", "delivered") is None
    with pytest.raises(ValueError):
        await callback("SMa", "exploded")
    async with store.transaction() as tx:
        statuses = {m.provider_sid: (m.status, m.error_code) for m in await tx.list_messages(c.id)}
    assert statuses == {"SMa": ("delivered", None), "SMb": ("undelivered", "30003")}


async def test_a_callback_that_beats_the_sid_is_applied_when_the_sid_is_recorded(
    store: Store, crypto: Crypto
) -> None:
    """Twilio can call back before the outbox has stored the SID it just got: the status
    waits (furthest first) and lands when the SID is recorded; retention clears strays."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        assert await tx.record_status("SMearly", "sent", None, NOW) is None
        assert await tx.record_status("SMearly", "delivered", None, NOW) is None
        assert await tx.record_status("SMearly", "sent", None, NOW) is None  # no step back
        assert await tx.record_status("SMstray", "failed", "30008", NOW) is None
        m = await outbound(tx, c.id)
        assert m.id is not None
        await tx.set_message_status(m.id, "sent", provider_sid="SMearly")
        (stored,) = [x for x in await tx.list_messages(c.id) if x.id == m.id]
        assert stored.status == "delivered"
    async with store.transaction() as tx:
        c.updated_at = at(100)  # the conversation is active; only the stray status is old
        await tx.save_conversation(c)
        await tx.purge_before(at(1))
        other = await outbound(tx, c.id)
        assert other.id is not None
        await tx.set_message_status(other.id, "sent", provider_sid="SMstray")
        (kept,) = [x for x in await tx.list_messages(c.id) if x.id == other.id]
        assert kept.status == "sent"  # the stray was cleared by retention, not applied


async def test_a_callback_racing_the_sid_write_still_lands(store: Store, crypto: Crypto) -> None:
    """A callback for an SID not yet recorded is in an open transaction when the outbox
    records that SID: the two take turns, and the status lands."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        m = await outbound(tx, c.id)
        assert m.id is not None
    callback_open = asyncio.Event()
    callback_may_commit = asyncio.Event()

    async def callback() -> None:
        async with store.transaction() as tx:
            assert await tx.record_status("SMrace", "delivered", None, NOW) is None
            callback_open.set()
            await callback_may_commit.wait()

    async def record_sid() -> None:
        assert m.id is not None
        async with store.transaction() as tx:
            await tx.set_message_status(m.id, "sent", provider_sid="SMrace")

    first = asyncio.create_task(callback())
    await callback_open.wait()
    second = asyncio.create_task(record_sid())
    await asyncio.sleep(0.2)
    assert not second.done()  # waits for the callback's transaction
    callback_may_commit.set()
    await first
    await second
    async with store.transaction() as tx:
        (stored,) = [x for x in await tx.list_messages(c.id) if x.id == m.id]
    assert stored.status == "delivered"


async def test_concurrent_status_callbacks_end_at_the_furthest(
    store: Store, crypto: Crypto
) -> None:
    """Callbacks arriving together in any order leave the furthest status."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        m = await outbound(tx, c.id)
        assert m.id is not None
        await tx.set_message_status(m.id, "sending", provider_sid="SMc")

    async def callback(status: str) -> None:
        async with store.transaction() as tx:
            await tx.record_status("SMc", status, None, NOW)

    await asyncio.gather(*(callback(s) for s in ["delivered", "sent", "queued", "sent"]))
    async with store.transaction() as tx:
        assert (await tx.list_messages(c.id))[0].status == "delivered"


async def test_outbox_claim_retry_and_finish(store: Store, crypto: Crypto) -> None:
    """An enqueued message comes out once with its recipient and body decrypted and the
    attempt counted; back to pending it waits for its retry time; sent, it never comes back."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        m = await outbound(tx, c.id, "we are here")
        assert m.id is not None
        item_id = await tx.enqueue_outbound(m.id, PHONE, NOW)
        with pytest.raises(ValueError):
            await tx.enqueue_outbound(m.id, "not a number", NOW)
    async with store.transaction() as tx:
        assert await tx.claim_outbox(NOW - timedelta(seconds=1)) == []
        (item,) = await tx.claim_outbox(NOW)
        assert (item.id, item.message_id, item.conversation_id) == (item_id, m.id, c.id)
        assert (item.to, item.body, item.attempts, item.status) == (
            PHONE,
            "we are here",
            1,
            "sending",
        )
        assert await tx.claim_outbox(at(100)) == []  # in flight: not handed out again
        await tx.finish_outbox(item_id, "pending", NOW, retry_at=at(5))
    async with store.transaction() as tx:
        assert await tx.claim_outbox(at(4)) == []
        (again,) = await tx.claim_outbox(at(5))
        assert again.attempts == 2 and again.next_attempt_at == at(5)
        await tx.finish_outbox(item_id, "sent", at(5))
        assert await tx.claim_outbox(at(500)) == []
        with pytest.raises(ValueError):
            await tx.finish_outbox(item_id, "done", NOW)  # type: ignore[arg-type]


async def test_fail_stale_outbox_fails_abandoned_sends_once(store: Store, crypto: Crypto) -> None:
    """An item left 'sending' since before the cut-off (its worker died) is marked failed
    and returned once; a recent one and a pending one are left alone; neither is resent.
    (One conversation each, so no item waits behind another's.)"""
    texter, c = await seed(store, crypto)
    async with store.transaction() as tx:
        convs = [c.id] + [(await tx.create_conversation(texter.id, "en", NOW)).id for _ in "ab"]
        ids = []
        for n in range(3):
            m = await outbound(tx, convs[n], f"text {n}")
            assert m.id is not None
            ids.append(await tx.enqueue_outbound(m.id, PHONE, NOW))
    async with store.transaction() as tx:
        assert len(await tx.claim_outbox(NOW, limit=1)) == 1  # claimed at NOW, then "dies"
        assert len(await tx.claim_outbox(at(10), limit=1)) == 1  # claimed recently
    async with store.transaction() as tx:
        assert isinstance(tx, SqlTx)
        stale = await tx.fail_stale_outbox(at(5), at(11))
        assert [(i.id, i.status, i.body, i.to) for i in stale] == [
            (ids[0], "failed", "text 0", PHONE)
        ]
        assert await tx.fail_stale_outbox(at(5), at(12)) == []
        assert [i.id for i in await tx.claim_outbox(at(20))] == [ids[2]]


async def test_outbox_keeps_each_conversations_order(store: Store, crypto: Crypto) -> None:
    """A later text of a conversation is not claimed while an earlier one is being sent or
    waits for a retry; once the earlier one is due again, both go, earlier first. Other
    conversations are not held up. Cancelling fails what is still waiting."""
    texter, c = await seed(store, crypto)
    async with store.transaction() as tx:
        other = await tx.create_conversation(texter.id, "en", NOW)
        first, second = [await outbound(tx, c.id, body) for body in ("first", "second")]
        elsewhere = await outbound(tx, other.id, "elsewhere")
        ids = []
        for m in (first, second, elsewhere):
            assert m.id is not None
            ids.append(await tx.enqueue_outbound(m.id, PHONE, NOW))
    async with store.transaction() as tx:
        claimed = await tx.claim_outbox(NOW, limit=1)
        assert [i.id for i in claimed] == [ids[0]]
        # The first is being sent: the second waits, the other conversation's goes.
        assert [i.id for i in await tx.claim_outbox(NOW)] == [ids[2]]
        await tx.finish_outbox(ids[0], "pending", NOW, retry_at=at(30))
        assert await tx.claim_outbox(at(10)) == []  # still behind the retry
        assert [i.id for i in await tx.claim_outbox(at(30))] == [ids[0], ids[1]]
    async with store.transaction() as tx:
        m = await outbound(tx, c.id, "third")
        assert m.id is not None
        await tx.enqueue_outbound(m.id, PHONE, at(31))
        assert await tx.cancel_outbox(c.id, "opted_out", at(32)) == 1
        assert await tx.claim_outbox(at(40)) == []
        (failed,) = [x for x in await tx.list_messages(c.id) if x.id == m.id]
        assert (failed.status, failed.error_code) == ("failed", "opted_out")


async def test_a_second_claimer_waits_for_the_first_so_order_holds(
    store: Store, crypto: Crypto
) -> None:
    """Worker A has claimed a conversation's first text but not yet committed; a second
    text is written; worker B's claim waits for A and then sees the first one being sent,
    so it does not send the second ahead of it."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        first = await outbound(tx, c.id, "first")
        assert first.id is not None
        await tx.enqueue_outbound(first.id, PHONE, NOW)
    a_claimed = asyncio.Event()
    a_may_commit = asyncio.Event()

    async def worker_a() -> list[int]:
        async with store.transaction() as tx:
            got = [i.id for i in await tx.claim_outbox(NOW)]
            a_claimed.set()
            await a_may_commit.wait()
            return got

    async def worker_b() -> list[int]:
        async with store.transaction() as tx:
            return [i.id for i in await tx.claim_outbox(at(1))]

    a = asyncio.create_task(worker_a())
    await a_claimed.wait()
    if isinstance(store, SqliteStore):
        # One writer at a time already: B cannot even start until A commits.
        second_id = None
    else:
        async with store.transaction() as tx:  # another connection writes the second text
            second = await outbound(tx, c.id, "second")
            assert second.id is not None
            second_id = await tx.enqueue_outbound(second.id, PHONE, NOW)
    b = asyncio.create_task(worker_b())
    await asyncio.sleep(0.2)
    assert not b.done()  # B waits for A's claim to commit
    a_may_commit.set()
    assert len(await a) == 1
    assert await b == []  # the second (if any) waits behind the first, now 'sending'
    _ = second_id


async def test_concurrent_outbox_claimers_never_share_an_item(store: Store, crypto: Crypto) -> None:
    """Six workers claiming at once from thirty due items (thirty conversations, so none
    waits behind another): every item is handed out exactly once."""
    texter, _ = await seed(store, crypto)
    async with store.transaction() as tx:
        for n in range(30):
            conv = await tx.create_conversation(texter.id, "en", NOW)
            m = await outbound(tx, conv.id, f"msg {n}")
            assert m.id is not None
            await tx.enqueue_outbound(m.id, PHONE, NOW)

    async def worker() -> list[int]:
        async with store.transaction() as tx:
            return [i.id for i in await tx.claim_outbox(NOW, limit=7)]

    batches = await asyncio.gather(*(worker() for _ in range(6)))
    claimed = [i for batch in batches for i in batch]
    assert len(claimed) == len(set(claimed)) == 30


# -- replies, users, notes, audit -----------------------------------------------------------


async def test_add_replies_stores_haven_texts_in_order(store: Store, crypto: Crypto) -> None:
    """add_replies stores Haven's in-response texts after what came before, in the order
    given, as Haven's, 'replied', readable in the same transaction and after it."""
    _, conv = await seed(store, crypto)
    async with store.transaction() as tx:
        first = await outbound(tx, conv.id, "before")
        await tx.add_replies(conv.id, [("one", "ref-one"), ("two", None)])
        await tx.add_replies(conv.id, [])
        inside = [m.body for m in await tx.list_messages(conv.id)]
    async with store.transaction() as tx:
        stored = await tx.list_messages(conv.id)
    assert inside == [m.body for m in stored] == ["before", "one", "two"]
    assert stored[0].id == first.id and stored[1].id is not None and stored[2].id is not None
    assert first.id < stored[1].id < stored[2].id
    assert {(m.direction, m.author, m.status) for m in stored[1:]} == {("out", "haven", "replied")}
    assert [m.reply_ref for m in stored[1:]] == ["ref-one", None]


async def test_a_held_back_write_that_fails_fails_its_transaction(
    store: Store, crypto: Crypto
) -> None:
    """A write the backend may hold back (a reply for a conversation that does not exist)
    still fails inside its transaction block (NotFound), and the block's other writes
    are rolled back with it."""
    with pytest.raises(NotFound):
        async with store.transaction() as tx:
            await tx.save_reply("SMkept?", "[]", NOW)
            await tx.add_replies(987654, [("to nobody", None)])
    async with store.transaction() as tx:
        assert await tx.get_reply("SMkept?") is None


async def test_saved_replies_are_idempotent(store: Store) -> None:
    """A reply is remembered per MessageSid and the first one stands."""
    async with store.transaction() as tx:
        assert await tx.get_reply("SM1") is None
        await tx.save_reply("SM1", "<Response>first</Response>", NOW)
        await tx.save_reply("SM1", "<Response>second</Response>", NOW)
        assert await tx.get_reply("SM1") == "<Response>first</Response>"
        assert await tx.get_reply("SM2") is None


async def test_users_program_ids_reads_several_staff_at_once(store: Store) -> None:
    """users_program_ids gives each asked-for staff member's programs in id order, an
    empty list for one in none, and nothing for those not asked about."""
    async with store.transaction() as tx:
        ana = await tx.add_user("ana", "advocate", "h", [], NOW)
        ben = await tx.add_user("ben", "advocate", "h", [], NOW)
        cal = await tx.add_user("cal", "advocate", "h", [], NOW)
        one = await tx.add_program("one", "One", "+15550000001", None, None, False, NOW)
        two = await tx.add_program("two", "Two", "+15550000002", None, None, False, NOW)
        await tx.set_user_programs(ana.id, [two.id, one.id])
        await tx.set_user_programs(cal.id, [two.id])
        found = await tx.users_program_ids([ana.id, ben.id])
        assert found == {ana.id: [one.id, two.id], ben.id: []}
        assert await tx.users_program_ids([]) == {}


async def test_users(store: Store) -> None:
    """Users are added, found by id and name, listed, saved; a taken name is a Conflict
    (on add and on rename) and a bad role or presence a ValueError."""
    async with store.transaction() as tx:
        ana = await tx.add_user("ana", "advocate", "hash-a", ["dv", "es"], NOW)
        sam = await tx.add_user("sam", "supervisor", "hash-s", [], NOW)
        assert (ana.presence, ana.capacity, ana.active, ana.created_at) == ("offline", 3, True, NOW)
        with pytest.raises(ValueError):
            await tx.add_user("eve", "root", "h", [], NOW)
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            await tx.add_user("ana", "admin", "h", [], NOW)
    async with store.transaction() as tx:
        assert await tx.get_user(ana.id) == ana
        assert await tx.lock_user(ana.id) == ana  # the same user, row held to the end
        assert await tx.get_user_by_name("sam") == sam
        assert await tx.get_user_by_name("nobody") is None
        ana.presence, ana.capacity, ana.teams, ana.active = "available", 4, ["trafficking"], False
        await tx.save_user(ana)
        assert await tx.list_users() == [ana, sam]
        with pytest.raises(Conflict):
            await tx.save_user(replace(ana, name="sam"))
        with pytest.raises(ValueError):
            await tx.save_user(replace(ana, presence="asleep"))
        assert await tx.get_user(ana.id) == ana


async def test_notes_and_audit(store: Store, crypto: Crypto) -> None:
    """Notes list oldest first per conversation; audit entries list newest first, filtered
    by conversation and limited."""
    _, c = await seed(store, crypto)
    _, other = await seed(store, crypto, "+15553334444")
    async with store.transaction() as tx:
        n1 = await tx.add_note(c.id, 1, "called shelter", NOW)
        n2 = await tx.add_note(c.id, 2, "follow up", at(1))
        await tx.add_note(other.id, 1, "elsewhere", NOW)
        assert await tx.list_notes(c.id) == [n1, n2]
        assert n1.body == "called shelter" and n1.created_at == NOW
        await tx.audit(1, "view", c.id, "", NOW)
        await tx.audit(1, "claim", c.id, "from queue", at(1))
        await tx.audit(None, "login", None, "", at(2))
        everything = await tx.list_audit()
        assert [e.action for e in everything] == ["login", "claim", "view"]
        assert [e.action for e in await tx.list_audit(conversation_id=c.id)] == ["claim", "view"]
        assert everything[1].detail == "from queue" and everything[1].created_at == at(1)
        assert len(await tx.list_audit(limit=1)) == 1


# -- erasure, retention, stats --------------------------------------------------------------


async def fill(store: Store, crypto: Crypto, phone: str = PHONE) -> tuple[Texter, Conversation]:
    """A conversation with content everywhere: answers, messages, a reply, a note, outbox."""
    texter, c = await seed(store, crypto, phone)
    c.state, c.need, c.answers = "with_advocate", "hurt", {"weapon": "yes"}
    c.signals, c.location, c.flow = ["emergency:weapon"], "Springfield 62704", {"k": 1}
    async with store.transaction() as tx:
        await tx.save_conversation(c)
        await tx.add_message(Message(c.id, "in", "he has a knife", provider_sid=f"SM{c.id}"))
        await tx.save_reply(f"SM{c.id}", "<Response>call 911</Response>", NOW)
        m = await outbound(tx, c.id, "are you safe now?")
        assert m.id is not None
        await tx.enqueue_outbound(m.id, texter.phone, NOW)
        await tx.add_note(c.id, 1, "knife mentioned", NOW)
        await tx.audit(1, "view", c.id, "", NOW)
    return texter, c


async def test_purge_conversation_erases_content_but_keeps_the_row(
    store: Store, crypto: Crypto
) -> None:
    """Quick exit: messages, pending outbox items, notes, saved replies and the texter's
    answers, signals, need, location are gone; the row keeps its state; saving the
    conversation afterwards does not write the content back; others are untouched."""
    _, c = await fill(store, crypto)
    _, other = await fill(store, crypto, "+15557778888")
    async with store.transaction() as tx:
        c.state = "exited"
        await tx.save_conversation(c)
        await tx.purge_conversation(c.id)
        await tx.save_conversation(c)  # a stale copy, as an engine might still hold
    async with store.transaction() as tx:
        kept = await tx.get_conversation(c.id)
        assert kept.state == "exited" and kept.labels == c.labels
        assert (kept.need, kept.answers, kept.signals, kept.location, kept.flow) == (
            None,
            {},
            [],
            None,
            {},
        )
        assert await tx.list_messages(c.id) == []
        assert await tx.list_notes(c.id) == []
        assert await tx.get_reply(f"SM{c.id}") is None
        assert [i.conversation_id for i in await tx.claim_outbox(NOW)] == [other.id]
        assert len(await tx.list_messages(other.id)) == 2
        assert await tx.get_reply(f"SM{other.id}") is not None
        assert (await tx.get_conversation(other.id)).location == "Springfield 62704"
        assert len(await tx.list_audit(conversation_id=c.id)) == 1


async def test_delete_texter_removes_everything_but_audit(store: Store, crypto: Crypto) -> None:
    """DELETE: the texter, their conversations, messages, notes, outbox and replies go;
    the audit trail (which holds no content) stays; other texters are untouched."""
    texter, c = await fill(store, crypto)
    other, oc = await fill(store, crypto, "+15557778888")
    async with store.transaction() as tx:
        await tx.delete_texter(texter.id)
    async with store.transaction() as tx:
        assert await tx.get_texter_by_hash(texter.phone_hash) is None
        with pytest.raises(NotFound):
            await tx.get_conversation(c.id)
        assert await tx.list_messages(c.id) == []
        assert await tx.list_notes(c.id) == []
        assert await tx.get_reply(f"SM{c.id}") is None
        assert [i.conversation_id for i in await tx.claim_outbox(NOW)] == [oc.id]
        assert len(await tx.list_audit(conversation_id=c.id)) == 1
        assert (await tx.get_texter(other.id)).phone == "+15557778888"
        stats = await tx.stats()
    assert (stats["texters"], stats["conversations"], stats["messages_in"]) == (1, 1, 1)


async def test_purge_before_applies_retention(store: Store, crypto: Crypto) -> None:
    """Retention removes conversations whose last activity is before the cutoff - ended,
    stopped with STOP, or left open and untouched that long - with their messages and
    replies, and texters left with nothing; recent conversations and their texters stay."""
    old_texter, old = await fill(store, crypto, "+15550000001")
    kept_texter, recent = await fill(store, crypto, "+15550000002")
    _, still_open = await fill(store, crypto, "+15550000003")
    _, stopped = await fill(store, crypto, "+15550000004")
    _, abandoned = await fill(store, crypto, "+15550000005")
    async with store.transaction() as tx:
        still_open.updated_at = at(100)  # an advocate is texting with them now
        await tx.save_conversation(still_open)
        abandoned.updated_at = at(3)  # held, then nobody touched it again
        await tx.save_conversation(abandoned)
        old.state, old.closed_at, old.updated_at = "closed", at(1), at(1)
        await tx.save_conversation(old)
        stopped.state, stopped.advocate_id, stopped.updated_at = "opted_out", None, at(2)
        await tx.save_conversation(stopped)
        recent.state, recent.closed_at, recent.updated_at = "expired", at(1), at(100)
        await tx.save_conversation(recent)
    async with store.transaction() as tx:
        assert await tx.purge_before(at(50)) == 3
    async with store.transaction() as tx:
        with pytest.raises(NotFound):
            await tx.get_conversation(abandoned.id)
        with pytest.raises(NotFound):
            await tx.get_conversation(stopped.id)
        with pytest.raises(NotFound):
            await tx.get_conversation(old.id)
        assert await tx.get_texter_by_hash(old_texter.phone_hash) is None
        assert await tx.get_reply(f"SM{old.id}") is None
        assert (await tx.get_conversation(recent.id)).state == "expired"
        assert (await tx.get_texter(kept_texter.id)).id == kept_texter.id
        assert (await tx.get_conversation(still_open.id)).state == "with_advocate"
        assert await tx.purge_before(at(50)) == 0


async def test_stats_counts(store: Store, crypto: Crypto) -> None:
    """stats() counts messages each way, texters, conversations, queued, held, users and
    referrals."""
    await fill(store, crypto)
    _, queued = await seed(store, crypto, "+15552223333")
    await queue(store, queued.id)
    async with store.transaction() as tx:
        await tx.add_user("ana", "advocate", "h", [], NOW)
        assert await tx.stats() == {
            "messages_in": 1,
            "messages_out": 1,
            "texters": 2,
            "conversations": 2,
            "queued": 1,
            "with_advocate": 1,
            "users": 1,
            "referrals": 0,
        }


async def test_nothing_a_texter_said_is_stored_in_plaintext(
    backend: Backend, store: Store, crypto: Crypto
) -> None:
    """After writes, the raw database (SQLite file and WAL, or every PostgreSQL row) holds
    neither the phone number nor anything the texter said, nor notes or replies."""
    texter, _ = await fill(store, crypto)
    async with store.transaction() as tx:
        texter.unsafe_hours = "17:45-07:15"
        await tx.save_texter(texter)
    secrets = [
        PHONE,
        PHONE[2:],
        "he has a knife",
        "are you safe now?",
        "knife mentioned",
        "call 911",
        "Springfield",
        "62704",
        "emergency:weapon",
        "weapon",
        "17:45",
    ]
    raw = await backend.raw_dump()
    assert b"knife" not in raw and len(raw) > 1000
    for secret in secrets:
        assert secret.encode() not in raw, secret
    await store.close()  # a checkpoint moves the WAL into the main file: check again
    raw = await backend.raw_dump()
    for secret in secrets:
        assert secret.encode() not in raw, secret


# -- alarms ---------------------------------------------------------------------------------


async def test_an_alarm_is_raised_once_until_cleared(store: Store, crypto: Crypto) -> None:
    """raise_alarm is True for the first raise, False while the alarm is active (even for
    a later time), True again once cleared; clear_alarms returns what it cleared, only
    once, and only the kinds asked for."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        assert await tx.raise_alarm(c.id, "unclaimed_p1", NOW) is True
        assert await tx.raise_alarm(c.id, "unclaimed_p1", at(1)) is False
        assert await tx.raise_alarm(c.id, "danger_while_held", at(2)) is True
    async with store.transaction() as tx:
        assert await tx.raise_alarm(c.id, "unclaimed_p1", at(3)) is False
        assert await tx.clear_alarms(c.id, at(4), kinds=["unclaimed_p1", "other"]) == [
            "unclaimed_p1"
        ]
        assert await tx.clear_alarms(c.id, at(5), kinds=["unclaimed_p1"]) == []
        assert await tx.clear_alarms(c.id, at(5), kinds=[]) == []
        assert await tx.raise_alarm(c.id, "unclaimed_p1", at(6)) is True
        assert await tx.raise_alarm(c.id, "unclaimed_p1", at(7)) is False
        assert await tx.clear_alarms(c.id, at(8)) == ["danger_while_held", "unclaimed_p1"]
        assert await tx.list_alarms() == []
        with pytest.raises(ValueError):
            await tx.raise_alarm(c.id, "", NOW)
    with pytest.raises(NotFound):
        async with store.transaction() as tx:
            await tx.raise_alarm(c.id + 1000, "unclaimed_p1", NOW)


async def test_list_alarms_active_or_all(store: Store, crypto: Crypto) -> None:
    """list_alarms() gives active alarms, oldest raised first; active=False adds cleared
    ones with their clearing time; a re-raised alarm shows its new raising time."""
    _, c = await seed(store, crypto)
    _, d = await seed(store, crypto, "+15553334444")
    async with store.transaction() as tx:
        await tx.raise_alarm(d.id, "unclaimed_p1", at(1))
        await tx.raise_alarm(c.id, "unclaimed_p1", NOW)
        await tx.raise_alarm(c.id, "danger_while_held", at(2))
        await tx.clear_alarms(c.id, at(3), kinds=["danger_while_held"])
    async with store.transaction() as tx:
        assert await tx.list_alarms() == [
            Alarm(c.id, "unclaimed_p1", NOW, None),
            Alarm(d.id, "unclaimed_p1", at(1), None),
        ]
        assert await tx.list_alarms(active=False) == [
            Alarm(c.id, "unclaimed_p1", NOW, None),
            Alarm(d.id, "unclaimed_p1", at(1), None),
            Alarm(c.id, "danger_while_held", at(2), at(3)),
        ]
        assert await tx.raise_alarm(c.id, "danger_while_held", at(4)) is True
        assert (await tx.list_alarms())[-1] == Alarm(c.id, "danger_while_held", at(4), None)


async def test_concurrent_raisers_exactly_one_wins(store: Store, crypto: Crypto) -> None:
    """Transactions racing to raise the same alarm (as several processes' alarm loops do):
    exactly one gets True, for a new alarm and again for a cleared one."""
    _, c = await seed(store, crypto)

    async def raiser(minute: int) -> bool:
        async with store.transaction() as tx:
            raised = await tx.raise_alarm(c.id, "unclaimed_p1", at(minute))
            await asyncio.sleep(0.01)  # hold the transaction open so the others overlap
            return raised

    assert sorted(await asyncio.gather(*(raiser(m) for m in range(4)))) == [
        False,
        False,
        False,
        True,
    ]
    async with store.transaction() as tx:
        assert await tx.clear_alarms(c.id, at(10)) == ["unclaimed_p1"]
    assert sorted(await asyncio.gather(*(raiser(m) for m in range(11, 15)))) == [
        False,
        False,
        False,
        True,
    ]
    async with store.transaction() as tx:
        assert len(await tx.list_alarms(active=False)) == 1


async def test_alarms_go_with_their_conversation(store: Store, crypto: Crypto) -> None:
    """A conversation's alarms are removed by DELETE (delete_texter), quick exit
    (purge_conversation) and retention (purge_before); others' alarms stay."""
    deleted, c1 = await fill(store, crypto, "+15550000001")
    _, c2 = await fill(store, crypto, "+15550000002")
    _, c3 = await fill(store, crypto, "+15550000003")
    _, kept = await fill(store, crypto, "+15550000004")
    async with store.transaction() as tx:
        for c in (c1, c2, c3, kept):
            await tx.raise_alarm(c.id, "danger_while_held", NOW)
            await tx.raise_alarm(c.id, "unclaimed_p1", NOW)
            await tx.clear_alarms(c.id, NOW, kinds=["unclaimed_p1"])
        c3.state, c3.closed_at, c3.updated_at = "closed", NOW, NOW
        await tx.save_conversation(c3)
        kept.updated_at = at(100)  # still active: retention leaves it
        await tx.save_conversation(kept)
    async with store.transaction() as tx:
        await tx.delete_texter(deleted.id)
        await tx.purge_conversation(c2.id)
        assert await tx.purge_before(at(10)) == 2  # the closed one and the emptied row
    async with store.transaction() as tx:
        assert {a.conversation_id for a in await tx.list_alarms(active=False)} == {kept.id}
        assert len(await tx.list_alarms(active=False)) == 2


async def seeded_through(
    backend: Backend, crypto: Crypto, monkeypatch: pytest.MonkeyPatch, last: int
) -> tuple[Store, Conversation]:
    """A database migrated only through migration `last`, with a conversation in it, then
    reopened (not yet migrated further) with every migration known again."""
    module = "bot.store.sqlite" if backend.name == "sqlite" else "bot.store.postgres"
    dialect = "sqlite" if backend.name == "sqlite" else "postgres"
    monkeypatch.setattr(f"{module}.load_migrations", lambda _: load_migrations(dialect)[:last])
    old = backend.make()
    await old.open()
    try:
        assert await old.migrate() == list(range(1, last + 1))
        _, c = await seed(old, crypto)
    finally:
        await old.close()
    monkeypatch.undo()
    new = backend.make()
    await new.open()
    return new, c


async def test_migrate_brings_a_database_at_0003_up_to_alarms(
    backend: Backend, crypto: Crypto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database migrated before alarms existed (through 0003, with a conversation in it)
    gets 0004 (and any later ones) from migrate(), and its existing conversation can then
    raise an alarm."""
    new, c = await seeded_through(backend, crypto, monkeypatch, 3)
    try:
        dialect = "sqlite" if backend.name == "sqlite" else "postgres"
        later = [m.number for m in load_migrations(dialect)[3:]]  # 0004 and any after it
        assert later[0] == 4
        assert await new.pending_migrations() == later
        assert await new.migrate() == later
        async with new.transaction() as tx:
            assert await tx.raise_alarm(c.id, "unclaimed_p1", NOW) is True
            assert await tx.list_alarms() == [Alarm(c.id, "unclaimed_p1", NOW, None)]
    finally:
        await new.close()


# -- events across processes ----------------------------------------------------------------


async def test_notify_reaches_listeners(backend: Backend, store: Store) -> None:
    """On PostgreSQL a NOTIFY from one store reaches a listener on another (another
    process); SQLite has no cross-process events and says so with None."""
    if backend.name == "sqlite":
        assert store.listen("haven_events") is None
        await store.notify("haven_events", "{}")  # a harmless no-op
        return
    other = backend.make()
    await other.open()
    try:
        listener = other.listen("haven_events")
        assert isinstance(listener, PgListener)
        await listener.start()
        await store.notify("haven_events", '{"kind":"queue"}')
        await store.notify("haven_events", '{"kind":"alarm"}')
        got = [await asyncio.wait_for(anext(listener), 10) for _ in range(2)]
        assert got == ['{"kind":"queue"}', '{"kind":"alarm"}']
        await listener.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(listener)
    finally:
        await other.close()


async def test_a_cancelled_transaction_leaves_the_store_usable(store: Store) -> None:
    """A task cancelled inside a transaction (a closed WebSocket, a shutdown) rolls back:
    its write is gone and the next transaction works."""
    inside = asyncio.Event()

    async def interrupted() -> None:
        async with store.transaction(lock_key="k") as tx:
            await tx.create_texter("h-cancel", "+15550001111", "en", NOW)
            inside.set()
            await asyncio.sleep(60)

    for _ in range(3):  # cancelled while idle inside the block
        task = asyncio.create_task(interrupted())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        inside.clear()
    for yields in range(12):  # cancelled while BEGIN or a statement is in flight
        task = asyncio.create_task(interrupted())
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        inside.clear()
    async with store.transaction(lock_key="k") as tx:
        assert await tx.get_texter_by_hash("h-cancel") is None
        await tx.create_texter("h-after", "+15550002222", "en", NOW)
    async with store.transaction() as tx:
        assert await tx.get_texter_by_hash("h-after") is not None


REF = "r" * 22  # a TwiML reply's reference, as bot.engine makes them


async def _reply(tx: Tx, conversation_id: int, ref: str = REF) -> Message:
    return await tx.add_message(
        Message(
            conversation_id, "out", "we're here", author="haven", status="replied", reply_ref=ref
        )
    )


async def test_a_twiml_replys_sid_is_recorded_then_redacted_with_its_conversation(
    store: Store, crypto: Crypto
) -> None:
    """The callback's SID lands on the reply with that reference ("recorded"; again:
    "known", unchanged), and retention erasing the conversation records it for redaction;
    a reference that names no message ("erased") is due for redaction at once."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        await _reply(tx, c.id)
        assert await tx.record_reply_sid(REF, "SMreply1") == "recorded"
        assert await tx.record_reply_sid(REF, "SMreply2") == "known"
        (m,) = await tx.list_messages(c.id)
        assert (m.provider_sid, m.reply_ref, m.status) == ("SMreply1", REF, "replied")
        assert await tx.claim_redactions(NOW) == []
        c.state, c.closed_at, c.updated_at = "closed", NOW, NOW
        await tx.save_conversation(c)
        assert await tx.purge_before(NOW + timedelta(days=1)) == 1
        assert await tx.claim_redactions(NOW) == [("SMreply1", 1)]
        assert await tx.record_reply_sid("gone" * 6, "SMlate1") == "erased"
        assert await tx.claim_redactions(NOW) == [("SMlate1", 1)]


async def test_a_reply_sid_recorded_during_an_erasure_is_still_redacted(
    store: Store, crypto: Crypto
) -> None:
    """A callback records a reply's SID while a quick exit erases its conversation at the
    same moment (PostgreSQL: two connections; the erasure waits for the callback's row):
    the SID is still recorded for redaction, never lost between the two."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        await _reply(tx, c.id)
    recorded, release = asyncio.Event(), asyncio.Event()

    async def callback() -> None:
        async with store.transaction() as tx:
            assert await tx.record_reply_sid(REF, "SMduring1") == "recorded"
            recorded.set()
            await release.wait()

    async def erase() -> None:
        async with store.transaction() as tx:
            await tx.purge_conversation(c.id)

    callback_task = asyncio.create_task(callback())
    await recorded.wait()
    erase_task = asyncio.create_task(erase())
    await asyncio.sleep(0.3)  # the erasure has begun and waits
    release.set()
    await asyncio.gather(callback_task, erase_task)
    async with store.transaction() as tx:
        assert await tx.claim_redactions(NOW) == [("SMduring1", 1)]


async def test_erasure_records_sids_for_redaction_once(store: Store, crypto: Crypto) -> None:
    """A quick exit records its messages' SIDs (not console ones) for redaction at Twilio;
    one claimer gets each, a failed one comes back at its retry time with the attempt
    counted, and a finished one is gone."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        await tx.add_message(Message(c.id, "in", "hi", provider_sid="SMtwilio1", created_at=NOW))
        m = await outbound(tx, c.id)
        assert m.id is not None
        await tx.set_message_status(m.id, "sent", provider_sid="SMconsole123")
        await tx.purge_conversation(c.id)
    async with store.transaction() as tx:
        assert await tx.claim_redactions(NOW) == [("SMtwilio1", 1)]
        assert await tx.claim_redactions(NOW) == []
        await tx.finish_redaction("SMtwilio1", False, NOW, NOW + timedelta(minutes=1))
        assert await tx.claim_redactions(NOW) == []
        assert await tx.claim_redactions(NOW + timedelta(minutes=1)) == [("SMtwilio1", 2)]
        await tx.finish_redaction("SMtwilio1", True, NOW)
        assert await tx.claim_redactions(NOW + timedelta(days=1)) == []


# -- the dashboard's page reads (issue 11: bounded, by index) --------------------------------


async def test_texter_conversations_reads_one_texters_newest_first(
    store: Store, crypto: Crypto
) -> None:
    """texter_conversations returns only that texter's conversations, newest first, filtered
    by state and cut at the limit; note_counts counts each conversation's notes."""
    texter, first = await seed(store, crypto)
    other, theirs = await seed(store, crypto, "+15550001111")
    async with store.transaction() as tx:
        first.state = "closed"
        await tx.save_conversation(first)
        second = await tx.create_conversation(texter.id, "en", at(1))
        second.state = "closed"
        await tx.save_conversation(second)
        third = await tx.create_conversation(texter.id, "en", at(2))
        await tx.add_note(first.id, 1, "a", NOW)
        await tx.add_note(first.id, 1, "b", NOW)
        await tx.add_note(theirs.id, 1, "c", NOW)
    async with store.reading() as tx:
        found = await tx.texter_conversations(texter.id)
        assert [c.id for c in found] == [third.id, second.id, first.id]
        ended = await tx.texter_conversations(texter.id, states=["closed"], limit=1)
        assert [c.id for c in ended] == [second.id]
        assert await tx.texter_conversations(texter.id, states=[]) == []
        assert [c.id for c in await tx.texter_conversations(other.id)] == [theirs.id]
        counts = await tx.note_counts([first.id, second.id, theirs.id])
        assert counts == {first.id: 2, theirs.id: 1}
        assert await tx.note_counts([]) == {}


async def test_batch_reads_of_texters_and_inbound_messages(store: Store, crypto: Crypto) -> None:
    """get_texters reads several texters by id (unknown ids absent); inbound_messages gives
    each conversation's texter messages only, in order, decrypted."""
    one, c1 = await seed(store, crypto)
    two, c2 = await seed(store, crypto, "+15550002222")
    async with store.transaction() as tx:
        await tx.add_message(Message(c1.id, "in", "first", created_at=NOW))
        await outbound(tx, c1.id, "a reply")
        await tx.add_message(Message(c1.id, "in", "second", created_at=at(1)))
        await tx.add_message(Message(c2.id, "in", "theirs", created_at=NOW))
    async with store.reading() as tx:
        texters = await tx.get_texters([one.id, two.id, 999_999])
        assert set(texters) == {one.id, two.id}
        assert texters[two.id].phone == "+15550002222"
        said = await tx.inbound_messages([c1.id, c2.id, 999_999])
        assert [m.body for m in said[c1.id]] == ["first", "second"]
        assert [m.body for m in said[c2.id]] == ["theirs"]
        assert 999_999 not in said
        assert await tx.get_texters([]) == {} and await tx.inbound_messages([]) == {}


async def test_unread_count_counts_texter_messages_since_the_users_last_view(
    store: Store, crypto: Crypto
) -> None:
    """unread_count: every texter message before the user ever viewed; after a view, only
    the later ones; another user's view or another action does not count as this user's."""
    _, conv = await seed(store, crypto)
    async with store.transaction() as tx:
        await tx.add_message(Message(conv.id, "in", "one", created_at=at(1)))
        await outbound(tx, conv.id)
        await tx.add_message(Message(conv.id, "in", "two", created_at=at(2)))
        assert await tx.unread_count(conv.id, 7) == 2
        await tx.audit(7, "view", conv.id, "", at(1.5))
        await tx.audit(8, "view", conv.id, "", at(3))
        await tx.audit(7, "note", conv.id, "", at(3))
        assert await tx.unread_count(conv.id, 7) == 1
        assert await tx.unread_count(conv.id, 8) == 0
        await tx.audit(7, "view", conv.id, "", at(4))
        assert await tx.unread_count(conv.id, 7) == 0


async def test_list_waiting_and_get_conversations(store: Store, crypto: Crypto) -> None:
    """list_waiting gives only queued, unheld conversations with a queued_at, with their
    ordering columns; get_conversations reads several by id (unknown ids absent)."""
    _, waiting = await seed(store, crypto)
    _, held = await seed(store, crypto, "+15550003333")
    _, new = await seed(store, crypto, "+15550004444")
    await queue(store, waiting.id)
    async with store.transaction() as tx:
        c = await tx.get_conversation(held.id)
        c.state, c.queued_at, c.advocate_id, c.priority, c.team = "queued", NOW, 5, 2, "t"
        await tx.save_conversation(c)
        w = await tx.get_conversation(waiting.id)
        w.priority, w.team = 1, "legal"
        await tx.save_conversation(w)
    async with store.reading() as tx:
        rows = await tx.list_waiting()
        assert [(r.id, r.priority, r.queued_at, r.team) for r in rows] == [
            (waiting.id, 1, NOW, "legal")
        ]
        assert rows[0].texter_id == w.texter_id and rows[0].program_id is None
        found = await tx.get_conversations([waiting.id, new.id, 999_999])
        assert set(found) == {waiting.id, new.id}
        assert found[waiting.id].team == "legal"
        assert await tx.get_conversations([]) == {}


async def test_light_queue_reads(store: Store, crypto: Crypto) -> None:
    """get_waiting gives list_waiting's row of a waiting conversation only; count_waiting
    counts per priority all (every), up to a time (through, inclusive) and the ties at
    tie_with's queued_at that list_waiting lists first, in one program only; held_counts
    counts held conversations per holder; claim_spans gives (claimed_at, closed_at) in
    list_conversations' order, up to the limit."""
    convs = [(await seed(store, crypto, f"+1555000{i:04d}"))[1] for i in range(6)]
    async with store.transaction() as tx:
        program = await tx.add_program("north", "North", "+15550009999", None, None, False, NOW)
        plan = [  # priority, queued_at, updated_at, advocate, state
            (3, at(-10), at(1), None, "queued"),
            (3, at(-10), at(2), None, "queued"),  # same queued_at, listed first
            (4, at(-20), at(1), None, "queued"),
            (2, at(-5), at(1), 7, "with_advocate"),
            (1, at(-1), at(1), 7, "queued"),  # held: not waiting
            (3, None, at(1), 8, "closed"),
        ]
        for c, (priority, queued, updated, holder, state) in zip(convs, plan, strict=True):
            c.priority, c.queued_at, c.updated_at, c.advocate_id, c.state = (
                priority,
                queued,
                updated,
                holder,
                state,
            )
            if state == "closed":
                c.claimed_at, c.closed_at = at(-30), at(-20)
            await tx.save_conversation(c)
    async with store.transaction() as tx:
        first, second, old, held, held_queued, _ = convs
        mine = await tx.get_waiting(first.id)
        assert mine is not None and (mine.priority, mine.queued_at) == (3, at(-10))
        assert await tx.get_waiting(held.id) is None
        assert await tx.get_waiting(held_queued.id) is None
        assert await tx.count_waiting(None, [Ahead(p, every=True) for p in (1, 2, 3, 4)]) == 3
        assert await tx.count_waiting(None, [Ahead(4, every=True)]) == 1
        assert await tx.count_waiting(None, [Ahead(3, through=at(-10))]) == 2  # inclusive
        assert await tx.count_waiting(None, [Ahead(3, through=at(-11))]) == 0
        # first's tie: second (newer activity) is listed before it, not first itself.
        assert await tx.count_waiting(None, [Ahead(3, ties=True)], mine) == 1
        other = await tx.get_waiting(second.id)
        assert await tx.count_waiting(None, [Ahead(3, ties=True)], other) == 0
        assert await tx.count_waiting(None, [Ahead(3, ties=True)]) == 0  # no tie_with
        assert await tx.count_waiting(None, []) == 0
        await tx.set_conversation_program(old.id, program.id)
        assert await tx.count_waiting(None, [Ahead(4, every=True)]) == 0
        assert await tx.count_waiting(program.id, [Ahead(4, every=True)]) == 1
        assert await tx.held_counts(["with_advocate", "queued"]) == {7: 2}
        assert await tx.held_counts(["with_advocate"]) == {7: 1}
        assert await tx.held_counts([]) == {}
        assert await tx.claim_spans(["closed"], 50) == [(at(-30), at(-20))]
        spans = await tx.claim_spans(["queued", "closed"], 2)
        listed = await tx.list_conversations(states=["queued", "closed"], limit=2)
        assert spans == [(c.claimed_at, c.closed_at) for c in listed]


async def test_held_or_offered_and_inbound_marks(store: Store, crypto: Crypto) -> None:
    """held_or_offered gives the conversations in the states asked that the user holds or
    is offered, newest activity first, and no one else's; inbound_marks gives each
    conversation's newest texter message id and count of texter messages (replies not
    counted; none: absent)."""
    convs = [(await seed(store, crypto, f"+1555100{i:04d}"))[1] for i in range(4)]
    async with store.transaction() as tx:
        plan = [(7, None, at(1)), (8, 7, at(3)), (8, None, at(2)), (7, None, at(4))]
        for c, (holder, offered_to, updated) in zip(convs, plan, strict=True):
            c.state, c.advocate_id, c.transfer_to, c.updated_at = (
                "with_advocate",
                holder,
                offered_to,
                updated,
            )
            await tx.save_conversation(c)
        last = convs[3]
        last.state = "closed"
        await tx.save_conversation(last)
        first, offered, _, _ = convs
        for body in ("one", "two"):
            said = await tx.add_message(Message(first.id, "in", body))
        await outbound(tx, first.id)
    async with store.reading() as tx:
        found = await tx.held_or_offered(7, ["with_advocate"])
        assert [c.id for c in found] == [offered.id, first.id]
        assert [c.id for c in await tx.held_or_offered(7, ["with_advocate", "closed"])] == [
            last.id,
            offered.id,
            first.id,
        ]
        assert await tx.held_or_offered(7, []) == []
        assert await tx.inbound_marks([first.id, offered.id]) == {first.id: (said.id, 2)}


async def test_the_newest_closed_are_read_through_an_index(tmp_path: Path, crypto: Crypto) -> None:
    """Migration 0012: claim_spans (the wait estimate's handling times, inside the webhook)
    and list_waiting walk conversations_recent in order, never sorting every conversation
    of the state (300 ms at 100,000 closed before it)."""
    store = SqliteStore(str(tmp_path / "plan.db"), crypto)
    await store.open()
    await store.migrate()
    said: list[str] = []
    try:
        await store.trace(said.append)  # the writer's connection: read in a transaction
        async with store.transaction() as tx:
            await tx.claim_spans(["closed"], 50)
            await tx.list_waiting()
        await store.trace(None)
    finally:
        await store.close()
    reads = [s for s in said if s.lstrip().startswith("SELECT")]
    assert len(reads) == 2
    with contextlib.closing(sqlite3.connect(tmp_path / "plan.db")) as db:
        for sql in reads:
            plan = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql))
            assert "conversations_recent" in plan and "TEMP B-TREE" not in plan, plan

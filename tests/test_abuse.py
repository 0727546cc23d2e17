"""Abuse of the SMS line (issue 10): a per-number reply limit that never silences danger,
and the block list's effect on inbound messages, through the real webhook and store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from bot import abuse
from bot.keys import ENGINE, STORE
from bot.settings import Settings, SettingsError
from bot.sms.webhook import InboundSms
from bot.store import Store
from tests.helpers import new_sid

Text = Callable[..., Awaitable[list[str]]]
FLOODER = "+15557770001"
DANGER = "he has a gun and says he will kill me"
# Recent, so serve's retention (which runs as the app starts) never takes these texters.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


# A small reply limit, so a flood reaches it quickly.
pytestmark = pytest.mark.settings(reply_limit=3, reply_window=600)


async def _inbound(client: TestClient, texter: str) -> int:
    """Inbound messages stored for this number, across its conversations."""
    store = client.server.app[STORE]
    crypto_hash = client.server.app[ENGINE].hash
    async with store.transaction() as tx:
        found = await tx.get_texter_by_hash(crypto_hash(texter))
        assert found is not None
        total = 0
        for conv in await tx.list_conversations(limit=1000):
            if conv.texter_id == found.id:
                total += sum(m.direction == "in" for m in await tx.list_messages(conv.id))
    return total


def test_the_window_allows_the_limit_then_refuses_until_it_rolls_over() -> None:
    """The pure rule: `limit` replies per window, counted from the window's first reply;
    danger is always allowed (and still counted)."""
    window = timedelta(minutes=10)
    state: tuple[datetime, int] | None = None
    verdicts = []
    for i in range(5):
        allowed, state = abuse.next_window(state, T0 + timedelta(seconds=i), 3, window, False)
        verdicts.append(allowed)
    assert verdicts == [True, True, True, False, False]
    allowed, state = abuse.next_window(state, T0 + timedelta(seconds=9), 3, window, True)
    assert allowed and state == (T0, 4)
    allowed, state = abuse.next_window(state, T0 + window, 3, window, False)
    assert allowed and state == (T0 + window, 1)


async def test_a_flood_gets_at_most_the_limit_of_replies_but_everything_is_kept(
    client: TestClient, text: Text
) -> None:
    """Twelve texts in a row from one number (HELP, which is always answered) get replies to
    three of them; all twelve are stored (and triaged); another number is answered."""
    replies = [await text("HELP", number=FLOODER) for i in range(12)]
    assert sum(1 for r in replies if r) == 3, replies
    assert replies[-6:] == [[]] * 6
    assert await _inbound(client, FLOODER) == 12
    assert await text("hi", number="+15557770002")


async def test_danger_is_never_silenced_by_the_limit(client: TestClient, text: Text) -> None:
    """Past the limit, a message showing danger still gets the emergency text (rule 1),
    and the conversation goes to the front of the queue at priority 1."""
    for i in range(6):
        await text(f"hello {i}", number=FLOODER)
    danger = await text(DANGER, number=FLOODER)
    assert danger and "911" in danger[0]
    async with client.server.app[STORE].transaction() as tx:
        queued = await tx.list_conversations(states=["queued"])
    assert [c.priority for c in queued] == [1]


async def test_replies_resume_when_the_window_rolls_over(client: TestClient) -> None:
    """The limit is per window: ten minutes after the window opened, the number is answered
    again."""
    engine = client.server.app[ENGINE]

    async def send(body: str, at: datetime) -> list[str]:
        return (
            await engine.handle_inbound(InboundSms(new_sid(), FLOODER, "+1555", body), at)
        ).texts

    answered = [await send("HELP", T0 + timedelta(seconds=i)) for i in range(6)]
    assert sum(1 for r in answered if r) == 3
    assert await send("HELP", T0 + timedelta(minutes=9)) == []
    assert await send("HELP", T0 + timedelta(minutes=10)) != []


async def test_a_blocked_number_is_kept_but_unanswered_unless_in_danger(
    client: TestClient, text: Text
) -> None:
    """A blocked number's message is stored, gets no reply and steps no flow; a message of
    theirs showing danger still gets the emergency text."""
    assert await text("hi", number=FLOODER)
    store = client.server.app[STORE]
    async with store.transaction() as tx:
        texter = await tx.get_texter_by_hash(client.server.app[ENGINE].hash(FLOODER))
        assert texter is not None
        await tx.block_texter(texter.id, None, T0)
        (before,) = await tx.list_conversations(limit=10)
    assert await text("AGENT", number=FLOODER) == []
    async with store.transaction() as tx:
        after = await tx.get_conversation(before.id)
        assert await abuse.is_blocked(tx, texter)
    assert after.state == before.state  # no flow step: AGENT did not queue them
    assert await _inbound(client, FLOODER) == 2
    danger = await text(DANGER, number=FLOODER)
    assert danger and "911" in danger[0]


def test_reply_limit_settings_default_to_twenty_per_ten_minutes() -> None:
    """HAVEN_REPLY_LIMIT and HAVEN_REPLY_WINDOW default to 20 replies per 10 minutes."""
    assert (Settings.from_env({}).reply_limit, Settings.from_env({}).reply_window) == (20, 600)
    custom = Settings.from_env({"HAVEN_REPLY_LIMIT": "3", "HAVEN_REPLY_WINDOW": "60"})
    assert (custom.reply_limit, custom.reply_window) == (3, 60)
    with pytest.raises(SettingsError, match="HAVEN_REPLY_LIMIT"):
        Settings.from_env({"HAVEN_REPLY_LIMIT": "0"})


async def test_store_keeps_blocks_and_reply_windows_and_drops_them_with_the_texter(
    store: Store,
) -> None:
    """On both backends: block and unblock report whether they changed anything; a reply
    window is written and overwritten; both go when the texter is deleted."""
    async with store.transaction() as tx:
        texter = await tx.create_texter("hash-1", FLOODER, "en", T0)
        assert not await tx.texter_blocked(texter.id)
        assert await tx.block_texter(texter.id, None, T0)
        assert not await tx.block_texter(texter.id, None, T0)
        assert await tx.texter_blocked(texter.id)
        assert await tx.reply_window(texter.id) is None
        await tx.set_reply_window(texter.id, T0, 1)
        await tx.set_reply_window(texter.id, T0, 2)
        assert await tx.reply_window(texter.id) == (T0, 2)
        assert await tx.unblock_texter(texter.id)
        assert not await tx.unblock_texter(texter.id)
        await tx.block_texter(texter.id, None, T0)
        await tx.delete_texter(texter.id)
        again = await tx.create_texter("hash-1", FLOODER, "en", T0)
        assert not await tx.texter_blocked(again.id)
        assert await tx.reply_window(again.id) is None


async def test_a_blocked_number_can_still_stop_and_erase(client: TestClient, text: Text) -> None:
    """Blocking never takes away a texter's rights: STOP still opts them out, and DELETE
    (with its YES) still erases everything about the number (past the reply limit the
    confirmations are not texted, but the rights are carried out)."""
    assert await text("hi", number=FLOODER)
    store = client.server.app[STORE]
    engine = client.server.app[ENGINE]
    async with store.transaction() as tx:
        texter = await tx.get_texter_by_hash(engine.hash(FLOODER))
        assert texter is not None
        await tx.block_texter(texter.id, None, T0)
    assert await text("STOP", number=FLOODER)
    async with store.transaction() as tx:
        stopped = await tx.get_texter_by_hash(engine.hash(FLOODER))
        assert stopped is not None and stopped.opted_out
    await text("DELETE", number=FLOODER)
    await text("YES", number=FLOODER)
    async with store.transaction() as tx:
        assert await tx.get_texter_by_hash(engine.hash(FLOODER)) is None

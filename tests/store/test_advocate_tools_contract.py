"""The store contract for screens and safety plans (migration 0008), on both backends:
round trip, encrypted at rest, and gone with the conversation (quick exit and DELETE)."""

from __future__ import annotations

import pytest

from bot.crypto import Crypto
from bot.store import NotFound, Store
from tests.helpers import Backend

from .test_contract import NOW, at, seed


async def test_screens_and_plans_round_trip_encrypted(
    backend: Backend, store: Store, crypto: Crypto
) -> None:
    """Screens list oldest first; a plan is replaced whole and its sent mark cleared by a
    change; neither the answers nor the plan's words are stored in the clear."""
    _texter, conv = await seed(store, crypto)
    async with store.transaction() as tx:
        first = await tx.add_screen(conv.id, "lethality", None, {"basis": "zebra-basis"}, NOW)
        await tx.add_screen(conv.id, "trafficking", None, {"answers": {"t1": "yes"}}, at(1))
        await tx.save_safety_plan(conv.id, None, {"code_word": "pineapple-word"}, NOW)
        await tx.mark_safety_plan_sent(conv.id, at(2))
        sent = await tx.get_safety_plan(conv.id)
        changed = await tx.save_safety_plan(conv.id, None, {"pets": "dog"}, at(3))
        listed = await tx.list_screens(conv.id)
    assert [s.kind for s in listed] == ["lethality", "trafficking"]
    assert listed[0] == first and first.data == {"basis": "zebra-basis"}
    assert sent is not None and sent.sent_at == at(2)
    assert changed.sections == {"pets": "dog"} and changed.sent_at is None
    dump = await backend.raw_dump()
    assert b"zebra-basis" not in dump and b"dog" not in dump
    with pytest.raises(NotFound):
        async with store.transaction() as tx:
            await tx.add_screen(conv.id + 99, "lethality", None, {}, NOW)


async def test_gone_with_the_conversation(store: Store, crypto: Crypto) -> None:
    """Quick exit's purge and DELETE take the screens and the plan with them."""
    texter, conv = await seed(store, crypto)
    other_texter, other = await seed(store, crypto, "+15550001111")
    async with store.transaction() as tx:
        for c in (conv, other):
            await tx.add_screen(c.id, "lethality", None, {}, NOW)
            await tx.save_safety_plan(c.id, None, {"place": "x"}, NOW)
        await tx.purge_conversation(conv.id)
        assert await tx.list_screens(conv.id) == []
        assert await tx.get_safety_plan(conv.id) is None
        assert len(await tx.list_screens(other.id)) == 1
        await tx.delete_texter(other_texter.id)
    async with store.transaction() as tx:
        assert await tx.list_screens(other.id) == []
        assert await tx.get_safety_plan(other.id) is None
    assert texter.id != other_texter.id

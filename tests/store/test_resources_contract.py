"""The store contract for the resource directory and referrals, on both backends."""

from __future__ import annotations

import pytest

from bot.crypto import Crypto
from bot.store import NotFound, Store
from bot.store.base import ResourceSite
from tests.helpers import Backend

from .test_contract import NOW, at, seed, seeded_through


def site(
    n: int, lat: float | None = 41.88, lon: float | None = -87.62, **more: object
) -> ResourceSite:
    return ResourceSite(
        id=f"sal-{n}",
        service_id=f"svc-{n}",
        name=f"Service {n}",
        latitude=lat,
        longitude=lon,
        **more,
    )


async def test_replace_and_search_by_box_and_need(store: Store) -> None:
    """Sites round-trip; the box query finds placed sites inside it only, filtered by need
    as a whole word; unplaced sites are kept but never found by place."""
    sites = [
        site(1, needs=["shelter", "hotline"], phone="312-555-0101", schedule='{"x":1}'),
        site(2, 41.90, -87.70, needs=["shelter"]),
        site(3, 45.0, -93.0, needs=["legal"]),
        site(4, None, None, needs=["shelter"]),
    ]
    async with store.transaction() as tx:
        assert await tx.replace_resources(sites, NOW) == 4
        assert await tx.count_resource_sites() == 4
        found = await tx.resource_sites_in_box(41.0, 42.0, -88.0, -87.0)
        assert found == sites[:2]
        assert [s.id for s in await tx.resource_sites_in_box(41, 42, -88, -87, "hotline")] == [
            "sal-1"
        ]
        assert await tx.resource_sites_in_box(41, 42, -88, -87, "shelt") == []
        assert await tx.resource_sites_in_box(0, 90, -180, 180, "legal") == [sites[2]]


async def test_replace_is_whole_and_rolls_back_whole(store: Store) -> None:
    """A re-import replaces every row; one that fails part-way leaves the old directory."""
    async with store.transaction() as tx:
        await tx.replace_resources([site(1), site(2)], NOW)
    async with store.transaction() as tx:
        await tx.replace_resources([site(3)], at(1))
        assert [s.id for s in await tx.resource_sites_in_box(-90, 90, -180, 180)] == ["sal-3"]
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.replace_resources([site(5), site(6)], at(2))
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert [s.id for s in await tx.resource_sites_in_box(-90, 90, -180, 180)] == ["sal-3"]
    with pytest.raises(ValueError, match="share an id"):
        async with store.transaction() as tx:
            await tx.replace_resources([site(7), site(7)], at(3))


async def test_many_sites_import_in_batches(store: Store) -> None:
    """More sites than one INSERT carries all arrive."""
    many = [site(n, 40 + n / 1000, -87.0) for n in range(450)]
    async with store.transaction() as tx:
        assert await tx.replace_resources(many, NOW) == 450
        assert await tx.count_resource_sites() == 450


async def test_referrals_are_recorded_listed_and_counted(store: Store, crypto: Crypto) -> None:
    """A referral keeps the service's name through a re-import that drops the service; an
    unknown service or conversation is NotFound; stats count referrals, per program
    and since a conversation's start."""
    _, c = await seed(store, crypto)
    async with store.transaction() as tx:
        await tx.replace_resources([site(1), site(2)], NOW)
        first = await tx.record_referral(c.id, "svc-1", 7, NOW)
        second = await tx.record_referral(c.id, "svc-2", None, at(1))
        with pytest.raises(NotFound):
            await tx.record_referral(c.id, "svc-nope", 7, NOW)
        with pytest.raises(NotFound):
            await tx.record_referral(c.id + 99, "svc-1", 7, NOW)
    async with store.transaction() as tx:
        await tx.replace_resources([site(3)], at(2))
        listed = await tx.list_referrals(c.id)
        assert listed == [first, second]
        assert (listed[0].name, listed[0].user_id, listed[0].created_at) == ("Service 1", 7, NOW)
        assert listed[1].user_id is None
        assert (await tx.stats())["referrals"] == 2
        assert await tx.program_referral_count(None) == 2
        assert await tx.program_referral_count(None, since=NOW) == 2  # started at NOW
        assert await tx.program_referral_count(None, since=at(1)) == 0


@pytest.mark.parametrize("how", ["delete", "exit", "retention"])
async def test_referrals_go_with_their_conversation(store: Store, crypto: Crypto, how: str) -> None:
    """DELETE (texter deleted), EXIT (conversation purged) and retention each remove the
    conversation's referrals."""
    texter, c = await seed(store, crypto)
    async with store.transaction() as tx:
        await tx.replace_resources([site(1)], NOW)
        await tx.record_referral(c.id, "svc-1", 7, NOW)
        if how == "delete":
            await tx.delete_texter(texter.id)
        elif how == "exit":
            await tx.purge_conversation(c.id)
        else:
            conversation = await tx.get_conversation(c.id)
            conversation.state, conversation.closed_at = "closed", NOW
            await tx.save_conversation(conversation)
            assert await tx.purge_before(at(60 * 24 * 400)) == 1
        assert await tx.list_referrals(c.id) == []
        assert (await tx.stats())["referrals"] == 0


async def test_migrate_brings_a_database_at_0004_up_to_resources(
    backend: Backend, crypto: Crypto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database migrated through 0004, with a conversation, gets 0005 and can then hold
    a directory and a referral on that conversation."""
    new, c = await seeded_through(backend, crypto, monkeypatch, 4)
    try:
        assert 5 in await new.migrate()
        async with new.transaction() as tx:
            await tx.replace_resources([site(1)], NOW)
            assert (await tx.record_referral(c.id, "svc-1", None, NOW)).name == "Service 1"
    finally:
        await new.close()

"""Accounts: argon2 hashes, the `users add` code path, and login throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from bot.dashboard.accounts import (
    AccountError,
    LoginThrottle,
    add_user_cli,
    authenticate,
    verify_password,
)
from bot.keys import STORE
from bot.store.base import Store
from tests.helpers import PASSWORD, Backend

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


async def test_add_user_stores_an_argon2_hash_that_verifies(client: TestClient) -> None:
    """`users add` stores an argon2id hash, never the password, and sign-in checks it."""
    store = client.server.app[STORE]
    user = await add_user_cli(store, "maria", "advocate", PASSWORD, ["spanish"])
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)
    assert (await authenticate(store, "maria", PASSWORD)) is not None
    assert (await authenticate(store, "maria", PASSWORD + "x")) is None
    assert (await authenticate(store, "nobody", PASSWORD)) is None
    async with store.transaction() as tx:
        stored = await tx.get_user_by_name("maria")
    assert stored is not None and stored.role == "advocate" and stored.teams == ["spanish"]


@pytest.mark.parametrize(
    ("name", "role", "password", "why"),
    [
        ("ok", "boss", PASSWORD, "role"),
        ("ok", "advocate", "short", "password"),
        ("bad name!", "advocate", PASSWORD, "name"),
        ("", "advocate", PASSWORD, "name"),
    ],
)
async def test_add_user_rejects_bad_input_and_stores_nothing(
    client: TestClient, name: str, role: str, password: str, why: str
) -> None:
    """A bad role, short password or bad name is refused with a message naming it."""
    store = client.server.app[STORE]
    with pytest.raises(AccountError, match=why):
        await add_user_cli(store, name, role, password)
    async with store.transaction() as tx:
        assert await tx.list_users() == []


async def test_add_user_refuses_a_taken_name(client: TestClient) -> None:
    """A second account with the same name is refused; the first keeps its role."""
    store = client.server.app[STORE]
    await add_user_cli(store, "sam", "advocate", PASSWORD)
    with pytest.raises(AccountError, match="already exists"):
        await add_user_cli(store, "sam", "admin", PASSWORD)
    async with store.transaction() as tx:
        users = await tx.list_users()
    assert [(u.name, u.role) for u in users] == [("sam", "advocate")]


async def _fail(
    throttle: LoginThrottle, store: Store, name: str, address: str, at: datetime
) -> float:
    """One wrong attempt as the login view makes it; the wait it was refused with, or 0."""
    wait = await throttle.begin(store, name, address, at)
    if wait == 0:
        await throttle.failed(store, name, address, at)
    return wait


# The throttle's policy, on its state in each backend (SQLite and PostgreSQL).


async def test_throttle_locks_an_address_and_name_after_five_failures_and_unlocks_later(
    store: Store,
) -> None:
    """Five wrong passwords for one name from one address lock that pair; the same name
    from another (clean) address and another name are still checked; the lock runs out."""
    throttle = LoginThrottle(limit=5, lock=timedelta(minutes=1))
    for i in range(5):
        assert await _fail(throttle, store, "ana", "10.0.0.1", T0 + timedelta(seconds=i)) == 0
    later = T0 + timedelta(seconds=6)
    assert await throttle.begin(store, "ana", "10.0.0.1", later) > 0
    assert await throttle.begin(store, "ana", "10.0.0.9", later) == 0
    assert await throttle.begin(store, "bob", "10.0.0.1", later) == 0
    assert await throttle.begin(store, "ana", "10.0.0.1", T0 + timedelta(minutes=2)) == 0


async def test_throttle_counts_attempts_before_they_are_checked(store: Store) -> None:
    """Attempts still being checked count: with the limit in flight, the next is refused
    at once; a success refunds its own attempt and clears its pair."""
    throttle = LoginThrottle(limit=3)
    assert [await throttle.begin(store, "ana", "a", T0) for _ in range(3)] == [0, 0, 0]
    assert await throttle.begin(store, "ana", "a", T0) > 0
    await throttle.succeeded(store, "ana", "a", T0)
    assert await throttle.begin(store, "ana", "a", T0) == 0


async def test_throttle_lock_doubles_on_repeat_lockouts(store: Store) -> None:
    """A second lock-out of the same pair lasts twice as long as the first."""
    throttle = LoginThrottle(limit=2, lock=timedelta(minutes=1), name_limit=10)
    for _ in range(2):
        await _fail(throttle, store, "ana", "a", T0)
    first = await throttle.begin(store, "ana", "a", T0)
    later = T0 + timedelta(minutes=5)
    for _ in range(2):
        await _fail(throttle, store, "ana", "a", later)
    assert await throttle.begin(store, "ana", "a", later) == pytest.approx(first * 2)


async def test_throttle_limits_one_address_spraying_many_names(store: Store) -> None:
    """One client trying many names is locked after four times the per-pair limit; another
    address is not."""
    throttle = LoginThrottle(limit=2)
    for i in range(8):
        assert await _fail(throttle, store, f"user{i}", "10.9.9.9", T0) == 0
    assert await throttle.begin(store, "someone-new", "10.9.9.9", T0) > 0
    assert await throttle.begin(store, "someone-new", "10.1.1.1", T0) == 0


async def test_a_hot_name_refuses_failing_addresses_but_not_clean_ones(store: Store) -> None:
    """Past the soft per-name limit, addresses that have been failing are refused for that
    name, one guess each for new addresses, and a clean address is still checked."""
    throttle = LoginThrottle(limit=5, name_limit=4)
    for i in range(4):
        assert await _fail(throttle, store, "ana", f"10.0.0.{i}", T0) == 0
    assert await throttle.begin(store, "ana", "10.0.0.1", T0) > 0
    assert await _fail(throttle, store, "ana", "10.0.0.50", T0) == 0
    assert await throttle.begin(store, "ana", "10.0.0.50", T0) > 0
    assert await throttle.begin(store, "ana", "192.168.1.1", T0) == 0
    assert await throttle.begin(store, "ana", "10.0.0.1", T0 + timedelta(minutes=16)) == 0


async def test_throttle_state_holds_no_address_or_name_and_is_pruned(
    store: Store, backend: Backend
) -> None:
    """The database keeps keyed hashes only: neither the address nor the name is in it;
    pruning a day later removes the attempts and the ended lock-outs."""
    throttle = LoginThrottle(limit=1)
    await _fail(throttle, store, "ana-the-advocate", "203.0.113.77", T0)
    raw = await backend.raw_dump()
    assert b"203.0.113.77" not in raw and b"ana-the-advocate" not in raw
    async with store.transaction() as tx:
        assert (
            await tx.prune_login_throttle(T0 + timedelta(days=1)) == 3
        )  # the address's and the name's attempts; the pair's lock
        assert await tx.prune_login_throttle(T0 + timedelta(days=1)) == 0

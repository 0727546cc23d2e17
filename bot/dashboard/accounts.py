"""Accounts: argon2 password hashes, the `users add` command, sign-in and login throttling."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.store.base import Conflict, Store, User

ROLES = ("advocate", "supervisor", "admin")
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as much as a wrong password
# and response time does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("haven-dummy-password-for-timing")


class AccountError(ValueError):
    """Bad account input; the message says what is wrong."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def validate_new_user(name: str, role: str, password: str, teams: Sequence[str]) -> None:
    if not _NAME.match(name):
        raise AccountError(
            "name must be 1-64 characters: letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    for team in teams:
        if not _TEAM.match(team):
            raise AccountError(
                f"team names are lowercase letters, digits, '_' or '-'; got {team!r}"
            )


async def add_user_cli(
    store: Store,
    name: str,
    role: str,
    password: str,
    teams: Sequence[str] = (),
    now: datetime | None = None,
) -> User:
    """Create an account (the `python -m bot users add` command). Raises AccountError on bad
    input or a taken name, and then stores nothing."""
    validate_new_user(name, role, password, teams)
    password_hash = hash_password(password)
    try:
        async with store.transaction() as tx:
            if await tx.get_user_by_name(name) is not None:
                raise AccountError(f"a user named {name!r} already exists")
            return await tx.add_user(
                name, role, password_hash, list(teams), now or datetime.now(UTC)
            )
    except Conflict:
        raise AccountError(f"a user named {name!r} already exists") from None


async def authenticate(store: Store, name: str, password: str) -> User | None:
    """The active user with this name and password, else None (same cost either way)."""
    async with store.transaction() as tx:
        user = await tx.get_user_by_name(name) if _NAME.match(name) else None
        if user is None:
            verify_password(_DUMMY_HASH, password)
            return None
        if not verify_password(user.password_hash, password) or not user.active:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
            await tx.save_user(user)
        return user


@dataclass
class _Failures:
    times: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None


class LoginThrottle:
    """Slows password guessing: after `limit` failures within `window` for one name, or
    `limit * 4` for one client address, further attempts are refused until the lock runs out.
    The lock doubles with each further lock-out (capped). In memory, per process: with
    several web processes an attacker gets at most that many times the budget."""

    def __init__(
        self,
        limit: int = 5,
        window: timedelta = timedelta(minutes=15),
        lock: timedelta = timedelta(minutes=1),
        max_lock: timedelta = timedelta(minutes=30),
    ) -> None:
        self.limit = limit
        self.window = window
        self.lock = lock
        self.max_lock = max_lock
        self._by_key: dict[str, _Failures] = {}
        self._locks: dict[str, int] = {}

    def _keys(self, name: str, address: str) -> list[tuple[str, int]]:
        return [("name:" + name.lower(), self.limit), ("addr:" + address, self.limit * 4)]

    def retry_after(self, name: str, address: str, now: datetime) -> float:
        """Seconds until this attempt may be made; 0 when allowed."""
        wait = 0.0
        for key, _limit in self._keys(name, address):
            entry = self._by_key.get(key)
            if entry and entry.locked_until and entry.locked_until > now:
                wait = max(wait, (entry.locked_until - now).total_seconds())
        return wait

    def failed(self, name: str, address: str, now: datetime) -> None:
        for key, limit in self._keys(name, address):
            entry = self._by_key.setdefault(key, _Failures())
            entry.times = [t for t in entry.times if now - t < self.window]
            entry.times.append(now)
            if len(entry.times) >= limit:
                count = self._locks.get(key, 0)
                entry.locked_until = now + min(self.lock * (2**count), self.max_lock)
                self._locks[key] = count + 1
                entry.times.clear()
        if len(self._by_key) > 10_000:  # bound memory under a spray of names
            cutoff = now - self.window
            self._by_key = {
                k: v
                for k, v in self._by_key.items()
                if (v.times and v.times[-1] > cutoff) or (v.locked_until and v.locked_until > now)
            }

    def succeeded(self, name: str, address: str) -> None:
        key = "name:" + name.lower()
        self._by_key.pop(key, None)
        self._locks.pop(key, None)

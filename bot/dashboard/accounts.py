"""Accounts: argon2 password hashes, the `users add` command, sign-in (with an optional TOTP
second factor) and login throttling."""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.store.base import Conflict, Store, User

_T = TypeVar("_T")

ROLES = ("advocate", "supervisor", "admin")
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")

# A TOTP code is accepted from the window before or after the current one (clock drift).
TOTP_WINDOW = 1
TOTP_ISSUER = "Haven"

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


# Argon2 takes tens of milliseconds of CPU and ~64 MiB by design. It runs here, on two
# threads (argon2-cffi releases the GIL), never on the event loop: nothing an unauthenticated
# visitor sends may slow the texters' webhook. Past MAX_WAITING queued checks, sign-in is
# refused as busy rather than queueing without bound.
HASH_THREADS = 2
MAX_WAITING = 64
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="haven-argon2")
_waiting = 0


class HasherBusy(RuntimeError):
    """Too many password checks are already waiting."""


async def off_loop(fn: Callable[..., _T], *args: Any) -> _T:
    """fn(*args) on the hashing threads."""
    global _waiting
    if _waiting >= MAX_WAITING:
        raise HasherBusy("too many sign-ins at once")
    _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
    finally:
        _waiting -= 1


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
    password_hash = await off_loop(hash_password, password)
    try:
        async with store.transaction() as tx:
            if await tx.get_user_by_name(name) is not None:
                raise AccountError(f"a user named {name!r} already exists")
            return await tx.add_user(
                name, role, password_hash, list(teams), now or datetime.now(UTC)
            )
    except Conflict:
        raise AccountError(f"a user named {name!r} already exists") from None


def totp_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The 30-second time step whose code for this secret `code` is, now or one window
    either side; None when it is none of them."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or datetime.now(UTC))
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(secret: str, code: str) -> bool:
    """A six-digit code for this secret, now or one 30-second window either side."""
    return totp_step(secret, code) is not None


async def authenticate(store: Store, name: str, password: str, code: str = "") -> User | None:
    """The active user with this name and password (and, when they enrolled a second
    factor, a current TOTP `code`), else None (same cost either way). The hash is checked
    off the event loop and outside the transaction (no connection is held while waiting for
    a hashing thread). HasherBusy when too many checks are waiting."""
    async with store.transaction() as tx:
        user = await tx.get_user_by_name(name) if _NAME.match(name) else None
        secret = await tx.get_totp_secret(user.id) if user is not None else None
    if user is None:
        await off_loop(verify_password, _DUMMY_HASH, password)
        return None
    if not await off_loop(verify_password, user.password_hash, password) or not user.active:
        return None
    # Checked only after the password, and refused exactly as a wrong password is: the
    # answer never tells a guesser that the password was right.
    if secret is not None:
        step = totp_step(secret, code)
        if step is None:
            return None
        # A code is good once: of two sign-ins with it (even at once, in two processes),
        # one is refused, as is any code older than one already used.
        async with store.transaction() as tx:
            if not await tx.use_totp_step(user.id, step):
                return None
    if _hasher.check_needs_rehash(user.password_hash):
        new_hash = await off_loop(hash_password, password)
        async with store.transaction() as tx:
            fresh = await tx.get_user(user.id)
            fresh.password_hash = new_hash
            await tx.save_user(fresh)
        user.password_hash = new_hash
    return user


class LoginThrottle:
    """Slows password guessing without letting a stranger lock a named user out.

    Every attempt is counted by `begin`, in the database, before its password is checked:
    the keys' counts are read and the attempt counted in one transaction that holds those
    keys, so any number of simultaneous guesses, in any number of processes sharing the
    database, get at most the limit checked. Limits: `limit` attempts per (address, name)
    and `address_limit` per address within `window`, then that key is locked (the lock
    doubles with each lock-out, capped). The name itself has only a soft limit: once it has
    had `name_limit` failing attempts from anywhere, an address that has been failing is
    refused for it, while an address with a clean record (the real user at work) is still
    checked. Guessing one name from many addresses is thus bounded to one guess per address
    per window, and nobody can lock anyone else out. A correct password refunds its own
    attempt. The state (bot/store/tx/logins.py) is kept under keyed hashes of the keys."""

    def __init__(
        self,
        limit: int = 5,
        window: timedelta = timedelta(minutes=15),
        lock: timedelta = timedelta(minutes=1),
        max_lock: timedelta = timedelta(minutes=30),
        address_limit: int | None = None,
        name_limit: int | None = None,
    ) -> None:
        self.limit = limit
        self.address_limit = address_limit or limit * 4
        self.name_limit = name_limit or limit * 2
        self.window = window
        self.lock = lock
        self.max_lock = max_lock

    def _keys(self, name: str, address: str) -> list[tuple[str, int]]:
        """The locking keys and their limits."""
        return [
            (f"pair:{address}\x00{name.lower()}", self.limit),
            ("addr:" + address, self.address_limit),
        ]

    async def begin(self, store: Store, name: str, address: str, now: datetime) -> float:
        """Seconds to wait before this attempt may be made (it is not counted then), or 0:
        the attempt is counted now and its password may be checked."""
        locking = self._keys(name, address)
        name_key, address_key = "name:" + name.lower(), locking[1][0]
        keys = [key for key, _limit in locking] + [name_key]
        async with store.transaction() as tx:
            state = await tx.lock_login_keys(keys, now - self.window)
            wait = 0.0
            for key, limit in locking:
                entry = state[key]
                if entry.locked_until and entry.locked_until > now:
                    wait = max(wait, (entry.locked_until - now).total_seconds())
                elif len(entry.times) >= limit:  # the limit is in flight: wait for the outcome
                    wait = max(wait, 1.0)
            named = state[name_key]
            if len(named.times) >= self.name_limit and state[address_key].times:
                wait = max(wait, (named.times[0] + self.window - now).total_seconds())
            if wait <= 0:
                await tx.count_login_attempt(keys, now)
        return max(wait, 0.0)

    async def failed(self, store: Store, name: str, address: str, now: datetime) -> None:
        """The counted attempt was wrong: lock a key that has reached its limit."""
        locking = self._keys(name, address)
        async with store.transaction() as tx:
            state = await tx.lock_login_keys([key for key, _ in locking], now - self.window)
            for key, limit in locking:
                entry = state[key]
                locked = entry.locked_until is not None and entry.locked_until > now
                if len(entry.times) >= limit and not locked:
                    until = now + min(self.lock * (2**entry.locks), self.max_lock)
                    await tx.lock_login_key(key, until, entry.locks + 1)

    async def succeeded(self, store: Store, name: str, address: str, now: datetime) -> None:
        """The right password: this address and name start afresh, and the attempt is
        refunded from the address's and the name's counts."""
        (pair, _), (addr, _) = self._keys(name, address)
        name_key = "name:" + name.lower()
        async with store.transaction() as tx:
            await tx.lock_login_keys([pair, addr, name_key], now - self.window)
            await tx.clear_login_key(pair)
            await tx.refund_login_attempt(addr)
            await tx.refund_login_attempt(name_key)


# -- the account lifecycle from the command line (`python -m bot users ...`) ----------------
# Each change is audited with no user (the operator at the console) and names the account.


def end_sessions(user: User) -> None:
    """Every session of this user ends at its next request (bot.dashboard.security compares
    the cookie's epoch with the user's). Called for a new password, role or second factor
    and for disabling; save the user after. (These changes are made at the console, so no
    session is kept; a dashboard page that let a user change their own account would copy
    the new epoch into the session making the change.)"""
    user.session_epoch += 1


async def _change_user(
    store: Store, name: str, action: str, detail: str, change: Callable[[User], None]
) -> User:
    async with store.transaction() as tx:
        user = await tx.get_user_by_name(name)
        if user is None:
            raise AccountError(f"there is no user named {name!r}")
        change(user)
        await tx.save_user(user)
        await tx.audit(None, action, None, f"user {user.id} {detail}".strip(), datetime.now(UTC))
        return user


async def list_users_cli(store: Store) -> list[dict[str, Any]]:
    """Every account, oldest first: name, role, active, presence (never a hash)."""
    async with store.transaction() as tx:
        users = await tx.list_users()
    return [
        {"name": u.name, "role": u.role, "active": u.active, "presence": u.presence} for u in users
    ]


async def disable_user_cli(store: Store, name: str) -> User:
    """The account can no longer sign in, and its sessions end at once."""

    def disable(user: User) -> None:
        user.active = False
        user.presence = "offline"
        end_sessions(user)

    return await _change_user(store, name, "user_disable", "", disable)


async def set_password_cli(store: Store, name: str, password: str) -> User:
    """A new password; every session made with the old one ends."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    password_hash = await off_loop(hash_password, password)

    def set_password(user: User) -> None:
        user.password_hash = password_hash
        end_sessions(user)

    return await _change_user(store, name, "user_password", "", set_password)


async def set_role_cli(store: Store, name: str, role: str) -> User:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")

    def set_role(user: User) -> None:
        user.role = role
        end_sessions(user)

    return await _change_user(store, name, "user_role", f"to {role}", set_role)


async def set_totp_cli(store: Store, name: str, enable: bool = True) -> str | None:
    """Enrol the account in the TOTP second factor with a new secret (replacing any old
    one) and return its otpauth:// provisioning URI, to be shown once; or, with enable
    False, remove it and return None. Meant for supervisors and admins, allowed for anyone."""
    secret = pyotp.random_base32() if enable else None
    async with store.transaction() as tx:
        user = await tx.get_user_by_name(name)
        if user is None:
            raise AccountError(f"there is no user named {name!r}")
        await tx.set_totp_secret(user.id, secret)
        end_sessions(user)  # signed in without the factor, or under the old secret
        await tx.save_user(user)
        action = "user_totp_on" if enable else "user_totp_off"
        await tx.audit(None, action, None, f"user {user.id}", datetime.now(UTC))
    if secret is None:
        return None
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)

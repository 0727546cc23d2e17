"""Login throttling shared by every process on the database (issue 10). The policy is
bot.dashboard.accounts.LoginThrottle's; this keeps its state: one row per counted attempt
and one per lock-out, each under a keyed hash of the throttle key (an address, a name or
both), never the address or name themselves. `lock_login_keys` holds the keys for the rest
of the transaction (PostgreSQL: advisory locks, taken in one order; SQLite: BEGIN IMMEDIATE
already serialises writers), so reading the counts and counting a new attempt are one step
for any number of processes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.store.records import LoginKey
from bot.store.tx.core import SqlTxBase, marks


class LoginTx(SqlTxBase):
    def _login_key(self, key: str) -> str:
        return self._crypto.lookup_hash("\0login:" + key)

    async def lock_login_keys(self, keys: Sequence[str], since: datetime) -> dict[str, LoginKey]:
        hashed = {self._login_key(k): k for k in keys}
        await self._lock_names(sorted("login:" + h for h in hashed))
        state = {k: LoginKey() for k in keys}
        for r in await self._fetch(
            f"SELECT key, at FROM login_attempts WHERE key IN ({marks(len(hashed))})"
            " AND at > ? ORDER BY at, id",
            *hashed,
            self._at(since),
        ):
            state[hashed[r["key"]]].times.append(self._dt(r["at"]))
        for r in await self._fetch(
            f"SELECT * FROM login_locks WHERE key IN ({marks(len(hashed))})", *hashed
        ):
            entry = state[hashed[r["key"]]]
            entry.locked_until, entry.locks = self._dt(r["locked_until"]), int(r["locks"])
        # The keys' attempts that have left the window are of no more use.
        await self._execute(
            f"DELETE FROM login_attempts WHERE key IN ({marks(len(hashed))}) AND at <= ?",
            *hashed,
            self._at(since),
        )
        return state

    async def count_login_attempt(self, keys: Sequence[str], now: datetime) -> None:
        for key in keys:
            await self._execute(
                "INSERT INTO login_attempts (key, at) VALUES (?, ?)",
                self._login_key(key),
                self._at(now),
            )

    async def lock_login_key(self, key: str, until: datetime, locks: int) -> None:
        hashed = self._login_key(key)
        await self._execute(
            "INSERT INTO login_locks (key, locked_until, locks) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET locked_until = excluded.locked_until,"
            " locks = excluded.locks",
            hashed,
            self._at(until),
            locks,
        )
        await self._execute("DELETE FROM login_attempts WHERE key = ?", hashed)

    async def refund_login_attempt(self, key: str) -> None:
        await self._execute(
            "DELETE FROM login_attempts WHERE id IN (SELECT id FROM login_attempts"
            " WHERE key = ? ORDER BY at DESC, id DESC LIMIT 1)",
            self._login_key(key),
        )

    async def clear_login_key(self, key: str) -> None:
        hashed = self._login_key(key)
        await self._execute("DELETE FROM login_attempts WHERE key = ?", hashed)
        await self._execute("DELETE FROM login_locks WHERE key = ?", hashed)

    async def prune_login_throttle(self, before: datetime) -> int:
        at = self._at(before)
        n = await self._execute("DELETE FROM login_attempts WHERE at < ?", at)
        return n + await self._execute("DELETE FROM login_locks WHERE locked_until < ?", at)

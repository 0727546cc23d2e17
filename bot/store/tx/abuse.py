"""The block list and per-number reply windows (bot.abuse holds the policy), and the audit
log read a page at a time for the supervisors' viewer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.store.base import AuditEntry
from bot.store.tx.accounts import AccountTx
from bot.store.tx.core import check


class AbuseTx(AccountTx):
    """On top of AccountTx (its audit rows), so SqlTx lists it before AccountTx."""

    async def block_texter(self, texter_id: int, user_id: int | None, now: datetime) -> bool:
        await self._require("texters", texter_id)
        r = await self._one(
            "INSERT INTO texter_blocks (texter_id, user_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (texter_id) DO NOTHING RETURNING texter_id",
            texter_id,
            user_id,
            self._at(now),
        )
        return r is not None

    async def unblock_texter(self, texter_id: int) -> bool:
        return await self._execute("DELETE FROM texter_blocks WHERE texter_id = ?", texter_id) > 0

    async def texter_blocked(self, texter_id: int) -> bool:
        r = await self._one("SELECT 1 FROM texter_blocks WHERE texter_id = ?", texter_id)
        return r is not None

    async def reply_window(self, texter_id: int) -> tuple[datetime, int] | None:
        r = await self._one(
            "SELECT started_at, replies FROM reply_windows WHERE texter_id = ?", texter_id
        )
        return None if r is None else (self._dt(r["started_at"]), int(r["replies"]))

    async def set_reply_window(self, texter_id: int, started_at: datetime, replies: int) -> None:
        check(replies >= 0, "replies cannot be negative")
        await self._execute_later(
            "INSERT INTO reply_windows (texter_id, started_at, replies) VALUES (?, ?, ?)"
            " ON CONFLICT (texter_id) DO UPDATE"
            " SET started_at = excluded.started_at, replies = excluded.replies",
            texter_id,
            self._at(started_at),
            replies,
        )

    async def audit_page(self, before_id: int | None, limit: int) -> list[AuditEntry]:
        check(limit > 0, "limit must be positive")
        where = "" if before_id is None else " WHERE id < ?"
        args: list[Any] = [] if before_id is None else [before_id]
        rows = await self._fetch(
            f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", *args, limit
        )
        return [self._audit_entry(r) for r in rows]

"""The outbox: outbound texts waiting to be sent, claimed by one worker each (FOR UPDATE
SKIP LOCKED on PostgreSQL), each conversation's texts in the order they were written, sent
at most once (an item abandoned mid-send is failed visibly, never resent)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from bot.store.base import NotFound, OutboxItem
from bot.store.tx.core import Row, SqlTxBase, check, marks
from bot.vocabulary import is_e164


class OutboxTx(SqlTxBase):
    async def enqueue_outbound(self, message_id: int, to: str, now: datetime) -> int:
        check(is_e164(to), "to must be an E.164 number like +15551234567")
        at = self._at(now)
        m = await self._one(
            "SELECT conversation_id FROM messages WHERE id = ? AND direction = 'out'",
            message_id,
        )
        if m is None:
            raise NotFound(f"no outbound message {message_id}")
        r = await self._returning(
            "INSERT INTO outbox (message_id, conversation_id, to_enc, attempts,"
            " next_attempt_at, status, created_at, updated_at)"
            " VALUES (?, ?, ?, 0, ?, 'pending', ?, ?) RETURNING id",
            message_id,
            m["conversation_id"],
            self._enc(to),
            at,
            at,
            at,
        )
        return int(r["id"])

    async def claim_outbox(self, now: datetime, limit: int = 20) -> list[OutboxItem]:
        check(limit > 0, "limit must be positive")
        await self._serialise_claims()
        at = self._at(now)
        rows = await self._fetch(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ?"
            " WHERE id IN (SELECT id FROM outbox WHERE status = 'pending'"
            " AND next_attempt_at <= ?"
            # A conversation's texts go in order: none overtakes an earlier one still waiting
            # for a retry or being sent.
            " AND NOT EXISTS (SELECT 1 FROM outbox AS earlier"
            " WHERE earlier.conversation_id = outbox.conversation_id AND earlier.id < outbox.id"
            " AND (earlier.status = 'sending'"
            " OR (earlier.status = 'pending' AND earlier.next_attempt_at > ?)))"
            f" ORDER BY id LIMIT ?{self._SKIP_LOCKED})"
            " RETURNING *",
            at,
            at,
            at,
            limit,
        )
        return await self._outbox_items(rows)

    async def fail_stale_outbox(self, before: datetime, now: datetime) -> list[OutboxItem]:
        rows = await self._fetch(
            "UPDATE outbox SET status = 'failed', updated_at = ?"
            " WHERE id IN (SELECT id FROM outbox WHERE status = 'sending' AND updated_at < ?"
            f" ORDER BY id{self._SKIP_LOCKED}) RETURNING *",
            self._at(now),
            self._at(before),
        )
        return await self._outbox_items(rows)

    async def _outbox_items(self, rows: list[Row]) -> list[OutboxItem]:
        if not rows:
            return []
        bodies = {
            b["id"]: self._dec(b["body_enc"])
            for b in await self._fetch(
                f"SELECT id, body_enc FROM messages WHERE id IN ({marks(len(rows))})",
                *[r["message_id"] for r in rows],
            )
        }
        items = [
            OutboxItem(
                id=r["id"],
                message_id=r["message_id"],
                conversation_id=r["conversation_id"],
                to=self._dec(r["to_enc"]),
                body=bodies[r["message_id"]],
                attempts=r["attempts"],
                next_attempt_at=self._dt(r["next_attempt_at"]),
                status=r["status"],
            )
            for r in rows
        ]
        items.sort(key=lambda i: i.id)  # the order they were written
        return items

    async def finish_outbox(
        self,
        item_id: int,
        status: Literal["sent", "failed", "pending"],
        now: datetime,
        retry_at: datetime | None = None,
    ) -> None:
        check(status in ("sent", "failed", "pending"), "status must be sent, failed or pending")
        check(status == "pending" or retry_at is None, "retry_at only goes with 'pending'")
        next_at = (retry_at or now) if status == "pending" else None
        n = await self._execute(
            "UPDATE outbox SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
            " updated_at = ? WHERE id = ?",
            status,
            self._tso(next_at),
            self._at(now),
            item_id,
        )
        if n == 0:  # e.g. a quick exit deleted it while it was being sent
            raise NotFound(f"no outbox item {item_id}")

    async def cancel_outbox(self, conversation_id: int, error_code: str, now: datetime) -> int:
        check(bool(error_code), "error_code is required")
        rows = await self._fetch(
            "UPDATE outbox SET status = 'failed', updated_at = ?"
            " WHERE conversation_id = ? AND status = 'pending' RETURNING message_id",
            self._at(now),
            conversation_id,
        )
        for r in rows:
            await self.set_message_status(r["message_id"], "failed", error_code=error_code)
        return len(rows)

    # -- redaction at Twilio of erased conversations' messages -------------------------------
    async def claim_redactions(self, now: datetime, limit: int = 20) -> list[tuple[str, int]]:
        check(limit > 0, "limit must be positive")
        at = self._at(now)
        rows = await self._fetch(
            # next_attempt_at becomes the claim time, from which a stale claim is judged.
            "UPDATE redactions SET status = 'sending', attempts = attempts + 1,"
            " next_attempt_at = ? WHERE provider_sid IN (SELECT provider_sid FROM redactions WHERE"
            " (status = 'pending' AND next_attempt_at <= ?)"
            # A redaction left 'sending' by a dead process is simply asked again: redacting
            # twice is harmless.
            " OR (status = 'sending' AND next_attempt_at <= ?)"
            f" ORDER BY created_at, provider_sid LIMIT ?{self._SKIP_LOCKED})"
            " RETURNING provider_sid, attempts",
            at,
            at,
            self._at(now - timedelta(minutes=10)),
            limit,
        )
        return [(r["provider_sid"], int(r["attempts"])) for r in rows]

    async def finish_redaction(
        self, provider_sid: str, done: bool, now: datetime, retry_at: datetime | None = None
    ) -> None:
        if done:
            await self._execute("DELETE FROM redactions WHERE provider_sid = ?", provider_sid)
            return
        await self._execute(
            "UPDATE redactions SET status = ?, next_attempt_at = ? WHERE provider_sid = ?",
            "pending" if retry_at is not None else "failed",
            self._at(retry_at or now),
            provider_sid,
        )

"""Messages both ways, and their delivery statuses: Twilio's callbacks only ever move a
status forward, and a callback that arrives before its SID is known waits in
`early_statuses` until the outbox records that SID. Status names come from bot.sms.statuses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.sms.statuses import ALIASES, DELIVERY_RANK, FINAL_RANK, UNCERTAIN
from bot.store.base import Message, NotFound, ReplySid
from bot.store.tx.core import Row, SqlTxBase, check, utc

# Haven's own: "received" (inbound), "replied" (sent inside the webhook's TwiML).
MESSAGE_STATUSES = frozenset({"received", "replied", UNCERTAIN, *DELIVERY_RANK})


def _rank_sql(column: str) -> str:
    """A status column's DELIVERY_RANK, in SQL (column names and statuses are constants)."""
    whens = " ".join(f"WHEN '{s}' THEN {r}" for s, r in DELIVERY_RANK.items() if r < FINAL_RANK)
    return f"CASE {column} {whens} ELSE {FINAL_RANK} END"


class MessageTx(SqlTxBase):
    def _message(self, r: Row) -> Message:
        return Message(
            id=r["id"],
            conversation_id=r["conversation_id"],
            direction=r["direction"],
            body=self._dec(r["body_enc"]),
            author=r["author"],
            created_at=self._dt(r["created_at"]),
            provider_sid=r["provider_sid"],
            status=r["status"],
            error_code=r["error_code"],
            media_types=json.loads(r["media_types"]),
            labels=json.loads(r["labels"]),
            reply_ref=r["reply_ref"],
        )

    async def add_message(self, message: Message) -> Message:
        m = message
        check(m.direction in ("in", "out"), "direction must be 'in' or 'out'")
        check(m.status in MESSAGE_STATUSES, f"unknown message status {m.status!r}")
        # No look-up first: the foreign key refuses an unknown conversation (NotFound).
        created = utc(m.created_at) if m.created_at is not None else datetime.now(UTC)
        r = await self._returning(
            "INSERT INTO messages (conversation_id, direction, author, body_enc, created_at,"
            " provider_sid, status, error_code, media_types, labels, reply_ref)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            m.conversation_id,
            m.direction,
            m.author,
            self._enc(m.body),
            self._ts(created),
            m.provider_sid,
            m.status,
            m.error_code,
            json.dumps(list(m.media_types)),
            json.dumps(list(m.labels)),
            m.reply_ref,
        )
        m.id = r["id"]
        m.created_at = created
        return m

    async def add_replies(
        self, conversation_id: int, replies: Sequence[tuple[str, str | None]]
    ) -> None:
        created = self._ts(datetime.now(UTC))
        for text, ref in replies:  # in order: ids rise in the order they were said
            await self._execute_later(
                "INSERT INTO messages (conversation_id, direction, author, body_enc,"
                " created_at, provider_sid, status, error_code, media_types, labels,"
                " reply_ref) VALUES (?, 'out', 'haven', ?, ?, NULL, 'replied', NULL, '[]',"
                " '[]', ?)",
                conversation_id,
                self._enc(text),
                created,
                ref,
            )

    async def list_messages(self, conversation_id: int) -> list[Message]:
        rows = await self._fetch(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", conversation_id
        )
        return [self._message(r) for r in rows]

    async def inbound_messages(self, conversation_ids: Sequence[int]) -> dict[int, list[Message]]:
        rows = await self._fetch_in(  # messages_conversation (conversation_id, id)
            "SELECT * FROM messages WHERE conversation_id IN ({ids})"
            " AND direction = 'in' ORDER BY conversation_id, id",
            conversation_ids,
        )
        found: dict[int, list[Message]] = {}
        for r in rows:
            found.setdefault(r["conversation_id"], []).append(self._message(r))
        return found

    async def inbound_marks(self, conversation_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        rows = await self._fetch_in(  # messages_conversation (conversation_id, id)
            "SELECT conversation_id, MAX(id) AS newest, COUNT(*) AS n FROM messages"
            " WHERE conversation_id IN ({ids}) AND direction = 'in' GROUP BY conversation_id",
            conversation_ids,
        )
        return {r["conversation_id"]: (int(r["newest"]), int(r["n"])) for r in rows}

    async def unread_count(self, conversation_id: int, user_id: int) -> int:
        seen = await self._one(  # audit_conversation (conversation_id, id), newest first
            "SELECT created_at FROM audit WHERE conversation_id = ? AND user_id = ?"
            " AND action = 'view' AND created_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            conversation_id,
            user_id,
        )
        if seen is None:
            r = await self._one(
                "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ? AND direction = 'in'",
                conversation_id,
            )
        else:
            r = await self._one(
                "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?"
                " AND direction = 'in' AND created_at > ?",
                conversation_id,
                self._at(self._dt(seen["created_at"])),
            )
        return int(r["n"]) if r is not None else 0

    async def set_message_status(
        self,
        message_id: int,
        status: str,
        provider_sid: str | None = None,
        error_code: str | None = None,
    ) -> None:
        check(status in MESSAGE_STATUSES, f"unknown message status {status!r}")
        if provider_sid is not None:
            await self._lock_sid(provider_sid)
        n = await self._execute(
            "UPDATE messages SET status = ?, provider_sid = COALESCE(?, provider_sid),"
            " error_code = COALESCE(?, error_code) WHERE id = ?",
            status,
            provider_sid,
            error_code,
            message_id,
        )
        if n == 0:
            raise NotFound(f"no message {message_id}")
        if provider_sid is not None:
            early = await self._one(
                "DELETE FROM early_statuses WHERE provider_sid = ? RETURNING *", provider_sid
            )
            if early is not None:  # a callback that arrived before this SID was known
                await self.record_status(
                    provider_sid, early["status"], early["error_code"], datetime.now(UTC)
                )

    async def record_status(
        self, provider_sid: str, status: str, error_code: str | None, now: datetime
    ) -> Message | None:
        status = ALIASES.get(status, status)
        check(status in DELIVERY_RANK, f"unknown delivery status {status!r}")
        utc(now)  # validated for the contract
        await self._lock_sid(provider_sid)
        # One conditional UPDATE, so concurrent callbacks cannot move a status backwards.
        r = await self._one(
            "UPDATE messages SET status = ?, error_code = COALESCE(?, error_code)"
            " WHERE provider_sid = ? AND direction = 'out'"
            f" AND {_rank_sql('status')} < ? RETURNING *",
            status,
            error_code,
            provider_sid,
            DELIVERY_RANK[status],
        )
        if r is None:
            r = await self._one(
                "SELECT * FROM messages WHERE provider_sid = ? AND direction = 'out'"
                " ORDER BY id LIMIT 1",
                provider_sid,
            )
        if r is None:
            # Not ours yet (the outbox has not recorded this SID) or never ours: kept until
            # set_message_status records the SID, or retention clears it.
            await self._execute(
                "INSERT INTO early_statuses (provider_sid, status, error_code, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (provider_sid) DO UPDATE SET"
                " status = excluded.status,"
                " error_code = COALESCE(excluded.error_code, early_statuses.error_code)"
                f" WHERE {_rank_sql('early_statuses.status')} < {_rank_sql('excluded.status')}",
                provider_sid,
                status,
                error_code,
                self._at(now),
            )
            return None
        return self._message(r)

    async def record_reply_sid(self, reply_ref: str, provider_sid: str) -> ReplySid:
        check(bool(reply_ref) and bool(provider_sid), "reply_ref and provider_sid are required")
        # On PostgreSQL an erasure deletes the messages with DELETE ... RETURNING (core.py), so
        # this UPDATE and that DELETE take turns on the row: either the SID is written first
        # and the erasure returns it, or the row is gone and the SID is redacted here.
        if await self._execute(
            "UPDATE messages SET provider_sid = ? WHERE reply_ref = ? AND direction = 'out'"
            " AND provider_sid IS NULL",
            provider_sid,
            reply_ref,
        ):
            return "recorded"
        if await self._one("SELECT 1 FROM messages WHERE reply_ref = ?", reply_ref) is not None:
            return "known"  # a repeated callback (or a second copy Twilio sent: kept apart)
        # Erased already (EXIT, DELETE, retention), or the reply to an EXIT or DELETE, which
        # is never stored: Twilio's copy is redacted at once, through the outbox.
        await self._record_redaction(provider_sid)
        return "erased"

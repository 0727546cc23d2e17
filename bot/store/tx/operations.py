"""What keeps the service honest over time: webhook idempotency (the reply given for each
inbound MessageSid), retention, and counts for operators."""

from __future__ import annotations

from datetime import datetime

from bot.store.tx.core import SqlTxBase, check, marks
from flows.states import ENDED_STATES, OPTED_OUT, QUEUED, WITH_ADVOCATE

# Ended conversations, and those stopped with STOP (nobody can text them; the texter starts
# anew with START), are deleted once idle past retention.
_RETIRED = (*sorted(ENDED_STATES), OPTED_OUT)
# Last activity is the latest of these; written per column so both dialects agree.
_IDLE_BEFORE = (
    f"c.state IN ({marks(len(_RETIRED))}) AND c.created_at < ?"
    " AND (c.updated_at IS NULL OR c.updated_at < ?)"
    " AND (c.closed_at IS NULL OR c.closed_at < ?)"
    " AND (c.last_inbound_at IS NULL OR c.last_inbound_at < ?)"
)
STATS_KEYS = (
    "messages_in",
    "messages_out",
    "texters",
    "conversations",
    "queued",
    "with_advocate",
    "users",
    "referrals",
)


class OperationsTx(SqlTxBase):
    # -- webhook idempotency ---------------------------------------------------------------
    async def get_reply(self, message_sid: str) -> str | None:
        r = await self._one("SELECT body_enc FROM replies WHERE message_sid = ?", message_sid)
        return None if r is None else self._dec(r["body_enc"])

    async def save_reply(self, message_sid: str, body: str, now: datetime) -> None:
        check(bool(message_sid), "message_sid is required")
        # The first answer stands: a duplicate webhook must get the same response.
        await self._execute(
            "INSERT INTO replies (message_sid, body_enc, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (message_sid) DO NOTHING",
            message_sid,
            self._enc(body),
            self._at(now),
        )

    # -- retention and counts --------------------------------------------------------------
    async def purge_before(self, cutoff: datetime) -> int:
        at = self._at(cutoff)
        args = (*_RETIRED, at, at, at, at)
        await self._delete_replies_of(_IDLE_BEFORE, *args)
        # Messages, outbox items, notes, alarms and referrals go by ON DELETE CASCADE.
        removed = await self._execute(
            "DELETE FROM conversations WHERE id IN"
            f" (SELECT c.id FROM conversations c WHERE {_IDLE_BEFORE})",
            *args,
        )
        # Replies only serve Twilio's retries; none is needed for longer than retention.
        await self._execute("DELETE FROM replies WHERE created_at < ?", at)
        await self._execute("DELETE FROM early_statuses WHERE created_at < ?", at)
        await self._execute(
            # An opted-out texter's row (a keyed hash and the flag) outlives their data:
            # forgetting it would forget their STOP.
            "DELETE FROM texters WHERE created_at < ? AND opted_out = 0 AND NOT EXISTS"
            " (SELECT 1 FROM conversations c WHERE c.texter_id = texters.id)",
            at,
        )
        return removed

    async def stats(self) -> dict[str, int]:
        r = await self._returning(
            "SELECT"
            " (SELECT COUNT(*) FROM messages WHERE direction = 'in') AS messages_in,"
            " (SELECT COUNT(*) FROM messages WHERE direction = 'out') AS messages_out,"
            " (SELECT COUNT(*) FROM texters) AS texters,"
            " (SELECT COUNT(*) FROM conversations) AS conversations,"
            " (SELECT COUNT(*) FROM conversations WHERE state = ?) AS queued,"
            " (SELECT COUNT(*) FROM conversations WHERE state = ?) AS with_advocate,"
            " (SELECT COUNT(*) FROM users) AS users,"
            " (SELECT COUNT(*) FROM referrals) AS referrals",
            QUEUED,
            WITH_ADVOCATE,
        )
        return {k: int(r[k]) for k in STATS_KEYS}

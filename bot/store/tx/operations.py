"""What keeps the service honest over time: webhook idempotency (the reply given for each
inbound MessageSid), retention, and counts for operators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.crypto import Crypto, DecryptionError
from bot.store.tx.core import SqlTxBase, check
from flows.states import QUEUED, WITH_ADVOCATE

# Ended conversations, and those stopped with STOP (nobody can text them; the texter starts
# anew with START), are deleted once idle past retention.
# Retention takes every conversation whose last activity is before the cutoff, open or
# ended: one nobody has touched for that long is not waiting for anyone. Last activity is
# the latest of these; written per column so both dialects agree.
_IDLE_BEFORE = (
    "c.created_at < ?"
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


# Every encrypted column, by table, with the column rows are paged by (see bot.store.sql).
ENCRYPTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "texters": ("id", ("phone_enc", "unsafe_hours_enc")),
    "conversations": ("id", ("private_enc",)),
    "messages": ("id", ("body_enc",)),
    "notes": ("id", ("body_enc",)),
    "outbox": ("id", ("to_enc",)),
    "replies": ("message_sid", ("body_enc",)),
    "users": ("id", ("totp_secret_enc",)),
}


class KeyMissing(LookupError):
    """A row that neither the new key nor any previous one can read."""


class OperationsTx(SqlTxBase):
    # -- webhook idempotency ---------------------------------------------------------------
    async def get_reply(self, message_sid: str) -> str | None:
        r = await self._one("SELECT body_enc FROM replies WHERE message_sid = ?", message_sid)
        return None if r is None else self._dec(r["body_enc"])

    async def save_reply(self, message_sid: str, body: str, now: datetime) -> None:
        check(bool(message_sid), "message_sid is required")
        # The first answer stands: a duplicate webhook must get the same response.
        await self._execute_later(
            "INSERT INTO replies (message_sid, body_enc, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (message_sid) DO NOTHING",
            message_sid,
            self._enc(body),
            self._at(now),
        )

    # -- retention and counts --------------------------------------------------------------
    async def purge_before(self, cutoff: datetime) -> int:
        at = self._at(cutoff)
        args = (at, at, at, at)
        await self._erase_messages_of(_IDLE_BEFORE, *args)
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

    async def purge_audit_before(self, cutoff: datetime) -> int:
        return await self._execute("DELETE FROM audit WHERE created_at < ?", self._at(cutoff))

    # -- keys ----------------------------------------------------------------------------
    async def get_key_check(self) -> str | None:
        r = await self._one("SELECT value FROM key_check WHERE id = 1")
        return None if r is None else str(r["value"])

    async def set_key_check(self, value: str | None, now: datetime) -> None:
        if value is None:
            await self._execute("DELETE FROM key_check")
            return
        await self._execute(
            "INSERT INTO key_check (id, value, updated_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            value,
            self._at(now),
        )

    async def sample_ciphertext(self) -> bytes | None:
        for sql in (
            "SELECT phone_enc AS blob FROM texters ORDER BY id LIMIT 1",
            "SELECT body_enc AS blob FROM messages ORDER BY id LIMIT 1",
            "SELECT body_enc AS blob FROM notes ORDER BY id LIMIT 1",
        ):
            r = await self._one(sql)
            if r is not None:
                return bytes(r["blob"])
        return None

    async def rekey_rows(
        self, table: str, after: Any, limit: int, previous: Sequence[Any]
    ) -> tuple[Any, int, int]:
        check(table in ENCRYPTED, f"no encrypted table {table!r}")
        check(limit > 0, "limit must be positive")
        key, columns = ENCRYPTED[table]
        where = "" if after is None else f" WHERE {key} > ?"
        rows = await self._fetch(
            f"SELECT {key}, {', '.join(columns)}{', phone_hash' if table == 'texters' else ''}"
            f" FROM {table}{where} ORDER BY {key} LIMIT ?{self._FOR_UPDATE}",
            *(() if after is None else (after,)),
            limit,
        )
        changed = 0
        for r in rows:
            updates: dict[str, Any] = {}
            for column in columns:
                if r[column] is None:
                    continue
                blob = bytes(r[column])
                plain, moved = self._under_this_key(blob, previous, table, column)
                if moved:
                    updates[column] = self._enc(plain)
                if column == "phone_enc":  # the keyed look-up hash follows the key
                    new_hash = self._crypto.lookup_hash(plain)
                    if new_hash != r["phone_hash"]:
                        updates["phone_hash"] = new_hash
            if updates:
                sets = ", ".join(f"{c} = ?" for c in updates)
                await self._execute(
                    f"UPDATE {table} SET {sets} WHERE {key} = ?", *updates.values(), r[key]
                )
                changed += 1
        return (rows[-1][key] if rows else after), changed, len(rows)

    def _under_this_key(
        self, blob: bytes, previous: Sequence[Crypto], table: str, column: str
    ) -> tuple[str, bool]:
        """The plaintext, and whether it must be re-encrypted (it was under an old key).
        The new key is tried first, so a row already moved is left alone (resumable)."""
        try:
            return self._crypto.decrypt(blob), False
        except DecryptionError:
            pass
        for old in previous:
            try:
                return old.decrypt(blob), True
            except DecryptionError:
                continue
        raise KeyMissing(f"a value in {table}.{column} is under a key not given")

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

"""What every area of the SQL transaction shares: the four driver primitives each backend
supplies, and small helpers for rows, timestamps, encryption and checks.

Queries are written once with `?` placeholders; the PostgreSQL transaction rewrites them to
`$n`. The only other dialect differences are class attributes (`_FOR_UPDATE`,
`_SKIP_LOCKED`), two locking hooks, and how a timestamp is passed in and read back (`_ts`,
`_dt`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bot.crypto import Crypto
from bot.store.base import NotFound, Tx
from bot.vocabulary import LANGUAGES

Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is a programming error, not a guess."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is UTC:
        return value  # the usual case (utcnow()), without a new object
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    return value.astimezone(UTC)


def check(ok: bool, message: str) -> None:
    """Refuse bad input before it reaches the database."""
    if not ok:
        raise ValueError(message)


def check_language(language: str) -> None:
    check(language in LANGUAGES, f"language must be one of {list(LANGUAGES)}")


IN_CHUNK = 500  # values per IN list (both drivers cap bound parameters)


def marks(n: int) -> str:
    """`?, ?, ?` for an IN list of n values."""
    return ", ".join("?" * n)


class SqlTxBase(Tx):
    """The primitives (abstract, per backend) and helpers the area mixins build on."""

    _FOR_UPDATE = ""  # row lock on single-record loads (PostgreSQL)
    _SKIP_LOCKED = ""  # for work queues claimed by several processes (PostgreSQL)

    def __init__(self, crypto: Crypto) -> None:
        self._crypto = crypto
        self.closed = False  # set when the transaction ends; further use is an error

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abc.abstractmethod
    async def _execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    async def _fetch_in(self, sql: str, ids: Iterable[int]) -> list[Row]:
        """The rows of `sql` for every one of `ids`, whose `{ids}` is an IN list: asked in
        chunks of IN_CHUNK, ascending, since both drivers cap bound parameters."""
        wanted = sorted(set(ids))
        rows: list[Row] = []
        for at in range(0, len(wanted), IN_CHUNK):
            part = wanted[at : at + IN_CHUNK]
            rows += await self._fetch(sql.format(ids=marks(len(part))), *part)
        return rows

    async def _execute_later(self, sql: str, *args: Any) -> None:
        """A write whose result nobody needs (no row count, no RETURNING). A backend may
        hold it back and send it with the transaction's next statement (SQLite: in the
        same thread hop) or at its end; an error it raises surfaces there, still inside
        the transaction. Here: at once."""
        await self._execute(sql, *args)

    async def flush_writes(self) -> None:
        """Send the writes held back by `_execute_later` (the backends' transaction blocks
        call this before committing)."""

    @abc.abstractmethod
    def _ts(self, value: datetime) -> Any:
        """A UTC datetime as this driver stores it."""

    @abc.abstractmethod
    def _dt(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    async def _serialise_claims(self) -> None:
        """Hook: PostgreSQL makes concurrent outbox claimers take turns (see PgTx)."""

    async def _lock_sid(self, provider_sid: str) -> None:
        """A callback and the recording of its SID take turns (PostgreSQL: without it, a
        callback's upsert and the outbox's SID write can each miss the other's uncommitted
        row, and the callback's status would never land)."""
        await self._lock_names(["sid:" + provider_sid])

    async def _lock_names(self, names: list[str]) -> None:
        """Hook: PostgreSQL holds these names (advisory locks, in the order given) until the
        transaction ends; SQLite's BEGIN IMMEDIATE already serialises every writer."""

    def _guard(self) -> None:
        if self.closed:
            raise RuntimeError("this transaction is over; open a new one")

    async def _one(self, sql: str, *args: Any) -> Row | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    async def _returning(self, sql: str, *args: Any) -> Row:
        """The one row a statement always gives (INSERT ... RETURNING, a bare SELECT)."""
        r = await self._one(sql, *args)
        if r is None:
            raise RuntimeError("the database returned no row")
        return r

    def _at(self, value: datetime) -> Any:
        return self._ts(utc(value))

    def _tso(self, value: datetime | None) -> Any:
        return None if value is None else self._ts(utc(value))

    def _dto(self, value: Any) -> datetime | None:
        return None if value is None else self._dt(value)

    def _enc(self, text: str) -> bytes:
        return self._crypto.encrypt(text)

    def _dec(self, blob: Any) -> str:
        return self._crypto.decrypt(bytes(blob))

    async def _require(self, table: str, record_id: int) -> None:
        # `table` is always a literal from this package, never input.
        if await self._one(f"SELECT 1 FROM {table} WHERE id = ?", record_id) is None:
            raise NotFound(f"no {table[:-1]} {record_id}")

    async def _record_redaction(self, provider_sid: str) -> None:
        """Ask the outbox to redact this message at Twilio, at once (whatever clock the worker
        keeps). One VALUES insert per SID, so both dialects type the timestamps from the
        columns. Texts that never reached Twilio (the console sender, `chat`) are left out."""
        if provider_sid.startswith(("SMconsole", "SMchat")):
            return
        await self._execute(
            "INSERT INTO redactions (provider_sid, next_attempt_at, status, created_at)"
            " VALUES (?, ?, 'pending', ?) ON CONFLICT (provider_sid) DO NOTHING",
            provider_sid,
            self._at(datetime(2000, 1, 1, tzinfo=UTC)),
            self._at(datetime.now(UTC)),
        )

    async def _erase_messages_of(self, where: str, *args: Any) -> None:
        """Erase the messages of the conversations matching `where` (a condition on
        conversations `c`, written in this package), with the saved webhook replies that
        answered them (DELETE, quick exit, retention), found by the inbound SIDs.

        Twilio keeps every message's body too: each deleted message's SID is recorded for
        the outbox to redact at Twilio. The SIDs come from the DELETE itself, so a TwiML
        reply's SID written meanwhile by its callback (record_reply_sid) is never missed."""
        await self._execute(
            "DELETE FROM replies WHERE message_sid IN (SELECT m.provider_sid FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE m.direction = 'in' AND m.provider_sid IS NOT NULL AND {where})",
            *args,
        )
        deleted = await self._fetch(
            "DELETE FROM messages WHERE conversation_id IN"
            f" (SELECT c.id FROM conversations c WHERE {where}) RETURNING provider_sid",
            *args,
        )
        for sid in sorted({r["provider_sid"] for r in deleted if r["provider_sid"]}):
            await self._record_redaction(sid)

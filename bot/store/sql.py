"""One SQL implementation of `Tx` shared by the SQLite and PostgreSQL backends.

Queries are written once with `?` placeholders; the PostgreSQL transaction rewrites them to
`$n`. The only other dialect differences are class attributes (`_FOR_UPDATE`,
`_SKIP_LOCKED`) and how a timestamp is passed in and read back (`_ts`, `_dt`).

What is encrypted at rest (bot.crypto, AES-GCM): a texter's phone number and unsafe hours,
message and note bodies, saved webhook replies, outbox recipients, and one JSON blob per
conversation holding what the texter told us (need, screening answers, triage signals,
location, the flow's scratch). Labels, states, priorities and timestamps stay plain so the
queue can be sorted and filtered in SQL.

Quick exit (`purge_conversation`) deletes the conversation's messages (and with them any
outbox items not yet sent), notes and saved replies, clears the encrypted blob and marks
the row purged; the row keeps its state so the advocate sees that it ended. A later
`save_conversation` of a purged row never writes the content back.
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bot.crypto import Crypto
from bot.store.base import (
    ENDED_STATES,
    Alarm,
    AuditEntry,
    Conflict,
    Conversation,
    Message,
    Note,
    NotFound,
    OutboxItem,
    Texter,
    Tx,
    User,
)

Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name

LANGUAGES = frozenset({"en", "es"})
ROLES = frozenset({"advocate", "supervisor", "admin"})
PRESENCES = frozenset({"available", "away", "offline"})
MESSAGE_STATUSES = frozenset(
    {"received", "replied", "queued", "sending", "sent", "delivered", "undelivered", "failed"}
)
# Delivery progress; every status at FINAL_RANK is final (nothing moves out of it).
STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
FINAL_RANK = 3
# Other Twilio callback statuses, folded into ours.
STATUS_ALIASES = {
    "accepted": "queued",
    "scheduled": "queued",
    "read": "delivered",
    "canceled": "failed",
}
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def _rank_sql(column: str) -> str:
    """A status column's place in STATUS_RANK, in SQL (column names are constants)."""
    return (
        f"CASE {column} WHEN 'queued' THEN 0 WHEN 'sending' THEN 1 WHEN 'sent' THEN 2"
        f" ELSE {FINAL_RANK} END"
    )


_ENDED_SQL = ", ".join(f"'{s}'" for s in sorted(ENDED_STATES))  # constants, not input

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def load_migrations(dialect: Literal["sqlite", "postgres"]) -> list[Migration]:
    """The numbered files migrations/<dialect>/NNNN_name.sql, in order."""
    found = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        head, _, _ = path.stem.partition("_")
        if not head.isdigit():
            raise RuntimeError(f"migration file {path.name} must start with a number")
        found.append(Migration(int(head), path.stem, path.read_text()))
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two {dialect} migrations share a number: {numbers}")
    return found


# The task inside a transaction, so a nested one fails loudly instead of deadlocking on
# SQLite's single write connection (tasks started inside a transaction may open their own).
_TX_TASK: ContextVar[asyncio.Task[Any] | None] = ContextVar("haven_tx_task", default=None)


@contextmanager
def no_nesting() -> Iterator[None]:
    task = asyncio.current_task()
    if task is not None and _TX_TASK.get() is task:
        raise RuntimeError("store transactions do not nest: finish the open one first")
    token = _TX_TASK.set(task)
    try:
        yield
    finally:
        _TX_TASK.reset(token)


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is a programming error, not a guess."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    return value.astimezone(UTC)


# A stable, friendly alias from the texter id (never from the number): a multiplicative
# hash spreads neighbouring ids over the words, the id itself keeps aliases unique.
_ADJECTIVES = (
    "Amber", "Azure", "Blue", "Bright", "Calm", "Cedar", "Clear", "Coral",
    "Gentle", "Golden", "Green", "Hazel", "Ivory", "Jade", "Kind", "Light",
    "Lunar", "Maple", "Misty", "Olive", "Quiet", "Rose", "Sage", "Silver",
    "Soft", "Still", "Sunny", "Swift", "Teal", "Warm", "Wild", "Willow",
)  # fmt: skip
_ANIMALS = (
    "Badger", "Crane", "Deer", "Dove", "Falcon", "Finch", "Fox", "Hare",
    "Heron", "Ibis", "Jay", "Kestrel", "Koala", "Lark", "Lynx", "Marten",
    "Moth", "Newt", "Otter", "Owl", "Panda", "Puffin", "Quail", "Robin",
    "Seal", "Sparrow", "Swan", "Tern", "Turtle", "Whale", "Wren", "Yak",
)  # fmt: skip


def alias_for(texter_id: int) -> str:
    h = (texter_id * 2654435761) & 0xFFFFFFFF
    return f"{_ADJECTIVES[h % 32]} {_ANIMALS[(h >> 5) % 32]} {texter_id}"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqlTx(Tx):
    """Every Tx method, written once. Subclasses supply the four primitives below."""

    _FOR_UPDATE = ""  # row lock on single-conversation loads (PostgreSQL)
    _SKIP_LOCKED = ""  # for work queues claimed by several processes (PostgreSQL)

    def __init__(self, crypto: Crypto) -> None:
        self._crypto = crypto
        self.closed = False  # set when the transaction ends; further use is an error

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abc.abstractmethod
    async def _execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    @abc.abstractmethod
    def _ts(self, value: datetime) -> Any:
        """A UTC datetime as this driver stores it."""

    @abc.abstractmethod
    def _dt(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

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

    # -- row mapping -----------------------------------------------------------------------
    def _texter(self, r: Row) -> Texter:
        safe = r["safe_to_text"]
        hours = r["unsafe_hours_enc"]
        return Texter(
            id=r["id"],
            phone_hash=r["phone_hash"],
            phone=self._dec(r["phone_enc"]),
            language=r["language"],
            safe_to_text=None if safe is None else bool(safe),
            unsafe_hours=None if hours is None else self._dec(hours),
            opted_out=bool(r["opted_out"]),
            alias=alias_for(r["id"]),
            created_at=self._dt(r["created_at"]),
        )

    def _conversation(self, r: Row) -> Conversation:
        private: dict[str, Any] = {}
        if r["private_enc"] is not None:
            private = json.loads(self._dec(r["private_enc"]))
        return Conversation(
            id=r["id"],
            texter_id=r["texter_id"],
            state=r["state"],
            language=r["language"],
            priority=r["priority"],
            labels=json.loads(r["labels"]),
            signals=private.get("signals", []),
            need=private.get("need"),
            answers=private.get("answers", {}),
            location=private.get("location"),
            flow=private.get("flow", {}),
            team=r["team"],
            advocate_id=r["advocate_id"],
            transfer_to=r["transfer_to"],
            created_at=self._dt(r["created_at"]),
            updated_at=self._dto(r["updated_at"]),
            last_inbound_at=self._dto(r["last_inbound_at"]),
            queued_at=self._dto(r["queued_at"]),
            claimed_at=self._dto(r["claimed_at"]),
            closed_at=self._dto(r["closed_at"]),
            disposition=r["disposition"],
            nudge_at=self._dto(r["nudge_at"]),
            expire_at=self._dto(r["expire_at"]),
        )

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
        )

    def _user(self, r: Row) -> User:
        return User(
            id=r["id"],
            name=r["name"],
            role=r["role"],
            password_hash=r["password_hash"],
            teams=json.loads(r["teams"]),
            presence=r["presence"],
            capacity=r["capacity"],
            active=bool(r["active"]),
            created_at=self._dt(r["created_at"]),
            session_epoch=r["session_epoch"],
        )

    def _note(self, r: Row) -> Note:
        return Note(
            id=r["id"],
            conversation_id=r["conversation_id"],
            user_id=r["user_id"],
            body=self._dec(r["body_enc"]),
            created_at=self._dt(r["created_at"]),
        )

    async def _require(self, table: str, record_id: int) -> None:
        # `table` is always a literal from this module, never input.
        if await self._one(f"SELECT 1 FROM {table} WHERE id = ?", record_id) is None:
            raise NotFound(f"no {table[:-1]} {record_id}")

    # -- webhook idempotency -----------------------------------------------------------------
    async def get_reply(self, message_sid: str) -> str | None:
        r = await self._one("SELECT body_enc FROM replies WHERE message_sid = ?", message_sid)
        return None if r is None else self._dec(r["body_enc"])

    async def save_reply(self, message_sid: str, body: str, now: datetime) -> None:
        _check(bool(message_sid), "message_sid is required")
        # The first answer stands: a duplicate webhook must get the same response.
        await self._execute(
            "INSERT INTO replies (message_sid, body_enc, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (message_sid) DO NOTHING",
            message_sid,
            self._enc(body),
            self._at(now),
        )

    # -- texters -------------------------------------------------------------------------------
    async def get_texter_by_hash(self, phone_hash: str) -> Texter | None:
        r = await self._one("SELECT * FROM texters WHERE phone_hash = ?", phone_hash)
        return None if r is None else self._texter(r)

    async def get_texter(self, texter_id: int) -> Texter:
        r = await self._one("SELECT * FROM texters WHERE id = ?", texter_id)
        if r is None:
            raise NotFound(f"no texter {texter_id}")
        return self._texter(r)

    async def create_texter(
        self, phone_hash: str, phone: str, language: str, now: datetime
    ) -> Texter:
        _check(bool(phone_hash), "phone_hash is required")
        _check(bool(_E164.match(phone)), "phone must be an E.164 number like +15551234567")
        _check(language in LANGUAGES, f"language must be one of {sorted(LANGUAGES)}")
        r = await self._one(
            "INSERT INTO texters (phone_hash, phone_enc, language, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (phone_hash) DO NOTHING RETURNING *",
            phone_hash,
            self._enc(phone),
            language,
            self._at(now),
        )
        if r is None:
            raise Conflict("a texter with this phone hash exists")
        return self._texter(r)

    async def save_texter(self, texter: Texter) -> None:
        _check(texter.language in LANGUAGES, f"language must be one of {sorted(LANGUAGES)}")
        # phone and phone_hash never change: a new number is a new texter.
        n = await self._execute(
            "UPDATE texters SET language = ?, safe_to_text = ?, unsafe_hours_enc = ?,"
            " opted_out = ? WHERE id = ?",
            texter.language,
            None if texter.safe_to_text is None else int(texter.safe_to_text),
            None if texter.unsafe_hours is None else self._enc(texter.unsafe_hours),
            int(texter.opted_out),
            texter.id,
        )
        if n == 0:
            raise NotFound(f"no texter {texter.id}")

    async def _delete_replies_of(self, where: str, *args: Any) -> None:
        """Saved replies answer inbound messages; find them by the messages' SIDs."""
        await self._execute(
            "DELETE FROM replies WHERE message_sid IN (SELECT m.provider_sid FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE m.direction = 'in' AND m.provider_sid IS NOT NULL AND {where})",
            *args,
        )

    async def delete_texter(self, texter_id: int) -> None:
        await self._require("texters", texter_id)
        await self._delete_replies_of("c.texter_id = ?", texter_id)
        # Conversations, messages, outbox items and notes go by ON DELETE CASCADE.
        await self._execute("DELETE FROM texters WHERE id = ?", texter_id)

    # -- conversations -------------------------------------------------------------------------
    async def get_open_conversation(self, texter_id: int) -> Conversation | None:
        r = await self._one(
            f"SELECT * FROM conversations WHERE texter_id = ? AND state NOT IN ({_ENDED_SQL})"
            f" ORDER BY id DESC LIMIT 1{self._FOR_UPDATE}",
            texter_id,
        )
        return None if r is None else self._conversation(r)

    async def get_conversation(self, conversation_id: int) -> Conversation:
        r = await self._one(
            f"SELECT * FROM conversations WHERE id = ?{self._FOR_UPDATE}", conversation_id
        )
        if r is None:
            raise NotFound(f"no conversation {conversation_id}")
        return self._conversation(r)

    async def create_conversation(
        self, texter_id: int, language: str, now: datetime
    ) -> Conversation:
        _check(language in LANGUAGES, f"language must be one of {sorted(LANGUAGES)}")
        await self._require("texters", texter_id)
        at = self._at(now)
        r = await self._returning(
            "INSERT INTO conversations (texter_id, state, language, priority, created_at,"
            " updated_at) VALUES (?, 'new', ?, 4, ?, ?) RETURNING *",
            texter_id,
            language,
            at,
            at,
        )
        return self._conversation(r)

    async def save_conversation(self, conversation: Conversation) -> None:
        c = conversation
        _check(bool(c.state), "state is required")
        _check(c.language in LANGUAGES, f"language must be one of {sorted(LANGUAGES)}")
        _check(c.priority in (1, 2, 3, 4), "priority must be 1, 2, 3 or 4")
        private = {
            "need": c.need,
            "answers": c.answers,
            "signals": c.signals,
            "location": c.location,
            "flow": c.flow,
        }
        blob = self._enc(json.dumps(private, separators=(",", ":")))
        r = await self._one(
            "UPDATE conversations SET state = ?, language = ?, priority = ?, labels = ?,"
            " private_enc = ?, team = ?, advocate_id = ?, transfer_to = ?, updated_at = ?,"
            " last_inbound_at = ?, queued_at = ?, claimed_at = ?, closed_at = ?,"
            " disposition = ?, nudge_at = ?, expire_at = ? WHERE id = ? RETURNING purged",
            c.state,
            c.language,
            c.priority,
            json.dumps(list(c.labels)),
            blob,
            c.team,
            c.advocate_id,
            c.transfer_to,
            self._tso(c.updated_at),
            self._tso(c.last_inbound_at),
            self._tso(c.queued_at),
            self._tso(c.claimed_at),
            self._tso(c.closed_at),
            c.disposition,
            self._tso(c.nudge_at),
            self._tso(c.expire_at),
            c.id,
        )
        if r is None:
            raise NotFound(f"no conversation {c.id}")
        if r["purged"]:  # quick exit already erased it: never write the content back
            await self._execute("UPDATE conversations SET private_enc = NULL WHERE id = ?", c.id)

    async def purge_conversation(self, conversation_id: int) -> None:
        await self._require("conversations", conversation_id)
        await self._delete_replies_of("c.id = ?", conversation_id)
        # Deleting the messages also drops their outbox items: nothing queued is sent
        # after a quick exit (enqueue anything meant to go out after calling this).
        await self._execute("DELETE FROM messages WHERE conversation_id = ?", conversation_id)
        await self._execute("DELETE FROM notes WHERE conversation_id = ?", conversation_id)
        # The conversation has ended: nothing about it is left for staff to be alarmed by.
        await self._execute("DELETE FROM alarms WHERE conversation_id = ?", conversation_id)
        await self._execute(
            "UPDATE conversations SET private_enc = NULL, purged = 1 WHERE id = ?",
            conversation_id,
        )

    async def list_conversations(
        self,
        states: Sequence[str] | None = None,
        advocate_id: int | None = None,
        limit: int = 500,
    ) -> list[Conversation]:
        _check(limit > 0, "limit must be positive")
        where: list[str] = []
        args: list[Any] = []
        if states is not None:
            if not states:
                return []
            where.append(f"state IN ({_marks(len(states))})")
            args.extend(states)
        if advocate_id is not None:
            where.append("advocate_id = ?")
            args.append(advocate_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._fetch(
            f"SELECT * FROM conversations{clause}"
            " ORDER BY COALESCE(updated_at, created_at) DESC, id DESC LIMIT ?",
            *args,
            limit,
        )
        return [self._conversation(r) for r in rows]

    async def due_timers(self, now: datetime, limit: int = 100) -> list[Conversation]:
        at = self._at(now)
        rows = await self._fetch(
            "SELECT * FROM conversations WHERE nudge_at <= ? OR expire_at <= ?"
            f" ORDER BY id LIMIT ?{self._SKIP_LOCKED}",
            at,
            at,
            limit,
        )
        return [self._conversation(r) for r in rows]

    async def claim(self, conversation_id: int, advocate_id: int, now: datetime) -> Conversation:
        at = self._at(now)
        # One statement: the WHERE clause is the race check (two advocates never both win).
        r = await self._one(
            "UPDATE conversations SET state = 'with_advocate', advocate_id = ?,"
            " claimed_at = ?, updated_at = ?, transfer_to = NULL"
            " WHERE id = ? AND state = 'queued' AND advocate_id IS NULL RETURNING *",
            advocate_id,
            at,
            at,
            conversation_id,
        )
        if r is None:
            await self._require("conversations", conversation_id)
            raise Conflict(f"conversation {conversation_id} is not waiting in the queue")
        return self._conversation(r)

    # -- messages ------------------------------------------------------------------------------
    async def add_message(self, message: Message) -> Message:
        m = message
        _check(m.direction in ("in", "out"), "direction must be 'in' or 'out'")
        _check(m.status in MESSAGE_STATUSES, f"unknown message status {m.status!r}")
        await self._require("conversations", m.conversation_id)
        created = utc(m.created_at) if m.created_at is not None else datetime.now(UTC)
        r = await self._returning(
            "INSERT INTO messages (conversation_id, direction, author, body_enc, created_at,"
            " provider_sid, status, error_code, media_types, labels)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        )
        m.id = r["id"]
        m.created_at = created
        return m

    async def list_messages(self, conversation_id: int) -> list[Message]:
        rows = await self._fetch(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", conversation_id
        )
        return [self._message(r) for r in rows]

    async def set_message_status(
        self,
        message_id: int,
        status: str,
        provider_sid: str | None = None,
        error_code: str | None = None,
    ) -> None:
        _check(status in MESSAGE_STATUSES, f"unknown message status {status!r}")
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
        status = STATUS_ALIASES.get(status, status)
        _check(status in STATUS_RANK, f"unknown delivery status {status!r}")
        utc(now)  # validated for the contract
        await self._lock_sid(provider_sid)
        # One conditional UPDATE, so concurrent callbacks cannot move a status backwards.
        rank = _rank_sql("status")
        r = await self._one(
            "UPDATE messages SET status = ?, error_code = COALESCE(?, error_code)"
            f" WHERE provider_sid = ? AND direction = 'out' AND {rank} < ? RETURNING *",
            status,
            error_code,
            provider_sid,
            STATUS_RANK[status],
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

    # -- outbox --------------------------------------------------------------------------------
    async def enqueue_outbound(self, message_id: int, to: str, now: datetime) -> int:
        _check(bool(_E164.match(to)), "to must be an E.164 number like +15551234567")
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

    async def _serialise_claims(self) -> None:
        """Hook: PostgreSQL makes concurrent claimers take turns (see PgTx)."""

    async def _lock_sid(self, provider_sid: str) -> None:
        """Hook: PostgreSQL makes a callback and the recording of its SID take turns."""

    async def claim_outbox(self, now: datetime, limit: int = 20) -> list[OutboxItem]:
        _check(limit > 0, "limit must be positive")
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
        """Not in base.Tx (asked for by bot.sms.outbox): items claimed ('sending') before
        `before` whose worker never reported back become 'failed' and are returned. They are
        never resent: whether the provider took them cannot be known."""
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
                f"SELECT id, body_enc FROM messages WHERE id IN ({_marks(len(rows))})",
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
        _check(status in ("sent", "failed", "pending"), "status must be sent, failed or pending")
        _check(status == "pending" or retry_at is None, "retry_at only goes with 'pending'")
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
        _check(bool(error_code), "error_code is required")
        rows = await self._fetch(
            "UPDATE outbox SET status = 'failed', updated_at = ?"
            " WHERE conversation_id = ? AND status = 'pending' RETURNING message_id",
            self._at(now),
            conversation_id,
        )
        for r in rows:
            await self.set_message_status(r["message_id"], "failed", error_code=error_code)
        return len(rows)

    # -- accounts --------------------------------------------------------------------------------
    def _check_user(self, name: str, role: str) -> None:
        _check(bool(name.strip()), "a user needs a name")
        _check(role in ROLES, f"role must be one of {sorted(ROLES)}")

    async def add_user(
        self, name: str, role: str, password_hash: str, teams: Sequence[str], now: datetime
    ) -> User:
        self._check_user(name, role)
        r = await self._one(
            "INSERT INTO users (name, role, password_hash, teams, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING *",
            name,
            role,
            password_hash,
            json.dumps(list(teams)),
            self._at(now),
        )
        if r is None:
            raise Conflict(f"the user name {name!r} is taken")
        return self._user(r)

    async def get_user(self, user_id: int) -> User:
        r = await self._one("SELECT * FROM users WHERE id = ?", user_id)
        if r is None:
            raise NotFound(f"no user {user_id}")
        return self._user(r)

    async def lock_user(self, user_id: int) -> User:
        r = await self._one(f"SELECT * FROM users WHERE id = ?{self._FOR_UPDATE}", user_id)
        if r is None:
            raise NotFound(f"no user {user_id}")
        return self._user(r)

    async def get_user_by_name(self, name: str) -> User | None:
        r = await self._one("SELECT * FROM users WHERE name = ?", name)
        return None if r is None else self._user(r)

    async def list_users(self) -> list[User]:
        return [self._user(r) for r in await self._fetch("SELECT * FROM users ORDER BY id")]

    async def save_user(self, user: User) -> None:
        self._check_user(user.name, user.role)
        _check(user.presence in PRESENCES, f"presence must be one of {sorted(PRESENCES)}")
        _check(user.capacity >= 0, "capacity cannot be negative")
        taken = await self._one(
            "SELECT 1 FROM users WHERE name = ? AND id <> ?", user.name, user.id
        )
        if taken is not None:
            raise Conflict(f"the user name {user.name!r} is taken")
        n = await self._execute(
            "UPDATE users SET name = ?, role = ?, password_hash = ?, teams = ?, presence = ?,"
            " capacity = ?, active = ?, session_epoch = ? WHERE id = ?",
            user.name,
            user.role,
            user.password_hash,
            json.dumps(list(user.teams)),
            user.presence,
            user.capacity,
            int(user.active),
            user.session_epoch,
            user.id,
        )
        if n == 0:
            raise NotFound(f"no user {user.id}")

    # -- notes and audit -------------------------------------------------------------------------
    async def add_note(self, conversation_id: int, user_id: int, body: str, now: datetime) -> Note:
        await self._require("conversations", conversation_id)
        r = await self._returning(
            "INSERT INTO notes (conversation_id, user_id, body_enc, created_at)"
            " VALUES (?, ?, ?, ?) RETURNING *",
            conversation_id,
            user_id,
            self._enc(body),
            self._at(now),
        )
        return self._note(r)

    async def list_notes(self, conversation_id: int) -> list[Note]:
        rows = await self._fetch(
            "SELECT * FROM notes WHERE conversation_id = ? ORDER BY id", conversation_id
        )
        return [self._note(r) for r in rows]

    async def audit(
        self,
        user_id: int | None,
        action: str,
        conversation_id: int | None,
        detail: str,
        now: datetime,
    ) -> None:
        _check(bool(action), "an audit entry needs an action")
        await self._execute(
            "INSERT INTO audit (user_id, action, conversation_id, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            user_id,
            action,
            conversation_id,
            detail,
            self._at(now),
        )

    async def list_audit(
        self, conversation_id: int | None = None, limit: int = 200
    ) -> list[AuditEntry]:
        """Newest first."""
        _check(limit > 0, "limit must be positive")
        where = "" if conversation_id is None else " WHERE conversation_id = ?"
        args: list[Any] = [] if conversation_id is None else [conversation_id]
        rows = await self._fetch(
            f"SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?", *args, limit
        )
        return [
            AuditEntry(
                id=r["id"],
                user_id=r["user_id"],
                action=r["action"],
                conversation_id=r["conversation_id"],
                detail=r["detail"],
                created_at=self._dt(r["created_at"]),
            )
            for r in rows
        ]

    # -- alarms ----------------------------------------------------------------------------------
    async def raise_alarm(self, conversation_id: int, kind: str, now: datetime) -> bool:
        _check(bool(kind), "an alarm needs a kind")
        # One statement, so the database decides the race: a row comes back only when this
        # call inserted the alarm or revived a cleared one (SQLite >= 3.35, PostgreSQL).
        r = await self._one(
            "INSERT INTO alarms (conversation_id, kind, raised_at) VALUES (?, ?, ?)"
            " ON CONFLICT (conversation_id, kind) DO UPDATE SET"
            " raised_at = excluded.raised_at, cleared_at = NULL"
            " WHERE alarms.cleared_at IS NOT NULL RETURNING conversation_id",
            conversation_id,
            kind,
            self._at(now),
        )
        return r is not None

    async def clear_alarms(
        self, conversation_id: int, now: datetime, kinds: Sequence[str] | None = None
    ) -> list[str]:
        where = ""
        args: list[Any] = []
        if kinds is not None:
            if not kinds:
                return []
            where = f" AND kind IN ({_marks(len(kinds))})"
            args = list(kinds)
        rows = await self._fetch(
            "UPDATE alarms SET cleared_at = ? WHERE conversation_id = ? AND cleared_at IS NULL"
            f"{where} RETURNING kind",
            self._at(now),
            conversation_id,
            *args,
        )
        return sorted(r["kind"] for r in rows)

    async def list_alarms(self, *, active: bool = True) -> list[Alarm]:
        where = " WHERE cleared_at IS NULL" if active else ""
        rows = await self._fetch(
            f"SELECT * FROM alarms{where} ORDER BY raised_at, conversation_id, kind"
        )
        return [
            Alarm(
                conversation_id=r["conversation_id"],
                kind=r["kind"],
                raised_at=self._dt(r["raised_at"]),
                cleared_at=self._dto(r["cleared_at"]),
            )
            for r in rows
        ]

    # -- operations ------------------------------------------------------------------------------
    async def purge_before(self, cutoff: datetime) -> int:
        at = self._at(cutoff)
        # Last activity is the latest of these; written per column so both dialects agree.
        # Ended conversations, and those stopped with STOP (nobody can text them; the texter
        # starts anew with START), once idle past retention.
        old = (
            f"c.state IN ({_ENDED_SQL}, 'opted_out') AND c.created_at < ?"
            " AND (c.updated_at IS NULL OR c.updated_at < ?)"
            " AND (c.closed_at IS NULL OR c.closed_at < ?)"
            " AND (c.last_inbound_at IS NULL OR c.last_inbound_at < ?)"
        )
        await self._delete_replies_of(old, at, at, at, at)
        removed = await self._execute(
            f"DELETE FROM conversations WHERE id IN (SELECT c.id FROM conversations c WHERE {old})",
            at,
            at,
            at,
            at,
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
            " (SELECT COUNT(*) FROM conversations WHERE state = 'queued') AS queued,"
            " (SELECT COUNT(*) FROM conversations WHERE state = 'with_advocate')"
            " AS with_advocate,"
            " (SELECT COUNT(*) FROM users) AS users"
        )
        keys = ("messages_in", "messages_out", "texters", "conversations", "queued")
        return {k: int(r[k]) for k in (*keys, "with_advocate", "users")}

"""The storage interface: the one contract both backends keep (records: bot/store/records.py).

Every read and write happens inside `Store.transaction()`, which yields a `Tx`. A transaction
opened with a `lock_key` (a texter's phone hash) is serialised with every other transaction
holding the same key, across tasks and, on PostgreSQL, across processes (an advisory lock
taken *before* anything is loaded: aiogram's rule). Plaintext goes in and comes out; the
backends encrypt phone numbers, bodies and locations at rest with bot.crypto.Crypto.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from bot.store.records import (
    Ahead,
    Alarm,
    AuditEntry,
    Conflict,
    Conversation,
    Direction,
    InboundState,
    LoginKey,
    Message,
    Note,
    NotFound,
    OutboxItem,
    Program,
    Referral,
    ResourceSite,
    SafetyPlanRecord,
    ScreenRecord,
    Texter,
    User,
    Waiting,
)

# Re-exported for the backends; flows.states defines every state name and set.
from flows.states import ENDED_STATES as ENDED_STATES
from flows.states import INTAKE_STATES as INTAKE_STATES

# The records live in bot/store/records.py; callers may import them from here too.
__all__ = [
    "ENDED_STATES",
    "INTAKE_STATES",
    "Ahead",
    "Alarm",
    "AuditEntry",
    "Conflict",
    "Conversation",
    "Direction",
    "InboundState",
    "LoginKey",
    "Message",
    "NotFound",
    "Note",
    "OutboxItem",
    "Program",
    "Referral",
    "ReplySid",
    "ResourceSite",
    "SafetyPlanRecord",
    "ScreenRecord",
    "Store",
    "Texter",
    "Tx",
    "User",
    "Waiting",
]

# What a TwiML reply's callback did (Tx.record_reply_sid).
ReplySid = Literal["recorded", "known", "erased"]


class Tx(abc.ABC):
    """One transaction. Methods raise NotFound/Conflict rather than returning sentinels
    where the caller must react."""

    # -- webhook idempotency ------------------------------------------------------------
    @abc.abstractmethod
    async def get_reply(self, message_sid: str) -> str | None:
        """The response body already given for this inbound MessageSid, if any."""

    @abc.abstractmethod
    async def save_reply(self, message_sid: str, body: str, now: datetime) -> None:
        """Remember the response body (TwiML) given for a MessageSid (encrypted at rest)."""

    # -- one inbound message ---------------------------------------------------------------
    @abc.abstractmethod
    async def load_inbound(self, phone_hash: str, message_sid: str) -> InboundState:
        """In one statement: the reply saved for `message_sid`, the texter with this phone
        hash (None for a new number), their block flag and reply window, and their newest
        conversation not in ENDED_STATES (as get_open_conversation, and like it locked
        FOR UPDATE on PostgreSQL). The caller holds the texter's lock."""

    # -- texters -------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_texter_by_hash(self, phone_hash: str) -> Texter | None: ...

    @abc.abstractmethod
    async def get_texter(self, texter_id: int) -> Texter: ...

    @abc.abstractmethod
    async def get_texters(self, texter_ids: Sequence[int]) -> dict[int, Texter]:
        """Several texters in one read, by id (ids with no texter are absent)."""

    @abc.abstractmethod
    async def create_texter(
        self, phone_hash: str, phone: str, language: str, now: datetime
    ) -> Texter: ...

    @abc.abstractmethod
    async def save_texter(self, texter: Texter) -> None: ...

    @abc.abstractmethod
    async def delete_texter(self, texter_id: int) -> None:
        """DELETE/BORRAR: remove the texter and everything about them (conversations,
        messages, notes' bodies, outbox, replies). Audit rows stay, without content."""

    # -- conversations -------------------------------------------------------------------
    @abc.abstractmethod
    async def get_open_conversation(self, texter_id: int) -> Conversation | None:
        """The texter's newest conversation not in ENDED_STATES, if any."""

    @abc.abstractmethod
    async def get_conversation(self, conversation_id: int) -> Conversation: ...

    @abc.abstractmethod
    async def create_conversation(
        self, texter_id: int, language: str, now: datetime
    ) -> Conversation: ...

    @abc.abstractmethod
    async def save_conversation(self, conversation: Conversation) -> None:
        """Write every field back (the caller loaded it under the texter's lock)."""

    @abc.abstractmethod
    async def purge_conversation(self, conversation_id: int) -> None:
        """Quick exit: erase the stored content (message bodies, location, answers,
        signals, notes) and what the row says about it (labels, priority, team,
        disposition, timers), keeping only that a conversation existed and ended, so the
        advocate sees that it ended."""

    @abc.abstractmethod
    async def list_conversations(
        self,
        states: Sequence[str] | None = None,
        advocate_id: int | None = None,
        limit: int = 500,
    ) -> list[Conversation]:
        """Conversations filtered by state and/or holder, newest activity first."""

    @abc.abstractmethod
    async def held_or_offered(self, user_id: int, states: Sequence[str]) -> list[Conversation]:
        """The conversations in `states` this user holds or is offered (transfer_to),
        newest activity first: read by holder, never every held conversation."""

    @abc.abstractmethod
    async def list_waiting(self, limit: int = 100_000) -> list[Waiting]:
        """The conversations waiting in the queue (queued, unheld, with a queued_at), in no
        particular order: their ordering columns only, nothing decrypted."""

    @abc.abstractmethod
    async def get_waiting(self, conversation_id: int) -> Waiting | None:
        """One conversation's list_waiting row; None when it is not waiting in the queue."""

    @abc.abstractmethod
    async def count_waiting(
        self, program_id: int | None, ahead: Sequence[Ahead], tie_with: Waiting | None = None
    ) -> int:
        """How many of those waiting (as list_waiting) in program `program_id` (None: the
        default program) the rules select, each rule for its priority (a priority without
        one: none); `ties` compare with `tie_with` (ignored without it). One COUNT, nothing
        read into Python: a texter's place in line at any queue length."""

    @abc.abstractmethod
    async def held_counts(self, states: Sequence[str]) -> dict[int, int]:
        """Advocate id -> how many conversations in `states` they hold (those holding
        none are absent)."""

    @abc.abstractmethod
    async def claim_spans(
        self, states: Sequence[str], limit: int
    ) -> list[tuple[datetime | None, datetime | None]]:
        """(claimed_at, closed_at) of the first `limit` conversations in `states` in
        list_conversations' order (newest activity first): two columns, nothing decrypted."""

    @abc.abstractmethod
    async def get_conversations(self, conversation_ids: Sequence[int]) -> dict[int, Conversation]:
        """Several conversations in one read, by id (ids with no row are absent)."""

    @abc.abstractmethod
    async def texter_conversations(
        self, texter_id: int, states: Sequence[str] | None = None, limit: int = 10
    ) -> list[Conversation]:
        """One texter's conversations (optionally only in these states), newest first by
        id, at most `limit`: read through the texter's index, never a scan of all."""

    @abc.abstractmethod
    async def due_timers(self, now: datetime, limit: int = 100) -> list[Conversation]:
        """Conversations whose nudge_at or expire_at is <= now. On PostgreSQL the rows are
        locked FOR UPDATE SKIP LOCKED so each timer fires once across processes."""

    @abc.abstractmethod
    async def claim(self, conversation_id: int, advocate_id: int, now: datetime) -> Conversation:
        """Atomically give a queued, unheld conversation to an advocate (state
        'with_advocate'). Raises Conflict if it is not queued or is already held."""

    # -- messages ------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_message(self, message: Message) -> Message:
        """Insert; returns it with id and created_at set."""

    @abc.abstractmethod
    async def add_replies(
        self, conversation_id: int, replies: Sequence[tuple[str, str | None]]
    ) -> None:
        """Haven's texts given inside a webhook's response, each (text, reply_ref) (author
        'haven', status 'replied'), stored in order. Nothing is returned, so a backend may
        send them with the transaction's later statements (SQLite: in one thread hop)."""

    @abc.abstractmethod
    async def list_messages(self, conversation_id: int) -> list[Message]:
        """Oldest first."""

    @abc.abstractmethod
    async def inbound_messages(self, conversation_ids: Sequence[int]) -> dict[int, list[Message]]:
        """The texter's messages ('in') of several conversations in one read, each list in
        order (conversations with none are absent)."""

    @abc.abstractmethod
    async def inbound_marks(self, conversation_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Per conversation, (its newest texter message's id, how many it has): what says
        whether its texter's words changed, nothing decrypted (conversations with none
        are absent)."""

    @abc.abstractmethod
    async def unread_count(self, conversation_id: int, user_id: int) -> int:
        """The texter's messages since this user last viewed the conversation (its latest
        'view' audit row); all of them when the user never did."""

    @abc.abstractmethod
    async def set_message_status(
        self,
        message_id: int,
        status: str,
        provider_sid: str | None = None,
        error_code: str | None = None,
    ) -> None: ...

    @abc.abstractmethod
    async def record_status(
        self, provider_sid: str, status: str, error_code: str | None, now: datetime
    ) -> Message | None:
        """A delivery callback. Idempotent; a status never moves backwards (delivered is
        not undone by a late 'sent'). Returns the message, or None for an unknown SID."""

    # -- outbox --------------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue_outbound(self, message_id: int, to: str, now: datetime) -> int:
        """Put an already-added outbound Message (status 'queued') in the outbox."""

    @abc.abstractmethod
    async def cancel_outbox(self, conversation_id: int, error_code: str, now: datetime) -> int:
        """Fail every item of this conversation still waiting to be sent (not one being sent
        now), its message marked failed with `error_code`; returns how many."""

    @abc.abstractmethod
    async def claim_outbox(self, now: datetime, limit: int = 20) -> list[OutboxItem]:
        """Pending items due now, oldest first, marked 'sending' (FOR UPDATE SKIP LOCKED on
        PostgreSQL) so a second worker never takes the same one. An item waits while an
        earlier one of its conversation is being sent or waits for a retry: texts arrive in
        the order they were written."""

    @abc.abstractmethod
    async def finish_outbox(
        self,
        item_id: int,
        status: Literal["sent", "failed", "pending"],
        now: datetime,
        retry_at: datetime | None = None,
    ) -> None:
        """Mark an item sent or failed, or back to pending with a retry time."""

    @abc.abstractmethod
    async def fail_stale_outbox(self, before: datetime, now: datetime) -> list[OutboxItem]:
        """Items left 'sending' since before `before` (a process died mid-send) are marked
        failed, never resent: Twilio has no idempotency key (at most once). The caller marks
        their messages (the outbox: 'uncertain')."""

    @abc.abstractmethod
    async def record_reply_sid(self, reply_ref: str, provider_sid: str) -> ReplySid:
        """Twilio's SID for the TwiML reply Haven gave reference `reply_ref`: "recorded" on
        its message (whose erasure then redacts it at Twilio), "known" when the message
        already has a SID, or "erased" when no stored message has the reference (erased
        since, or never stored): the SID is then due for redaction at once."""

    @abc.abstractmethod
    async def claim_redactions(self, now: datetime, limit: int = 20) -> list[tuple[str, int]]:
        """(message SID, attempts including this one) due for redaction at Twilio (recorded
        when a quick exit, DELETE or retention erased their messages), marked 'sending' so
        one worker takes each."""

    @abc.abstractmethod
    async def finish_redaction(
        self, provider_sid: str, done: bool, now: datetime, retry_at: datetime | None = None
    ) -> None:
        """Done: forget the SID. Not done: pending again at `retry_at`, or 'failed' (kept,
        for an operator) without one."""

    # -- accounts --------------------------------------------------------------------------
    @abc.abstractmethod
    async def add_user(
        self, name: str, role: str, password_hash: str, teams: Sequence[str], now: datetime
    ) -> User:
        """Raises Conflict if the name is taken."""

    @abc.abstractmethod
    async def get_user(self, user_id: int) -> User: ...

    @abc.abstractmethod
    async def lock_user(self, user_id: int) -> User:
        """get_user, holding the user's row until the transaction ends (PostgreSQL), so
        checks of an advocate's load and the claim that follows cannot interleave."""

    @abc.abstractmethod
    async def get_user_by_name(self, name: str) -> User | None: ...

    @abc.abstractmethod
    async def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    async def save_user(self, user: User) -> None: ...

    # -- notes and audit -----------------------------------------------------------------
    @abc.abstractmethod
    async def add_note(self, conversation_id: int, user_id: int, body: str, now: datetime) -> Note:
        """Notes are encrypted at rest like message bodies."""

    @abc.abstractmethod
    async def note_counts(self, conversation_ids: Sequence[int]) -> dict[int, int]:
        """How many notes each of these conversations has (those with none are absent)."""

    @abc.abstractmethod
    async def list_notes(self, conversation_id: int) -> list[Note]: ...

    @abc.abstractmethod
    async def audit(
        self,
        user_id: int | None,
        action: str,
        conversation_id: int | None,
        detail: str,
        now: datetime,
    ) -> None: ...

    @abc.abstractmethod
    async def list_audit(
        self, conversation_id: int | None = None, limit: int = 200
    ) -> list[AuditEntry]: ...

    # -- alarms --------------------------------------------------------------------------
    @abc.abstractmethod
    async def raise_alarm(self, conversation_id: int, kind: str, now: datetime) -> bool:
        """Record an alarm. True only for the one caller that raised it (a new row, or one
        that had been cleared, raised again at `now`); False while it is still active, so
        among any number of processes racing to raise it exactly one gets True."""

    @abc.abstractmethod
    async def clear_alarms(
        self, conversation_id: int, now: datetime, kinds: Sequence[str] | None = None
    ) -> list[str]:
        """Mark this conversation's active alarms (of `kinds`, or all) cleared at `now`;
        return the kinds cleared, sorted."""

    @abc.abstractmethod
    async def list_alarms(self, *, active: bool = True) -> list[Alarm]:
        """Active alarms (or, with active=False, every recorded one), oldest raised first.
        A conversation's alarms go when it is deleted or purged (quick exit)."""

    # -- resource directory and referrals (bot/store/tx/resources.py) ---------------------
    @abc.abstractmethod
    async def replace_resources(self, sites: Sequence[ResourceSite], now: datetime) -> int:
        """Replace the whole directory with `sites` (inside this one transaction, so a
        reader sees the old directory or the new, never a mix); return how many."""

    @abc.abstractmethod
    async def resource_sites_in_box(
        self,
        south: float,
        north: float,
        west: float,
        east: float,
        need: str | None = None,
    ) -> list[ResourceSite]:
        """Placed sites inside a latitude/longitude box (bounds inclusive), optionally only
        those tagged with `need`; in id order. Distance is the caller's business."""

    @abc.abstractmethod
    async def count_resource_sites(self) -> int: ...

    @abc.abstractmethod
    async def record_referral(
        self, conversation_id: int, service_id: str, user_id: int | None, now: datetime
    ) -> Referral:
        """Record that this directory service was given on this conversation. Raises
        NotFound for an unknown conversation or a service not in the directory."""

    @abc.abstractmethod
    async def list_referrals(self, conversation_id: int) -> list[Referral]:
        """Oldest first. They go with the conversation (deleted, purged or retired)."""

    # -- operations ----------------------------------------------------------------------
    @abc.abstractmethod
    async def purge_before(self, cutoff: datetime) -> int:
        """Retention: delete ended conversations (and their messages, notes, replies)
        whose last activity is before cutoff, and texters left with nothing. Returns how
        many conversations were removed."""

    @abc.abstractmethod
    async def purge_audit_before(self, cutoff: datetime) -> int:
        """Audit retention: delete audit rows written before cutoff; returns how many."""

    # -- keys ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_key_check(self) -> str | None:
        """The key check recorded with the data (bot.crypto.Crypto.key_check), if any."""

    @abc.abstractmethod
    async def set_key_check(self, value: str | None, now: datetime) -> None:
        """Record which key the data is under (None forgets it)."""

    @abc.abstractmethod
    async def sample_ciphertext(self) -> bytes | None:
        """One encrypted field, to judge a key against data with no key check yet."""

    @abc.abstractmethod
    async def rekey_rows(
        self, table: str, after: Any, limit: int, previous: Sequence[Any]
    ) -> tuple[Any, int, int]:
        """Re-encrypt (and for texters re-hash) up to `limit` rows of `table` after key
        `after` under this transaction's key, reading with `previous` (Crypto objects).
        Rows already under this key are left alone. Returns (last key, changed, seen)."""

    @abc.abstractmethod
    async def stats(self) -> dict[str, int]:
        """Counts only: messages_in, messages_out, texters, conversations, queued,
        with_advocate, users, referrals."""

    # -- advocate tools: screens and safety plans (bot/store/tx/advocate_tools.py) ---------
    @abc.abstractmethod
    async def add_screen(
        self,
        conversation_id: int,
        kind: str,
        user_id: int | None,
        data: dict[str, Any],
        now: datetime,
    ) -> ScreenRecord:
        """Record one screen (its data encrypted). NotFound for an unknown conversation."""

    @abc.abstractmethod
    async def list_screens(self, conversation_id: int) -> list[ScreenRecord]:
        """Oldest first. They go with the conversation (deleted, purged or retired)."""

    @abc.abstractmethod
    async def save_safety_plan(
        self, conversation_id: int, user_id: int | None, sections: dict[str, str], now: datetime
    ) -> SafetyPlanRecord:
        """Create or replace the conversation's plan (encrypted); NotFound as above."""

    @abc.abstractmethod
    async def get_safety_plan(self, conversation_id: int) -> SafetyPlanRecord | None: ...

    @abc.abstractmethod
    async def mark_safety_plan_sent(self, conversation_id: int, now: datetime) -> None: ...
    # -- programs sharing one Haven (bot/store/tx/programs.py) ----------------------------
    @abc.abstractmethod
    async def add_program(
        self,
        slug: str,
        name: str,
        number: str,
        hours: str | None,
        lines: Sequence[str] | None,
        name_services: bool,
        now: datetime,
    ) -> Program:
        """Raises Conflict when the slug or the number is taken."""

    @abc.abstractmethod
    async def list_programs(self) -> list[Program]:
        """In the order they were added."""

    @abc.abstractmethod
    async def set_conversation_program(self, conversation_id: int, program_id: int | None) -> None:
        """Move a conversation to a program (None: the default one). save_conversation
        never writes the program: only this does."""

    @abc.abstractmethod
    async def set_user_programs(self, user_id: int, program_ids: Sequence[int]) -> None:
        """Replace the programs a staff member belongs to (empty: the default program)."""

    @abc.abstractmethod
    async def user_program_ids(self, user_id: int) -> list[int]:
        """The programs a staff member belongs to, in id order (empty: none)."""

    @abc.abstractmethod
    async def users_program_ids(self, user_ids: Sequence[int]) -> dict[int, list[int]]:
        """user_program_ids of several staff members in one read: every id asked for is a
        key (an empty list: none)."""

    @abc.abstractmethod
    async def program_referral_count(
        self, program_id: int | None, since: datetime | None = None
    ) -> int:
        """Directory referrals given on the program's conversations (those started at or
        after `since`, when given)."""

    # -- abuse of the SMS line (bot.abuse) and the audit viewer ----------------------------
    @abc.abstractmethod
    async def block_texter(self, texter_id: int, user_id: int | None, now: datetime) -> bool:
        """Put a texter on the block list; True when they were not on it."""

    @abc.abstractmethod
    async def unblock_texter(self, texter_id: int) -> bool:
        """Take a texter off the block list; True when they were on it."""

    @abc.abstractmethod
    async def texter_blocked(self, texter_id: int) -> bool: ...

    @abc.abstractmethod
    async def reply_window(self, texter_id: int) -> tuple[datetime, int] | None:
        """When this texter's reply window opened and how many replies it has had."""

    @abc.abstractmethod
    async def set_reply_window(
        self, texter_id: int, started_at: datetime, replies: int
    ) -> None: ...

    @abc.abstractmethod
    async def audit_page(self, before_id: int | None, limit: int) -> list[AuditEntry]:
        """Audit rows newest first, older than before_id when given."""

    # -- the optional TOTP second factor for sign-in (bot/store/tx/accounts.py) -----------
    @abc.abstractmethod
    async def set_totp_secret(self, user_id: int, secret: str | None) -> None:
        """Enrol (stored encrypted) or, with None, remove. NotFound for an unknown user."""

    @abc.abstractmethod
    async def get_totp_secret(self, user_id: int) -> str | None:
        """The user's TOTP secret, or None when none is enrolled. NotFound as above."""

    @abc.abstractmethod
    async def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record that a code of TOTP time step `step` signed this user in: True, atomically,
        only when no code of this step or a later one was accepted before (a code is good
        once). A new or removed secret forgets the last step."""

    # -- login throttling shared across processes (bot/store/tx/logins.py) ------------------
    @abc.abstractmethod
    async def lock_login_keys(self, keys: Sequence[str], since: datetime) -> dict[str, LoginKey]:
        """Hold these throttle keys until the transaction ends (every process waits its turn)
        and return each one's attempts counted after `since` and its lock-out."""

    @abc.abstractmethod
    async def count_login_attempt(self, keys: Sequence[str], now: datetime) -> None:
        """Count one attempt, at `now`, under each key."""

    @abc.abstractmethod
    async def lock_login_key(self, key: str, until: datetime, locks: int) -> None:
        """Lock the key out until `until` (its `locks`-th lock-out); its count starts over."""

    @abc.abstractmethod
    async def refund_login_attempt(self, key: str) -> None:
        """Take back the key's latest counted attempt."""

    @abc.abstractmethod
    async def clear_login_key(self, key: str) -> None:
        """Forget the key: its attempts and its lock-out."""

    @abc.abstractmethod
    async def prune_login_throttle(self, before: datetime) -> int:
        """Delete attempts made, and lock-outs that ended, before `before`."""


class Store(abc.ABC):
    """A database. Open once per process (in the app's cleanup_ctx); share everywhere."""

    # True when only one process uses the database (SQLite): whatever a transaction finds
    # half-done at start-up was left by a process that is gone.
    single_process: bool = False

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending numbered migrations; return the numbers applied."""

    @abc.abstractmethod
    async def pending_migrations(self) -> list[int]:
        """Numbers of migrations not yet applied (start-up refuses to serve if any)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the database cannot be reached (for /readyz)."""

    @abc.abstractmethod
    def transaction(self, lock_key: str | None = None) -> AbstractAsyncContextManager[Tx]:
        """A transaction; with lock_key, serialised with others holding the same key.
        Commits on normal exit, rolls back on an exception."""

    def reading(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction for reading only: it sees what is committed and never waits for
        (or holds up) writers. On SQLite, a second, read-only connection (a write in it
        is refused); on PostgreSQL, an ordinary transaction (readers never wait there)."""
        return self.transaction()

    @asynccontextmanager
    async def locked_conversation(
        self, conversation_id: int
    ) -> AsyncIterator[tuple[Tx, Conversation]]:
        """A transaction holding the conversation's texter lock, with the conversation loaded
        after the lock is taken (never before: another holder may be changing it). NotFound
        when there is no such conversation."""
        async with self.reading() as tx:
            phone_hash = (
                await tx.get_texter((await tx.get_conversation(conversation_id)).texter_id)
            ).phone_hash
        async with self.transaction(lock_key=phone_hash) as tx:
            yield tx, await tx.get_conversation(conversation_id)

    async def notify(self, channel: str, payload: str) -> None:  # noqa: B027
        """Publish a small event to other processes (PostgreSQL NOTIFY); no-op here."""

    def listen(self, channel: str) -> AsyncIterator[str] | None:
        """Events from other processes, or None when the backend has no such thing."""
        return None

"""The records the store reads and writes (plain dataclasses), and its two errors. The
contract that reads and writes them is bot/store/base.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Direction = Literal["in", "out"]


@dataclass
class Texter:
    id: int
    phone_hash: str
    phone: str  # E.164, decrypted
    language: str = "en"  # "en" | "es"
    # Rule 2: None = never said; True only after an explicit YES to the safety check.
    safe_to_text: bool | None = None
    # "HH:MM-HH:MM" in the helpline's time zone during which nothing unprompted is sent.
    unsafe_hours: str | None = None
    opted_out: bool = False
    alias: str = ""  # stable, human-friendly, derived from the id (e.g. "Blue Heron 12")
    created_at: datetime | None = None


@dataclass
class Conversation:
    id: int
    texter_id: int
    state: str = "new"
    language: str = "en"
    priority: int = 4  # 1 (most urgent) .. 4; only rises (numerically falls) within one
    labels: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)  # why it is ranked so (triage signals)
    need: str | None = None  # "hurt" | "control" | "other_person" | "other" | free text id
    answers: dict[str, str] = field(default_factory=dict)  # screening question id -> yes/no/skip
    location: str | None = None  # ZIP or city, encrypted at rest
    flow: dict[str, Any] = field(default_factory=dict)  # the flow's scratch (counters, etc.)
    team: str | None = None
    advocate_id: int | None = None  # who holds it; None when unclaimed
    transfer_to: int | None = None  # advocate offered a transfer, until they accept
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_inbound_at: datetime | None = None
    queued_at: datetime | None = None  # when it entered the queue (waiting time)
    claimed_at: datetime | None = None
    closed_at: datetime | None = None
    disposition: str | None = None
    nudge_at: datetime | None = None  # timer: one nudge (if safe to text)
    expire_at: datetime | None = None  # timer: expire quietly
    program_id: int | None = None  # the program it belongs to; None = the default program


@dataclass(frozen=True)
class Waiting:
    """What ordering the queue needs of a waiting conversation (Tx.list_waiting): the
    plain columns only, none of the encrypted content."""

    id: int
    texter_id: int
    priority: int
    queued_at: datetime
    team: str | None
    program_id: int | None


@dataclass(frozen=True)
class Ahead:
    """Which waiting conversations of one priority Tx.count_waiting counts: all of them
    (`every`), or those queued at or before `through` (None: none by time alone) and,
    with `ties`, those queued at the very instant of the conversation counted against
    that list_waiting's tie order (COALESCE(updated_at, created_at) DESC, id DESC) puts
    first."""

    priority: int
    every: bool = False
    through: datetime | None = None
    ties: bool = False


@dataclass
class InboundState:
    """Everything the engine needs about one inbound message's texter, read in one
    statement under the texter's lock (Tx.load_inbound): the answer already given to this
    MessageSid (a duplicate webhook), the texter, whether they are blocked, their reply
    window, and their open conversation (locked FOR UPDATE on PostgreSQL)."""

    saved_reply: str | None
    texter: Texter | None
    blocked: bool
    reply_window: tuple[datetime, int] | None  # when it opened, replies given in it
    conversation: Conversation | None


@dataclass
class Message:
    conversation_id: int
    direction: Direction
    body: str
    author: str = "texter"  # "texter" | "haven" | "advocate:<user id>" | "system"
    id: int | None = None
    created_at: datetime | None = None
    # Inbound: Twilio MessageSid. Outbound: Twilio SID once sent (for a TwiML reply: once
    # its callback brings it).
    provider_sid: str | None = None
    # in: "received". out: "replied" (inside TwiML), or one of Twilio's delivery statuses
    # (bot.sms.statuses.DELIVERY_RANK: "queued" ... "delivered", "undelivered", "failed").
    status: str = "received"
    error_code: str | None = None
    media_types: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # triage labels of this one message
    # A reply inside TwiML: Haven's opaque reference, which its <Message action> callback
    # carries back with the SID Twilio gave it (bot.sms.handlers), so it can be redacted.
    reply_ref: str | None = None


@dataclass
class OutboxItem:
    id: int
    message_id: int
    conversation_id: int
    to: str  # E.164, decrypted
    body: str
    attempts: int = 0
    next_attempt_at: datetime | None = None
    status: str = "pending"  # pending | sending | sent | failed


@dataclass
class User:
    id: int
    name: str
    role: str  # advocate | supervisor | admin
    password_hash: str
    teams: list[str] = field(default_factory=list)
    presence: str = "offline"  # available | away | offline
    capacity: int = 3
    active: bool = True
    created_at: datetime | None = None
    session_epoch: int = 0  # bumped at sign-out: older session cookies stop working


@dataclass
class Note:
    id: int
    conversation_id: int
    user_id: int
    body: str
    created_at: datetime | None = None


@dataclass
class AuditEntry:
    id: int
    user_id: int | None
    action: str  # "view", "claim", "reply", "transfer", "close", "note", "login", ...
    conversation_id: int | None
    detail: str = ""  # never message text or a phone number
    created_at: datetime | None = None


@dataclass
class Alarm:
    """A staff alarm about one conversation, recorded so it fires once across processes."""

    conversation_id: int
    kind: str  # e.g. "unclaimed_p1", "danger_while_held" (the caller's names)
    raised_at: datetime
    cleared_at: datetime | None = None  # None while it is active


@dataclass
class ResourceSite:
    """One service at one place in the local resource directory (Open Referral HSDS,
    flattened by bot.resources.hsds). Public directory data: stored in the clear."""

    id: str  # the HSDS service_at_location id
    service_id: str
    name: str
    organization: str = ""
    phone: str = ""
    address: str = ""
    postal_code: str = ""
    latitude: float | None = None  # None: not placed, never found by distance
    longitude: float | None = None
    needs: list[str] = field(default_factory=list)  # bot.resources.needs.NEEDS words
    timezone: str = "UTC"  # IANA zone for schedule times given without an offset
    schedule: str = "[]"  # opening rules as JSON (bot.resources.schedule)


@dataclass
class Referral:
    """A directory entry an advocate (or Haven, user_id None) gave on a conversation."""

    id: int
    conversation_id: int
    service_id: str
    name: str  # the service's name when it was given (a re-import may drop the service)
    user_id: int | None
    created_at: datetime


@dataclass
class ScreenRecord:
    """One screening tool an advocate recorded (bot.screens): its answers, whether it
    screened the texter in and why. Texter content: encrypted at rest."""

    id: int
    conversation_id: int
    kind: str  # bot.screens kinds: "lethality", "trafficking", "trafficking_youth"
    user_id: int | None
    data: dict[str, Any]  # answers by item id, screened_in, basis
    created_at: datetime


@dataclass
class SafetyPlanRecord:
    """A conversation's safety plan (bot.safety_plan): the advocate's text per section.
    Texter content: encrypted at rest."""

    conversation_id: int
    user_id: int | None
    sections: dict[str, str]
    updated_at: datetime
    sent_at: datetime | None = None


@dataclass
class Program:
    """One of the programs sharing this Haven, reached at its own number (bot.programs).
    `hours` and `lines` None: as the environment says (HAVEN_HOURS, HAVEN_NATIONAL_LINES)."""

    id: int
    slug: str
    name: str
    number: str  # E.164: the number texters text; inbound routes by it
    hours: str | None = None
    lines: tuple[str, ...] | None = None
    name_services: bool = False
    created_at: datetime | None = None


@dataclass
class LoginKey:
    """One login-throttle key's state (bot.dashboard.accounts.LoginThrottle): its counted
    attempts within the window, oldest first, and its lock-out."""

    times: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None
    locks: int = 0  # lock-outs so far: each one doubles the next


class NotFound(LookupError):
    """The record asked for does not exist."""


class Conflict(RuntimeError):
    """The change lost a race (e.g. the conversation was claimed by someone else)."""

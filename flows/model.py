"""What a flow sees and what it gives back. Flows never import aiohttp, Twilio or the store:
the engine copies a stored conversation into a FlowConversation, the flow steps it, and the
engine persists the result and renders the `replies` through flows/copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Effect = Literal[
    "enqueue",  # the texter joins the advocate queue now (engine sets queued_at, team)
    "purge",  # quick exit: erase this conversation's stored content
    "delete_all",  # confirmed DELETE: erase everything about this number
]


@dataclass(frozen=True)
class Say:
    """One texter-facing message by copy id, e.g. Say("welcome"). The engine adds the
    standard params (org, terms, position, wait, hours, lines) when rendering."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """One inbound message as the flow sees it."""

    text: str  # the body, as sent ("" for a media-only message)
    now: datetime
    labels: frozenset[str] = frozenset()  # triage labels of this message
    priority: int = 4  # triage priority of this message
    raised: bool = False  # this message raised the conversation's priority
    media_count: int = 0
    is_open: bool = True  # the helpline is within its hours right now
    third_party: bool = False  # the danger they write of is someone else's (triage)


@dataclass
class FlowConversation:
    """What `transitions` drives, through a per-message Step on the flow's one machine
    (never a new Machine, never a model registered per message)."""

    state: str = "new"
    language: str = "en"
    safe_to_text: bool | None = None
    opted_out: bool = False
    held: bool = False  # an advocate holds the conversation
    priority: int = 4
    labels: set[str] = field(default_factory=set)
    signals: list[str] = field(default_factory=list)
    need: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the flow's scratch, persisted
    # Outputs of this step:
    replies: list[Say] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    def say(self, message_id: str, **params: Any) -> None:
        self.replies.append(Say(message_id, params))

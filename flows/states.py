"""Conversation states: the one place their names and groupings are defined.

Everything else (the intake table, the engine, the queue, the store, the dashboard) imports
these; nothing outside flows/ assigns a conversation's state (the flow steps it).
"""

from __future__ import annotations

NEW = "new"
SAFETY_CHECK = "safety_check"
PAUSED = "paused"
NEED = "need"
SCREENING = "screening"
LOCATION = "location"
QUEUED = "queued"
WITH_ADVOCATE = "with_advocate"
CLOSED = "closed"
EXPIRED = "expired"
EXITED = "exited"
AFTER_HOURS = "after_hours"
OPTED_OUT = "opted_out"
CONFIRM_DELETE = "confirm_delete"

STATES: tuple[str, ...] = (
    NEW,
    SAFETY_CHECK,
    PAUSED,
    NEED,
    SCREENING,
    LOCATION,
    QUEUED,
    WITH_ADVOCATE,
    CLOSED,
    EXPIRED,
    EXITED,
    AFTER_HOURS,
    OPTED_OUT,
    CONFIRM_DELETE,
)
INITIAL = NEW

# Haven is asking its questions: the timers run (nudge, then a quiet expiry).
INTAKE_STATES = frozenset({NEW, SAFETY_CHECK, PAUSED, NEED, SCREENING, LOCATION})
# Not yet with a person: the intake, or waiting for the helpline to open.
BEFORE_QUEUE = INTAKE_STATES | {AFTER_HOURS}
# Danger before an advocate has them: the flow escalates from these (danger outranks STOP
# and a pending DELETE question).
ESCALATE_STATES = BEFORE_QUEUE | {OPTED_OUT, CONFIRM_DELETE}
# A nudge only makes sense while we wait on an answer to a question we asked.
NUDGE_STATES = frozenset({SAFETY_CHECK, NEED, SCREENING, LOCATION})
# after_hours is not expired: its messages are kept for the next shift.
EXPIRE_STATES = INTAKE_STATES
# Timers are stored while in these (an unanswered DELETE lapses on the nudge timer).
TIMED_STATES = INTAKE_STATES | {CONFIRM_DELETE}
# Held by an advocate, or held while the texter answers DELETE's question mid-chat.
HELD_STATES = frozenset({WITH_ADVOCATE, CONFIRM_DELETE})
# Finished: a new inbound message opens a new conversation.
ENDED_STATES = frozenset({CLOSED, EXPIRED, EXITED})
# Open and someone's to answer: waiting in the queue or held.
OPEN_FOR_STAFF = frozenset({QUEUED}) | HELD_STATES

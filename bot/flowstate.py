"""The stored conversation and the flow's model, copied across in one place each way, and
the one entry through which a staff action steps the flow (the intake table's rows for
claim, release, close, reassign and open). Used by bot.engine (inbound messages, timers)
and bot.handoff (staff actions), always under the texter's lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.store.base import Conflict, Conversation, Texter, Tx
from flows.intake import INTAKE
from flows.model import FlowConversation
from flows.states import ENDED_STATES, HELD_STATES, QUEUED, TIMED_STATES
from flows.table import FlowError

TEAM_BY_LABEL = (("trafficking", "trafficking"), ("abuse", "partner_violence"))


def is_held(conv: Conversation) -> bool:
    """An advocate is texting with them (or they are answering DELETE's question mid-chat):
    Haven stays quiet, and rule 1 alarms people instead."""
    return conv.advocate_id is not None and conv.state in HELD_STATES


def route_team(conv: Conversation) -> str:
    """Spanish speakers go to the Spanish team; otherwise the labels choose."""
    if conv.language == "es":
        return "spanish"
    for label, team in TEAM_BY_LABEL:
        if label in conv.labels:
            return team
    return "general"


def to_flow(
    conv: Conversation, texter: Texter, exit_keywords: Sequence[str] = ()
) -> FlowConversation:
    """The stored conversation as the flow sees it (a copy: the flow never touches the
    stored records)."""
    data = dict(conv.flow)
    data["exit_keywords"] = list(exit_keywords)
    return FlowConversation(
        state=conv.state,
        language=conv.language,
        safe_to_text=texter.safe_to_text,
        opted_out=texter.opted_out,
        held=is_held(conv),
        priority=conv.priority,
        labels=set(conv.labels),
        signals=list(conv.signals),
        need=conv.need,
        answers=dict(conv.answers),
        location=conv.location,
        data=data,
    )


def from_flow(conv: Conversation, texter: Texter, model: FlowConversation, now: datetime) -> None:
    """Copy what the flow decided back onto the stored records. The only place outside
    flows/ where a conversation's state changes: it takes the flow's."""
    model.data.pop("exit_keywords", None)
    before = conv.state
    conv.state = model.state
    conv.language = model.language
    conv.priority = min(conv.priority, model.priority)
    conv.labels = sorted(model.labels | set(conv.labels))
    conv.signals = list(dict.fromkeys([*conv.signals, *model.signals]))
    conv.need, conv.answers, conv.location, conv.flow = (
        model.need,
        model.answers,
        model.location,
        model.data,
    )
    conv.updated_at = now
    if not model.held:  # the flow let go (STOP, EXIT, release): nobody holds it any more
        conv.advocate_id = conv.transfer_to = None
    texter.language = model.language
    texter.safe_to_text = model.safe_to_text
    texter.opted_out = model.opted_out
    rejoined = before not in (QUEUED, *HELD_STATES)
    if "enqueue" in model.effects and (conv.queued_at is None or rejoined):
        # A texter back after STOP/START or a pause waits from now, not from before.
        conv.queued_at = now
        conv.team = route_team(conv)
    if conv.state not in TIMED_STATES:
        conv.nudge_at = conv.expire_at = None
    if conv.state in ENDED_STATES and conv.closed_at is None:
        conv.closed_at = now


async def staff_step(
    tx: Tx, conv: Conversation, kind: str, now: datetime, *, refused: str = ""
) -> FlowConversation:
    """The one entry for a staff action that changes a conversation's state (claim,
    release, close, reassign, open): the intake table's row for `kind` steps it. The caller
    holds the texter's lock (Store.locked_conversation) and saves. Conflict when the
    conversation's state has no row for it; nothing changes then."""
    texter = await tx.get_texter(conv.texter_id)
    model = to_flow(conv, texter)
    try:
        await INTAKE.advocate(model, kind)
    except FlowError:
        raise Conflict(refused or f"that conversation cannot be {kind}ed now") from None
    from_flow(conv, texter, model, now)
    return model

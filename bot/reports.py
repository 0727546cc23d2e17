"""Shift figures for supervisors: who waits and who holds whom now, and the shift's queue
length and waits over time. Plain functions over the store (no web framework here), so the
dashboard, a command or a test reads the same numbers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot import queue, vocabulary
from bot.settings import Settings
from bot.store.base import ENDED_STATES, Conversation, Store, User

SHIFT_HOURS = 12
BUCKET_MINUTES = 5
STATS_LIMIT = 2000  # conversations read for the charts: far more than one shift's
BOARD_LIMIT = 300  # conversations read for the supervisor's list
# Roles that hold texters, and the presences of someone on shift (a reassign goes only there).
HOLDING_ROLES = ("advocate", "supervisor")
ON_SHIFT = ("available", "away")


@dataclass
class BoardRow:
    conv: Conversation
    alias: str
    masked: str
    holder: str  # the holder's name, "" when nobody holds it
    offered: str  # the name of whoever is offered a transfer, "" when nobody is
    priority: int  # effective (aging counted) while queued, else the conversation's own
    basis: str  # bot.queue.priority_basis: "words" | "screening" | "aging" | "none"
    since: datetime  # start of the wait (queued) or of the hold (with an advocate)


@dataclass
class StaffRow:
    user: User
    held: int


@dataclass
class Board:
    rows: list[BoardRow] = field(default_factory=list)
    staff: list[StaffRow] = field(default_factory=list)
    assignable: list[User] = field(default_factory=list)  # on shift and able to hold

    @property
    def waiting(self) -> int:
        return sum(1 for r in self.rows if r.conv.state == queue.QUEUED)


def on_shift(user: User) -> bool:
    """Someone a supervisor may hand a texter to: active, a role that holds texters, and
    signed in (available or away; offline would leave the texter with nobody)."""
    return user.active and user.role in HOLDING_ROLES and user.presence in ON_SHIFT


def risk_order(row: BoardRow) -> tuple[bool, int, datetime]:
    """Open conversations first, then the highest risk (effective priority), then the
    longest wait."""
    return (row.conv.state in ENDED_STATES, row.priority, row.since)


async def board(store: Store, now: datetime, settings: Settings) -> Board:
    """Every conversation of this shift (open ones, and those ended in the last
    SHIFT_HOURS) sorted by risk then wait, each advocate's load, and who can take more."""
    async with store.transaction() as tx:
        convs = await tx.list_conversations(limit=BOARD_LIMIT)
        users = await tx.list_users()
        names = {u.id: u.name for u in users}
        load = Counter(c.advocate_id for c in convs if c.state in queue.HELD_STATES)
        rows: list[BoardRow] = []
        for conv in convs:
            if (
                conv.state in ENDED_STATES
                and conv.closed_at
                and now - conv.closed_at > timedelta(hours=SHIFT_HOURS)
            ):
                continue
            texter = await tx.get_texter(conv.texter_id)
            since = conv.claimed_at if conv.state == queue.HELD else conv.queued_at
            queued = conv.state == queue.QUEUED
            rows.append(
                BoardRow(
                    conv=conv,
                    alias=texter.alias,
                    masked=vocabulary.mask_number(texter.phone),
                    holder=names.get(conv.advocate_id or -1, ""),
                    offered=names.get(conv.transfer_to or -1, ""),
                    priority=queue.effective_priority(conv, now, settings)
                    if queued
                    else conv.priority,
                    basis=queue.priority_basis(conv, now, settings),
                    since=since or conv.updated_at or now,
                )
            )
    staff = [StaffRow(u, load.get(u.id, 0)) for u in users if u.active and u.role in HOLDING_ROLES]
    return Board(
        rows=sorted(rows, key=risk_order),
        staff=staff,
        assignable=[s.user for s in staff if on_shift(s.user)],
    )


def shift_series(
    convs: list[Conversation],
    now: datetime,
    hours: int = SHIFT_HOURS,
    step_min: int = BUCKET_MINUTES,
) -> dict[str, Any]:
    """Texters waiting in each bucket and mean wait by priority over the shift, rebuilt
    from the stored queued_at / claimed_at times, so every web process draws the same
    picture."""
    step = timedelta(minutes=step_min)
    start = now - timedelta(hours=hours)
    start = start - timedelta(seconds=start.timestamp() % step.total_seconds())
    times: list[datetime] = []
    t = start
    while t <= now:
        times.append(t)
        t += step
    times.append(now)
    length = {p: [0] * len(times) for p in (1, 2, 3, 4)}
    wait_sum = {p: [0.0] * len(times) for p in (1, 2, 3, 4)}
    wait_n = {p: [0] * len(times) for p in (1, 2, 3, 4)}
    for conv in convs:
        if conv.queued_at is None:
            continue
        p = min(4, max(1, conv.priority))
        left = conv.claimed_at if conv.claimed_at and conv.claimed_at >= conv.queued_at else None
        if left is None and conv.state != "queued":
            left = conv.closed_at or conv.updated_at
        end = left or now
        for i, moment in enumerate(times):
            # Waiting at any time in this bucket: a two-minute wait between samples still
            # shows (an instant sample would miss it).
            if conv.queued_at < moment + step and (end > moment or end == now):
                length[p][i] += 1
        if left is not None and conv.claimed_at is not None and left >= start:
            i = min(len(times) - 1, int((left - start) / step))
            wait_sum[p][i] += (left - conv.queued_at).total_seconds() / 60
            wait_n[p][i] += 1
    waits: dict[int, list[float | None]] = {
        p: [
            round(wait_sum[p][i] / wait_n[p][i], 2) if wait_n[p][i] else None
            for i in range(len(times))
        ]
        for p in (1, 2, 3, 4)
    }
    return {
        "t": [int(x.timestamp()) for x in times],
        "queue": {str(p): length[p] for p in (1, 2, 3, 4)},
        "wait_minutes": {str(p): waits[p] for p in (1, 2, 3, 4)},
    }


async def shift_stats(store: Store, now: datetime) -> dict[str, Any]:
    """shift_series over the stored conversations (the supervisor's charts)."""
    async with store.transaction() as tx:
        convs = await tx.list_conversations(limit=STATS_LIMIT)
    return shift_series(convs, now)

"""Shift figures for supervisors: who waits and who holds whom now, and the shift's queue
length and waits over time. Plain functions over the store (no web framework here), so the
dashboard, a command or a test reads the same numbers."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot import programs, queue, vocabulary
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


async def board(
    store: Store, now: datetime, settings: Settings, where: programs.Scope | None = None
) -> Board:
    """Every conversation of this shift (open ones, and those ended in the last
    SHIFT_HOURS) sorted by risk then wait, each advocate's load, and who can take more.
    `where`: only these programs' conversations and staff (None: all)."""
    async with store.transaction() as tx:
        convs = await tx.list_conversations(limit=BOARD_LIMIT)
        users = await tx.list_users()
        if where is not None and not where.every:
            convs = where.keep(convs)
            users = [u for u in users if (await programs.scope_of(tx, u)).overlaps(where)]
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


async def shift_stats(
    store: Store, now: datetime, where: programs.Scope | None = None
) -> dict[str, Any]:
    """shift_series over the stored conversations (the supervisor's charts); with
    `where`, only those programs' conversations."""
    async with store.transaction() as tx:
        convs = await tx.list_conversations(limit=STATS_LIMIT)
    return shift_series(convs if where is None else where.keep(convs), now)


# -- per-program figures for funders' reports (`python -m bot stats --program / --csv`) ----
PRIORITIES = (1, 2, 3, 4)
PARTNER_OUTCOMES = ("accepted", "declined", "lapsed")


def figure_columns() -> list[str]:
    """The CSV's columns, in order: counts only, never content or numbers."""
    from bot.handoff import DISPOSITIONS  # handoff reaches the engine: import at use

    return [
        "program",
        "conversations",
        "queued",
        "with_advocate",
        "ended",
        *(f"priority_{p}" for p in PRIORITIES),
        *(f"wait_p{p}_claimed" for p in PRIORITIES),
        *(f"wait_p{p}_median_min" for p in PRIORITIES),
        *(f"disposition_{d}" for d in DISPOSITIONS),
        "referrals_directory",
        *(f"partner_out_{o}" for o in PARTNER_OUTCOMES),
        "partner_in",
    ]


def program_figures(
    program_id: int | None, slug: str, convs: list[Conversation], directory_referrals: int
) -> dict[str, Any]:
    """One program's figures from every stored conversation (`convs`: all programs', since
    a texter referred away now belongs to the partner but counts as the sender's referral).
    Waits are from joining the queue to an advocate taking them, by the conversation's own
    priority."""
    own = [c for c in convs if c.program_id == program_id]
    row: dict[str, Any] = dict.fromkeys(figure_columns(), 0)
    row["program"] = slug
    row["conversations"] = len(own)
    row["queued"] = sum(1 for c in own if c.state == queue.QUEUED)
    row["with_advocate"] = sum(1 for c in own if c.state in queue.HELD_STATES)
    row["ended"] = sum(1 for c in own if c.state in ENDED_STATES)
    for p in PRIORITIES:
        row[f"priority_{p}"] = sum(1 for c in own if c.priority == p)
        waits = sorted(
            (c.claimed_at - c.queued_at).total_seconds() / 60
            for c in own
            if c.priority == p and c.queued_at and c.claimed_at and c.claimed_at >= c.queued_at
        )
        row[f"wait_p{p}_claimed"] = len(waits)
        row[f"wait_p{p}_median_min"] = round(statistics.median(waits), 1) if waits else ""
    for c in own:
        key = f"disposition_{c.disposition}"
        if key in row:
            row[key] += 1
    row["referrals_directory"] = directory_referrals
    for c in convs:
        for record in c.flow.get(programs.REFERRALS, []):
            if record.get("from") == program_id and record.get("outcome") in PARTNER_OUTCOMES:
                row[f"partner_out_{record['outcome']}"] += 1
            if record.get("to") == program_id and record.get("outcome") == "accepted":
                row["partner_in"] += 1
    return row


async def figures(
    store: Store, settings: Settings, slug: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Every program's figures (the default program first), or one program's by slug
    ("default" for the default program). ValueError for an unknown slug. `since`: only
    conversations started at or after it (a reporting period's start)."""
    async with store.transaction() as tx:
        known = await programs.book(tx, settings)
        wanted = [(None, "default"), *((p.id, p.slug) for p in known.programs)]
        if slug is not None:
            wanted = [w for w in wanted if w[1] == slug]
            if not wanted:
                raise ValueError(f"no such program: {slug}")
        convs = await tx.list_conversations(limit=queue.QUEUE_LIMIT)
        if since is not None:
            convs = [c for c in convs if c.created_at is not None and c.created_at >= since]
        return [
            program_figures(pid, name, convs, await tx.program_referral_count(pid, since))
            for pid, name in wanted
        ]

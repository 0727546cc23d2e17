"""Abuse of the SMS line: the per-number reply limit and the block list.

Policy only; the engine asks (bot.engine.Engine._handle) and the store keeps the counts and
the list. Neither ever silences danger (rule 1): a message showing danger is answered past
the limit and from a blocked number. Everything a limited or blocked number sends is still
stored and triaged, for the record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.settings import Settings
from bot.store.base import Texter, Tx

Window = tuple[datetime, int]  # when the window opened, replies given in it


def next_window(
    window: Window | None, now: datetime, limit: int, length: timedelta, danger: bool
) -> tuple[bool, Window]:
    """Whether one more reply may go, and the window after it. A window opens at the first
    reply after the last one ran out and allows `limit` replies; danger always goes (and
    counts, so a flood of danger words still uses the window up for everything else)."""
    if window is None or now - window[0] >= length:
        window = (now, 0)
    started, replies = window
    if replies >= limit and not danger:
        return False, window
    return True, (started, replies + 1)


async def reply_allowed(
    tx: Tx,
    texter: Texter,
    now: datetime,
    settings: Settings,
    danger: bool,
    window: Window | None,
) -> bool:
    """May Haven reply to this texter's message now? Counts the reply when it may.
    `window`: the texter's reply window as read under the texter's lock in this same
    transaction (Tx.load_inbound reads it with the texter), so the count cannot race."""
    allowed, window = next_window(
        window,
        now,
        settings.reply_limit,
        timedelta(seconds=settings.reply_window),
        danger,
    )
    if allowed:
        await tx.set_reply_window(texter.id, *window)
    return allowed


async def is_blocked(tx: Tx, texter: Texter) -> bool:
    return await tx.texter_blocked(texter.id)

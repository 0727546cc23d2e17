"""Live events never vanish unseen: a subscriber or a socket that falls behind is told to
resync instead (issue 11, floor 3)."""

from __future__ import annotations

import asyncio
import json

from bot.dashboard.ws import SCREEN_BACKLOG, Screen
from bot.events import RESYNC, Event, Events
from bot.store.records import User


async def test_an_overflowing_subscriber_gets_resync_not_a_silent_gap() -> None:
    """Events: past maxsize, the backlog is replaced by one Event('resync') followed by the
    newer events; the old code dropped the oldest events with no trace."""
    events = Events(maxsize=3)
    async with events.subscribe() as queue:
        for n in range(5):
            events.publish_local(Event("message", {"conversation_id": n}))
        got = [queue.get_nowait() for _ in range(queue.qsize())]
    assert got[0].kind == RESYNC
    assert [e.data["conversation_id"] for e in got[1:]] == [3, 4]
    assert any(e.kind == RESYNC for e in got)


async def test_a_slow_screen_is_told_to_resync() -> None:
    """A socket's outbox past SCREEN_BACKLOG texts holds one resync message then the newer
    texts: the page re-reads what it shows instead of missing events."""
    screen = Screen(User(id=1, name="a", role="advocate", password_hash="x"))
    for n in range(SCREEN_BACKLOG + 2):
        screen.put(json.dumps({"kind": "message", "n": n}))
    sent = [json.loads(screen.outbox.get_nowait()) for _ in range(screen.outbox.qsize())]
    assert sent[0] == {"kind": RESYNC}
    assert [m["n"] for m in sent[1:]] == [SCREEN_BACKLOG, SCREEN_BACKLOG + 1]
    assert screen.resyncs == 1
    await asyncio.sleep(0)

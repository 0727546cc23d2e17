"""Dashboard events: publish/subscribe, in process, bridged across processes by the store
(PostgreSQL LISTEN/NOTIFY). Events carry ids and counts, never message text or numbers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

CHANNEL = "haven_events"


@dataclass(frozen=True)
class Event:
    kind: str  # "message", "queue", "alarm", "status", "conversation", "presence"
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **self.data}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Event:
        data = json.loads(raw)
        return cls(str(data.pop("kind")), data)


RESYNC = "resync"  # the kind a subscriber finds when it fell behind and lost events
_Item = TypeVar("_Item")


def put_or_resync(queue: asyncio.Queue[_Item], item: _Item, resync: _Item) -> bool:
    """Queue `item`; on a full queue first replace its backlog with `resync`, so a reader
    that fell behind re-reads instead of missing events unseen. True when it did."""
    behind = queue.full()
    if behind:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(resync)
    queue.put_nowait(item)
    return behind


class Events:
    """Fan-out to every subscriber (the dashboard's one dispatcher, and tests). A subscriber
    that falls `maxsize` events behind never holds up the sender, and never loses events
    silently: its backlog is replaced by one Event(RESYNC), telling it to re-read what it
    shows."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._maxsize = maxsize
        self.origin = uuid.uuid4().hex[:12]  # this process, so it can skip its own echoes
        self._remote: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def bridge(self, send: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        """Also send every published event to other processes (PostgreSQL NOTIFY)."""
        self._remote = send

    def publish(self, event: Event) -> None:
        """Deliver here at once and, when bridged, to every other process."""
        self.publish_local(event)
        if self._remote is not None:
            payload = json.dumps({"origin": self.origin, "event": event.to_json()})
            task = asyncio.get_running_loop().create_task(self._remote(payload))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def receive_remote(self, payload: str) -> None:
        """An event from another process (skipping our own echo)."""
        data = json.loads(payload)
        if data.get("origin") != self.origin:
            self.publish_local(Event.from_json(data["event"]))

    def publish_local(self, event: Event) -> None:
        for queue in self._subscribers:
            put_or_resync(queue, event, Event(RESYNC))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._maxsize)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

"""The advocates' queue view: bot.queue.snapshot with many texters waiting, beside the one
query it starts from (list the queued conversations) in its own transaction."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from benchmarks.report import Figure, summarise
from bot.crypto import Crypto
from bot.settings import Settings
from bot.store import Message, Store, open_store

LABELS_BY_PRIORITY = {1: ["emergency"], 2: ["trafficking"], 3: ["abuse"], 4: []}


async def fill(store: Store, count: int, settings: Settings) -> None:
    """`count` queued conversations, mixed priorities and waits, each with a few messages
    (the snapshot reads the first inbound one), written as the engine would leave them."""
    from bot.engine import utcnow

    crypto = Crypto(settings.secret_key)
    now = utcnow()
    async with store.transaction() as tx:
        for i in range(count):
            phone = f"+1555300{i:04d}"
            texter = await tx.create_texter(crypto.lookup_hash(phone), phone, "en", now)
            conv = await tx.create_conversation(texter.id, "en", now)
            priority = 1 + i % 4
            conv.state = "queued"
            conv.priority = priority
            conv.labels = list(LABELS_BY_PRIORITY[priority])
            conv.queued_at = now - timedelta(seconds=37 * i)
            await tx.save_conversation(conv)
            for message in (
                Message(conv.id, "in", "hi"),
                Message(conv.id, "out", "welcome", author="haven", status="replied"),
                Message(conv.id, "in", "yes"),
            ):
                await tx.add_message(message)


async def _time(op: Callable[[], Awaitable[object]], repeats: int, limit_s: float) -> list[int]:
    durations: list[int] = []
    deadline = time.monotonic() + limit_s
    for _ in range(repeats):
        if durations and time.monotonic() > deadline:
            break
        started = time.perf_counter_ns()
        await op()
        durations.append(time.perf_counter_ns() - started)
    return durations


async def measure(
    settings: Settings, backend: str, queued: int = 200, repeats: int = 20, limit_s: float = 10.0
) -> Figure:
    if queued < 1 or repeats < 1:
        raise ValueError("queued and repeats must be at least 1")
    from bot.engine import utcnow
    from bot.queue import snapshot

    store = open_store(settings, Crypto(settings.secret_key))
    await store.open()
    try:
        await store.migrate()
        await fill(store, queued, settings)
        now = utcnow()

        async def snap() -> object:
            entries = await snapshot(store, now, settings)
            if len(entries) != queued:
                raise AssertionError(f"snapshot saw {len(entries)} of {queued} queued")
            return entries

        async def listing() -> object:
            async with store.transaction() as tx:
                return await tx.list_conversations(states=["queued"])

        await snap()  # warm up: statement caches, first pages
        await listing()
        subject = await _time(snap, repeats, limit_s)
        baseline = await _time(listing, repeats, limit_s)
    finally:
        await store.close()
    return Figure(
        name="queue",
        backend=backend,
        detail=f"snapshot of {queued} queued conversations, {len(subject)} times",
        subject=summarise("queue.snapshot()", subject),
        baseline=summarise("list_conversations(queued)", baseline),
    )

"""The outbox worker: every outbound text is sent once, retried when Twilio says "not now",
and otherwise shown as failed (rule 5).

How a text goes out:
1. The engine adds a Message (status 'queued') and an outbox item in the same transaction as
   whatever caused it, then calls `wake()`.
2. `run_once` claims due items in one transaction (`Tx.claim_outbox` marks them 'sending';
   on PostgreSQL with FOR UPDATE SKIP LOCKED, so two workers never take the same item) and
   marks their messages 'sending'.
3. Each item gets exactly one network attempt. Success: item 'sent', message 'sent' with the
   Twilio SID (status callbacks then find it by that SID). Permanent error: both 'failed' with
   Twilio's code. Transient error (Twilio did not take it): item back to 'pending' with a
   backoff time, message back to 'queued'; after `max_attempts` tries it is 'failed'.
   Uncertain outcome (the request timed out, or the connection was lost after sending): the
   message is 'uncertain' with the code ("timeout", "disconnected") and never resent.

At most once. Twilio's Messages API has no idempotency key, so when a request may have
reached Twilio but no answer came back, we cannot know whether the texter got it. Such a text
is marked 'uncertain', visibly, and not retried: an advocate sees it and can decide. A
doubled text on a phone someone else may read is worse than a visible doubt. The same goes
for an item a dead process left 'sending': once older than `sending_timeout` it is marked
'uncertain' with code "interrupted".

Order and concurrency: the claim never hands out a text while an earlier one of its
conversation is being sent or waits for a retry, and texts to one conversation in one batch go
out one after another, so a texter does not get the second text first. Different
conversations' texts go out concurrently (up to settings.outbox_concurrency in flight), so one
slow Twilio request holds up only its own conversation.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from bot import metrics
from bot.events import Event, Events
from bot.settings import Settings
from bot.sms.sender import Sender, SendError, classify
from bot.sms.statuses import UNCERTAIN
from bot.sms.webhook import status_callback_url
from bot.store.base import NotFound, OutboxItem, Store, Tx

log = structlog.get_logger(__name__)

Outcome = Literal["sent", "failed", "retry", "uncertain"]
# One conversation's claimed texts, in order, and the number they go from (None: the
# configured sender).
Claimed = tuple[list[OutboxItem], str | None]


def backoff_delay(
    attempt: int, base: float = 2.0, cap: float = 300.0, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped,
    with "equal jitter" (half fixed, half random) so retries from many items spread out but
    never come back sooner than half the nominal delay."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    nominal = min(cap, base * 2 ** (attempt - 1))
    half = nominal / 2
    return half + (rng or random).uniform(0, half)


def _log_failure(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("redaction_pass_failed", error=type(task.exception()).__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxWorker:
    """Sends what the outbox holds. One per process; any number of processes may run one."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        settings: Settings,
        events: Events | None = None,
        *,
        batch: int = 20,
        max_attempts: int = 10,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        sending_timeout: float | None = None,
        concurrency: int | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if batch < 1 or max_attempts < 1:
            raise ValueError("batch and max_attempts must be at least 1")
        self.concurrency = settings.outbox_concurrency if concurrency is None else concurrency
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.store = store
        self.sender = sender
        self.settings = settings
        self.events = events
        self.batch = batch
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        # A live send ends within the per-request timeout; a 'sending' item older than this
        # (with a margin for recording the answer) was left by a process that died.
        self.sending_timeout = (
            settings.twilio_timeout + 30.0 if sending_timeout is None else sending_timeout
        )
        self.status_callback = status_callback_url(settings.public_url)
        self._rng = rng or random.Random()
        self._clock = clock
        self._wake = asyncio.Event()
        self._program_numbers: dict[int, str] = {}

    def wake(self) -> None:
        """Something was queued: send now rather than at the next tick. Safe to call from
        any coroutine in the worker's event loop."""
        self._wake.set()

    # -- one pass -----------------------------------------------------------------------
    async def run_once(self, now: datetime | None = None) -> int:
        """Fail stale 'sending' items, then claim and attempt every due item once, waiting
        for the outcomes. Returns how many items were attempted."""
        now = now or self._clock()
        groups = await self._claim(now, self.batch)
        results = await asyncio.gather(
            *(self._send_in_order(claimed, now) for claimed in groups), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                self._record_failed(result)
        await self.redact_due(now)
        return sum(len(group) for group, _ in groups)

    async def redact_due(self, now: datetime) -> int:
        """Ask Twilio to blank the bodies it keeps for erased conversations' messages (quick
        exit, DELETE, retention); failures are retried with backoff, up to max_attempts.
        Redacting twice is harmless, so an unknown outcome is simply retried."""
        async with self.store.transaction() as tx:
            due = await tx.claim_redactions(now, limit=self.batch)
        for sid, attempts in due:
            try:
                await self.sender.redact(sid)
            except Exception as exc:
                error = exc if isinstance(exc, SendError) else classify(exc)
                retry_at = None
                if attempts < self.max_attempts:
                    delay = backoff_delay(attempts, self.base_delay, self.max_delay, self._rng)
                    retry_at = now + timedelta(seconds=delay)
                async with self.store.transaction() as tx:
                    await tx.finish_redaction(sid, False, now, retry_at)
                metrics.OUTBOUND_RESULTS.labels(
                    "redaction_retry" if retry_at else "redaction_failed"
                ).inc()
                log.warning(
                    "redaction_failed", code=error.code, attempt=attempts, retry=bool(retry_at)
                )
                continue
            async with self.store.transaction() as tx:
                await tx.finish_redaction(sid, True, now)
            metrics.OUTBOUND_RESULTS.labels("redacted").inc()
        return len(due)

    async def _claim(self, now: datetime, limit: int) -> list[Claimed]:
        """Fail stale 'sending' items; claim up to `limit` due ones, marked 'sending'.
        Returns them grouped by conversation, each group in the order written, with the
        number it goes from."""
        async with self.store.transaction() as tx:
            stale = await self._fail_interrupted(tx, now)
            items = await tx.claim_outbox(now, limit=limit)
            for item in items:
                await self._set_status(tx, item, "sending")
            senders = await self._from_numbers(tx, {item.conversation_id for item in items})
        for item in stale:
            metrics.OUTBOUND_RESULTS.labels("interrupted").inc()
            self._publish(item, UNCERTAIN)
        for item in items:
            self._publish(item, "sending")
        groups: dict[int, list[OutboxItem]] = {}
        for item in sorted(items, key=lambda i: i.id):
            groups.setdefault(item.conversation_id, []).append(item)
        return [(group, senders.get(cid)) for cid, group in groups.items()]

    @staticmethod
    def _record_failed(exc: BaseException) -> None:
        # Recording an outcome failed (database trouble); the item stays 'sending' and is
        # later shown as interrupted. Other conversations went ahead.
        log.error("outbox_record_failed", error=type(exc).__name__)

    async def _send_in_order(self, claimed: Claimed, now: datetime) -> None:
        group, from_number = claimed
        for index, item in enumerate(group):
            outcome, retry_at = await self._deliver(item, now, from_number)
            if outcome == "retry" and retry_at is not None:
                # Keep the conversation's order: later texts wait for this one.
                for later in group[index + 1 :]:
                    await self._finish(later, "pending", now, "queued", retry_at=retry_at)
                return

    async def _from_numbers(self, tx: Tx, conversation_ids: set[int]) -> dict[int, str]:
        """For conversations that belong to a program with its own number: that number
        (texts come back from where they went). The others use the configured sender."""
        owners = {cid: (await tx.get_conversation(cid)).program_id for cid in conversation_ids}
        if {p for p in owners.values() if p is not None} - set(self._program_numbers):
            for program in await tx.list_programs():  # numbers never change: kept
                self._program_numbers[program.id] = program.number
        return {
            cid: self._program_numbers[program_id]
            for cid, program_id in owners.items()
            if program_id is not None and program_id in self._program_numbers
        }

    async def _deliver(
        self, item: OutboxItem, now: datetime, from_number: str | None
    ) -> tuple[Outcome, datetime | None]:
        try:
            sid = await self.sender.send(item.to, item.body, self.status_callback, from_number)
        except Exception as exc:  # a sender should raise SendError; classify anything else
            error = exc if isinstance(exc, SendError) else classify(exc)
        else:
            await self._finish(item, "sent", now, "sent", provider_sid=sid)
            metrics.OUTBOUND_RESULTS.labels("sent").inc()
            log.info("outbox_sent", message_id=item.message_id, attempt=item.attempts)
            return "sent", None
        if error.uncertain:
            # It may have reached the texter: never resend; show the doubt instead.
            await self._finish(item, "failed", now, UNCERTAIN, error_code=error.code)
            metrics.OUTBOUND_RESULTS.labels(UNCERTAIN).inc()
            log.warning(
                "outbox_uncertain",
                message_id=item.message_id,
                code=error.code,
                attempt=item.attempts,
            )
            return "uncertain", None
        if error.permanent or item.attempts >= self.max_attempts:
            await self._finish(item, "failed", now, "failed", error_code=error.code)
            metrics.OUTBOUND_RESULTS.labels("failed").inc()
            log.warning(
                "outbox_failed",
                message_id=item.message_id,
                code=error.code,
                permanent=error.permanent,
                attempt=item.attempts,
            )
            return "failed", None
        delay = backoff_delay(max(item.attempts, 1), self.base_delay, self.max_delay, self._rng)
        retry_at = now + timedelta(seconds=delay)
        await self._finish(item, "pending", now, "queued", retry_at=retry_at)
        metrics.OUTBOUND_RESULTS.labels("retry").inc()
        log.warning(
            "outbox_retry",
            message_id=item.message_id,
            code=error.code,
            attempt=item.attempts,
            delay_seconds=round(delay, 1),
        )
        return "retry", retry_at

    async def _finish(
        self,
        item: OutboxItem,
        item_status: Literal["sent", "failed", "pending"],
        now: datetime,
        message_status: str,
        *,
        provider_sid: str | None = None,
        error_code: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        try:
            async with self.store.transaction() as tx:
                await tx.finish_outbox(item.id, item_status, now, retry_at=retry_at)
                await self._set_status(tx, item, message_status, provider_sid, error_code)
        except NotFound:
            # Erased meanwhile (quick exit, DELETE, retention): nothing left to record.
            log.info("outbox_item_gone", message_id=item.message_id)
            return
        self._publish(item, message_status)

    async def _fail_interrupted(
        self, tx: Tx, now: datetime, before: datetime | None = None
    ) -> list[OutboxItem]:
        """Items a dead worker left 'sending' (since before `before`) may or may not have
        reached Twilio: 'uncertain', visibly, never resent."""
        if before is None:
            before = now - timedelta(seconds=self.sending_timeout)
        stale = await tx.fail_stale_outbox(before, now)
        for item in stale:
            await self._set_status(tx, item, UNCERTAIN, error_code="interrupted")
            log.warning("outbox_interrupted", message_id=item.message_id)
        return stale

    async def recover(self, started: datetime) -> int:
        """At start-up: texts a killed process left 'sending' are 'uncertain' now, not after
        sending_timeout, so the conversation's later texts go at once. On a single-process
        store (SQLite) every such item is from before start-up; on a shared one, another
        live process's send is at most sending_timeout old, so only older ones are taken."""
        before = started
        if not self.store.single_process:
            before -= timedelta(seconds=self.sending_timeout)
        async with self.store.transaction() as tx:
            stale = await self._fail_interrupted(tx, started, before)
        for item in stale:
            metrics.OUTBOUND_RESULTS.labels("interrupted").inc()
            self._publish(item, UNCERTAIN)
        if stale:
            log.warning("outbox_recovered", interrupted=len(stale))
        return len(stale)

    @staticmethod
    async def _set_status(
        tx: Tx,
        item: OutboxItem,
        status: str,
        provider_sid: str | None = None,
        error_code: str | None = None,
    ) -> None:
        await tx.set_message_status(
            item.message_id, status, provider_sid=provider_sid, error_code=error_code
        )

    def _publish(self, item: OutboxItem, status: str) -> None:
        if self.events is not None:
            self.events.publish(
                Event(
                    "status",
                    {
                        "conversation_id": item.conversation_id,
                        "message_id": item.message_id,
                        "status": status,
                    },
                )
            )

    # -- the loop -----------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set: claim due texts every settings.tick_seconds, at once on
        wake(), and whenever a send finishes. Each conversation's claimed texts go out in a
        task of their own, so one slow Twilio request holds up only its own conversation;
        at most settings.outbox_concurrency conversations are in flight at once."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            await self.recover(self._clock())
        except Exception:
            log.exception("outbox_recover_failed")

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and (exc := task.exception()) is not None:
                self._record_failed(exc)
            self._wake.set()  # room for more, and the conversation's next text may be due

        redacting: asyncio.Task[int] | None = None
        while not stop.is_set():
            self._wake.clear()
            if redacting is None or redacting.done():
                # In a task of its own: a slow redaction never holds up a text.
                redacting = asyncio.create_task(self.redact_due(self._clock()))
                redacting.add_done_callback(_log_failure)
            room = self.concurrency - len(in_flight)
            claimed = 0
            if room > 0:
                now = self._clock()
                try:
                    groups = await self._claim(now, min(self.batch, room))
                except Exception:
                    # A database hiccup must not end outbound texting for the process.
                    log.exception("outbox_pass_failed")
                    groups = []
                for one in groups:
                    task = asyncio.create_task(self._send_in_order(one, now))
                    in_flight.add(task)
                    task.add_done_callback(finished)
                claimed = sum(len(group) for group, _ in groups)
            if room > 0 and claimed >= min(self.batch, room) and len(in_flight) < self.concurrency:
                continue  # more may be due right now
            await self._sleep(stop)
        # Let sends already made finish and be recorded (each is bounded by its timeout).
        await asyncio.gather(
            *in_flight, *([redacting] if redacting else []), return_exceptions=True
        )

    async def _sleep(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=self.settings.tick_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
                with suppress(asyncio.CancelledError):
                    await waiter

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the loop in a task for the duration of the block (the app's cleanup_ctx)."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run_forever(stop), name="haven-outbox")
        try:
            yield
        finally:
            stop.set()
            self._wake.set()
            await task

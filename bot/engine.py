"""The one seam where transport, flow, triage and store meet.

For one inbound message: lock the texter, load, triage, step the flow, persist, answer. The
two non-negotiable rules live here, each in one function every path goes through:
`_danger_wins` (rule 1) and `may_text_first` (rule 2).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot import abuse, alarms, metrics, programs, resources
from bot.events import Event, Events
from bot.flowstate import from_flow, is_held, staff_step, to_flow
from bot.hours import Hours, in_unsafe_hours, parse_hours
from bot.logs import get_logger
from bot.queue import position_and_wait
from bot.settings import Settings
from bot.sms.webhook import InboundSms
from bot.store.base import (
    Conflict,
    Conversation,
    InboundState,
    Message,
    NotFound,
    Store,
    Texter,
    Tx,
    User,
)
from bot.triage import Triage, triage
from bot.vocabulary import utcnow
from flows import copy, keywords
from flows.intake import INTAKE
from flows.model import FlowConversation, Say, Turn
from flows.states import (
    AFTER_HOURS,
    CONFIRM_DELETE,
    EXITED,
    NEW,
    OPTED_OUT,
    QUEUED,
    TIMED_STATES,
)

log = get_logger("haven.engine")

__all__ = ["Engine", "Outcome", "may_text_first", "utcnow"]


def may_text_first(texter: Texter, now: datetime, hours: Hours) -> bool:
    """Rule 2, the only gate for anything Haven sends that is not a reply to the texter's
    own message: only after an explicit YES, never when opted out, never in unsafe hours."""
    return (
        texter.safe_to_text is True
        and not texter.opted_out
        and not in_unsafe_hours(texter.unsafe_hours, now, hours.zone)
    )


# A blocked number can still stop texts, end the chat and have its data erased.
RIGHTS_KEYWORDS = frozenset({"stop", "exit", "delete"})
# What a danger text says instead: who we are, the queue, the hours and lines.
SUPERSEDED_BY_DANGER = frozenset(
    {
        "welcome",
        "opening_short",
        "queued",
        "queue_update",
        "after_hours",
        "after_hours_safe",
    }
)
# Someone else's danger (triage signal): the need is "worried about someone else", and
# the danger text speaks to a helper (988 for them, 911 if anyone is in danger now).
THIRD_PARTY = "third_party"
# The flow's scratch key: the "are you in danger right now?" question was asked.
CHECKED = "danger_checked"
# Texts that give a wait; with nobody available, their _unstaffed forms say so instead.
WAIT_TEXTS = frozenset({"queued", "queue_update"})
# Texts that mean no advocate can come soon: a known ZIP then earns the nearest local
# service open 24 hours (bot.resources).
NO_ONE_SOON = frozenset(
    {
        "after_hours",
        "after_hours_safe",
        "danger_after_hours",
        "danger_suicide_after_hours",
        *(f"{message_id}_unstaffed" for message_id in WAIT_TEXTS),
    }
)


def _texter_fields(texter: Texter) -> tuple[object, ...]:
    """What Tx.save_texter writes: compared before and after a step, so an unchanged
    texter costs no statement."""
    return (texter.language, texter.safe_to_text, texter.unsafe_hours, texter.opted_out)


@dataclass(frozen=True)
class Outcome:
    """What one inbound message produced (for the webhook and for tests). `refs`: one
    opaque reference per text (or none), for the TwiML <Message action> callbacks that
    tell Haven each reply's SID at Twilio, so erasure can redact it there."""

    texts: list[str]
    conversation_id: int | None
    duplicate: bool = False
    refs: list[str] = field(default_factory=list)


def new_reply_ref() -> str:
    """A reply's reference: random, never a number or text (22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def saved_reply(texts: Sequence[str], refs: Sequence[str]) -> str:
    """The webhook's answer as kept for Twilio's retries (same texts, same references)."""
    return json.dumps({"texts": list(texts), "refs": list(refs)})


def load_reply(saved: str) -> tuple[list[str], list[str]]:
    data = json.loads(saved)
    if isinstance(data, list):  # saved before replies had references
        return [str(t) for t in data], []
    return [str(t) for t in data["texts"]], [str(r) for r in data["refs"]]


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        crypto_hash: Callable[[str], str],
        events: Events,
        wake_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.hash = crypto_hash
        self.events = events
        self.wake_outbox = wake_outbox
        self.hours = parse_hours(settings.hours)

    # -- inbound ----------------------------------------------------------------------
    async def handle_inbound(self, sms: InboundSms, now: datetime | None = None) -> Outcome:
        started = time.perf_counter()
        now = now or utcnow()
        phone_hash = self.hash(sms.from_)
        events: list[Event] = []
        async with self.store.transaction(lock_key=phone_hash) as tx:
            # One statement: the saved reply, the texter, their block flag and reply
            # window, their open conversation (issue 11: it was five).
            loaded = await tx.load_inbound(phone_hash, sms.message_sid)
            if loaded.saved_reply is not None:
                # Twilio retried, or sent the webhook twice: same answer, nothing stored.
                metrics.WEBHOOK_DUPLICATES.inc()
                texts, refs = load_reply(loaded.saved_reply)
                return Outcome(texts, None, duplicate=True, refs=refs)
            # The engine and the flow step ask several keyword questions of one message:
            # its text is normalised once (the memo ends with the message).
            with keywords.one_reading():
                outcome = await self._handle(tx, sms, phone_hash, now, events, loaded)
            await tx.save_reply(sms.message_sid, saved_reply(outcome.texts, outcome.refs), now)
        for event in events:
            self.events.publish(event)
        metrics.MESSAGES_IN.inc()
        metrics.MESSAGES_OUT.labels("reply").inc(len(outcome.texts))
        metrics.INBOUND_SECONDS.observe(time.perf_counter() - started)
        return outcome

    async def _handle(
        self,
        tx: Tx,
        sms: InboundSms,
        phone_hash: str,
        now: datetime,
        events: list[Event],
        loaded: InboundState,
    ) -> Outcome:
        result = triage(sms.body)
        texter = loaded.texter
        if texter is None:
            texter = await tx.create_texter(phone_hash, sms.from_, result.language, now)
        stored = _texter_fields(texter)  # what the row holds: written back only if changed
        conv = loaded.conversation
        if conv is None:
            # Language comes from the first message; a returning texter keeps their choice
            # unless this message is plainly Spanish.
            language = "es" if result.language == "es" else texter.language
            conv = await tx.create_conversation(texter.id, language, now)
            await programs.route_new(tx, conv, sms.to)  # the program whose number they texted
            # "Safe to text" is asked anew in every conversation: a phone safe last month
            # may not be now. An opted-out number stays opted out until START.
            texter.safe_to_text = None
            conv.state = INTAKE.first_state(opted_out=texter.opted_out)
        message = await tx.add_message(
            Message(
                conversation_id=conv.id,
                direction="in",
                body=sms.body,
                author="texter",
                provider_sid=sms.message_sid,
                status="received",
                media_types=list(sms.media_types),
                labels=sorted(result.labels),
            )
        )
        raised = self._apply_triage(conv, result, now)
        # -- abuse (issue 10; policy in bot.abuse) ------------------------------------------
        # A blocked number's message is kept and triaged, but steps no flow, joins no queue
        # and gets no reply, unless it shows danger (rule 1) or uses a texter's rights:
        # STOP, EXIT and DELETE (and the answer to DELETE's question) always work.
        rights = (
            conv.state == CONFIRM_DELETE
            or keywords.keyword(sms.body, self.settings.exit_keywords) in RIGHTS_KEYWORDS
        )
        if not result.danger and not rights and loaded.blocked:
            await tx.save_conversation(conv)
            events.append(Event("message", {"conversation_id": conv.id, "direction": "in"}))
            return Outcome([], conv.id)
        holder = conv.advocate_id  # told of whatever happens, even if this lets them go
        # A pending partner-program offer takes this message as its answer, unless danger.
        partner = await programs.answer_partner_offer(tx, conv, sms.body, result.danger, now)
        model = self._model(conv, texter)
        # Read once for the whole message (the partner answer above may have moved it).
        program = await programs.of_conversation(tx, conv, self.settings)
        turn = Turn(
            text=sms.body,
            now=now,
            labels=result.labels,
            priority=result.priority,
            raised=raised,
            media_count=sms.num_media,
            is_open=program.hours.is_open(now),
            third_party=THIRD_PARTY in result.signals,
        )
        held, origin = model.held, model.state
        if partner is not None:
            model.replies.append(partner)  # the answer to Haven's question, not the flow's
        elif result.danger and not held and model.state in INTAKE.escalate_states:
            await INTAKE.escalate(model, turn)
        else:
            await INTAKE.handle(model, turn)
        replies = self._danger_wins(model, result, origin, turn.third_party)
        if sms.num_media and not sms.body.strip() and not held and not model.opted_out:
            replies.append(Say("media_only"))
        model.data.pop("nudged", None)  # a new silence earns a new nudge
        self._apply_model(conv, texter, model, now, restart_timers=True)
        metrics.count_labels(result.labels)
        events.append(
            Event(
                "message", {"conversation_id": conv.id, "message_id": message.id, "direction": "in"}
            )
        )
        if replies and not await abuse.reply_allowed(
            tx, texter, now, self.settings, result.danger, loaded.reply_window
        ):
            replies = []  # abuse (issue 10): past this number's reply limit; kept, unanswered
        texts, refs = await self._finish(
            tx, conv, texter, model, replies, now, events, holder, program, stored
        )
        if result.danger and held and is_held(conv):
            # Rule 1 while an advocate holds it: Haven stays quiet; people are alarmed.
            events.append(await alarms.danger_while_held(tx, conv, now))
        conversation_id = conv.id if "delete_all" not in model.effects else None
        return Outcome(texts, conversation_id, refs=refs)

    def _apply_triage(self, conv: Conversation, result: Triage, now: datetime) -> bool:
        """Priority only rises within a conversation; labels and signals accumulate."""
        before = conv.priority
        conv.priority = min(conv.priority, result.priority)
        if conv.priority < before:  # for the advocate's "why": their own words
            conv.flow = {**conv.flow, "priority_basis": "words"}
        conv.labels = sorted(set(conv.labels) | result.labels)
        conv.signals = list(dict.fromkeys([*conv.signals, *result.signals]))
        conv.last_inbound_at = now
        return conv.priority < before

    def _danger_wins(
        self, model: FlowConversation, result: Triage, origin: str, third_party: bool = False
    ) -> list[Say]:
        """Rule 1: when no advocate holds the conversation, a message showing danger gets
        one text, the emergency line first, whatever the flow said; it replaces the flow's
        opening, queue and hours texts (the danger texts carry what those said). No
        keyword, state or setting removes it. A message close to danger but under it asks
        once, plainly, whether they are in danger now."""
        replies = list(model.replies)
        if model.held:
            return replies
        if not result.danger:
            if result.near_danger and not model.opted_out and not model.data.get(CHECKED):
                model.data[CHECKED] = True
                return [Say("danger_check"), *replies]
            return replies
        if "suicide" in result.labels and not third_party:
            kind = "suicide"  # their own thoughts: 988 first, and 911
        elif "suicide" in result.labels and "emergency" not in result.labels:
            kind = "other"  # someone else's: 988 for them, 911 if anyone is in danger now
        else:
            kind = "emergency"
        if model.state == AFTER_HOURS:
            danger = "danger_after_hours" if kind == "emergency" else f"danger_{kind}_after_hours"
        else:
            danger = f"danger_{kind}" + ("_new" if origin == NEW else "")
        return [Say(danger), *(say for say in replies if say.id not in SUPERSEDED_BY_DANGER)]

    # -- conversation <-> flow model ----------------------------------------------------
    def _model(self, conv: Conversation, texter: Texter) -> FlowConversation:
        return to_flow(conv, texter, self.settings.exit_keywords)

    def _apply_model(
        self,
        conv: Conversation,
        texter: Texter,
        model: FlowConversation,
        now: datetime,
        restart_timers: bool = False,
    ) -> None:
        from_flow(conv, texter, model, now)
        if restart_timers and conv.state in TIMED_STATES:
            # The clock counts silence since the texter's last message.
            conv.nudge_at = now + timedelta(seconds=self.settings.nudge_after)
            conv.expire_at = now + timedelta(seconds=self.settings.expire_after)

    async def _finish(
        self,
        tx: Tx,
        conv: Conversation,
        texter: Texter,
        model: FlowConversation,
        replies: Sequence[Say],
        now: datetime,
        events: list[Event],
        holder: int | None,
        program: programs.ProgramView,
        stored: tuple[object, ...],
    ) -> tuple[list[str], list[str]]:
        """Persist the step, carry out its effects and render its replies (after saving,
        so a queue position counts this texter at its new priority). Returns the texts and
        a new reference for each. The replies to DELETE and EXIT are not stored (their
        conversation is erased): their references name no message, so their SIDs, when
        Twilio reports them, are redacted at once. `program`: the conversation's;
        `stored`: the texter's fields as stored (the texter row is written only when they
        changed)."""
        if "delete_all" in model.effects:
            texts = [(await self._render_one(tx, conv, say, now, program))[1] for say in replies]
            await tx.delete_texter(texter.id)
            events.append(
                Event(
                    "conversation",
                    {
                        "conversation_id": conv.id,
                        "state": "deleted",
                        "advocate_id": holder,
                    },
                )
            )
            events.append(Event("queue", {}))
            return texts, [new_reply_ref() for _ in texts]
        if _texter_fields(texter) != stored:
            await tx.save_texter(texter)
        await tx.save_conversation(conv)
        if texter.opted_out:  # carriers would refuse them: nothing waiting goes out
            await tx.cancel_outbox(conv.id, "opted_out", now)
        rendered = [await self._render_one(tx, conv, say, now, program) for say in replies]
        texts = [text for _, text in rendered]
        no_one_soon = any(message_id in NO_ONE_SOON for message_id, _ in rendered)
        if no_one_soon and conv.location and "purge" not in model.effects:
            local = await self._local_help(tx, conv, now)
            if local is not None:
                texts.append(local)
        refs = [new_reply_ref() for _ in texts]
        if "purge" in model.effects:
            await tx.purge_conversation(conv.id)
        else:
            await tx.add_replies(conv.id, list(zip(texts, refs, strict=True)))
        if "enqueue" in model.effects or conv.state in (QUEUED, EXITED, OPTED_OUT):
            events.append(Event("queue", {}))
        change: dict[str, Any] = {"conversation_id": conv.id, "state": conv.state}
        if holder is not None:
            change["advocate_id"] = holder  # the holder's screen hears of STOP or EXIT too
        events.append(Event("conversation", change))
        return texts, refs

    async def _local_help(self, tx: Tx, conv: Conversation, now: datetime) -> str | None:
        """No advocate can come soon (closed, or nobody available): the nearest local
        service open 24 hours, within 50 miles of the ZIP they gave, recorded as a
        referral. None when the directory has none (or they gave a city, not a ZIP)."""
        assert conv.location is not None
        found = await resources.nearest_open_24h(tx, conv.location, now=now)
        if found is None:
            return None
        await tx.record_referral(conv.id, found.service_id, None, now)
        line = resources.as_text(found, conv.language)
        return copy.render("local_help", conv.language, {"resource": line})

    async def _render_one(
        self,
        tx: Tx,
        conv: Conversation,
        say: Say,
        now: datetime,
        program: programs.ProgramView,
    ) -> tuple[str, str]:
        """The copy id actually used (a wait text becomes its _unstaffed form when nobody
        is available) and the rendered text, in the conversation's `program`."""
        message_id = say.id
        fields = copy.fields_of(message_id, conv.language)
        params: dict[str, Any] = {"named": program.name_services, "position": 1, "wait": 1}
        # The place in line takes several queries: only for texts that show it.
        shows_wait = message_id in WAIT_TEXTS or bool(fields & {"position", "wait"})
        if conv.queued_at is not None and shows_wait:
            params["position"], wait = await position_and_wait(tx, conv, now, self.settings)
            if wait is not None:
                params["wait"] = wait
            elif message_id in WAIT_TEXTS:
                message_id += "_unstaffed"  # never promise minutes nobody can keep
                fields = copy.fields_of(message_id, conv.language)
        # The standard params, each worked out only when the text uses it (the hours and
        # the hotline lines are renders of their own).
        if "org" in fields:
            params["org"] = program.name
        if fields & {"terms", "terms_line"}:
            params["terms"] = self.settings.terms_url
        if "hours" in fields:
            params["hours"] = program.hours.describe(conv.language)
        if "lines" in fields:
            params["lines"] = self._lines(conv.language, program)
        params.update(say.params)
        return message_id, copy.render(message_id, conv.language, params)

    def _lines(self, language: str, program: programs.ProgramView) -> str:
        return " ".join(
            copy.render(f"line_{name}", language, {"named": program.name_services})
            for name in program.lines
        )

    # -- outbound -----------------------------------------------------------------------
    async def _queue_text(
        self, tx: Tx, conv: Conversation, texter: Texter, body: str, author: str, now: datetime
    ) -> Message:
        message = await tx.add_message(
            Message(conv.id, "out", body, author=author, status="queued")
        )
        assert message.id is not None
        await tx.enqueue_outbound(message.id, texter.phone, now)
        return message

    async def send_from_advocate(
        self, conversation_id: int, user: User, body: str, now: datetime | None = None
    ) -> Message:
        """An advocate's text: stored, then sent through the outbox (once, with retries)."""
        now = now or utcnow()
        body = body.strip()
        if not body:
            raise ValueError("the message is empty")
        if len(body) > 1600:
            raise ValueError("the message is longer than 1600 characters")
        async with self.store.locked_conversation(conversation_id) as (tx, conv):
            texter = await tx.get_texter(conv.texter_id)
            if not is_held(conv) or (conv.advocate_id != user.id and user.role == "advocate"):
                raise Conflict("you do not hold that conversation")
            if texter.opted_out:
                raise Conflict("this texter has opted out; they must text START first")
            message = await self._queue_text(tx, conv, texter, body, f"advocate:{user.id}", now)
            await tx.audit(user.id, "reply", conv.id, f"message {message.id}", now)
            await alarms.answered(tx, conv.id, now)
        metrics.MESSAGES_OUT.labels("advocate").inc()
        self.events.publish(
            Event(
                "message",
                {"conversation_id": conv.id, "message_id": message.id, "direction": "out"},
            )
        )
        self.wake_outbox()
        return message

    async def _send_unprompted(
        self, tx: Tx, conv: Conversation, texter: Texter, replies: Sequence[Say], now: datetime
    ) -> int:
        """Everything Haven texts on its own goes through here, and so through rule 2."""
        program = await programs.of_conversation(tx, conv, self.settings)
        if not replies or not may_text_first(texter, now, program.hours):
            return 0
        for say in replies:
            _, text = await self._render_one(tx, conv, say, now, program)
            await self._queue_text(tx, conv, texter, text, "haven", now)
        metrics.MESSAGES_OUT.labels("unprompted").inc(len(replies))
        self.wake_outbox()
        return len(replies)

    # -- timers -------------------------------------------------------------------------
    async def run_timers(self, now: datetime | None = None) -> int:
        """Fire due nudges and expiries. Each is re-checked under the texter's lock, so a
        timer fires once even when several processes see it due."""
        now = now or utcnow()
        async with self.store.reading() as tx:  # the scan; each fires under its lock
            due = [c.id for c in await tx.due_timers(now)]
        fired = 0
        for conversation_id in due:
            try:
                state = await self._fire_timer(conversation_id, now)
            except NotFound:
                continue  # deleted meanwhile (DELETE, retention)
            if state is None:
                continue  # answered or fired by another process meanwhile
            fired += 1
            self.events.publish(
                Event("conversation", {"conversation_id": conversation_id, "state": state})
            )
        return fired

    async def _fire_timer(self, conversation_id: int, now: datetime) -> str | None:
        """One due timer under the texter's lock; the state it left, or None if none was
        due any more."""
        async with self.store.locked_conversation(conversation_id) as (tx, conv):
            texter = await tx.get_texter(conv.texter_id)
            model = self._model(conv, texter)
            if conv.expire_at is not None and conv.expire_at <= now:
                await INTAKE.timer(model, "expire", now)
                self._apply_model(conv, texter, model, now)
                conv.nudge_at = conv.expire_at = None
            elif conv.nudge_at is not None and conv.nudge_at <= now:
                # The flow decides (a nudge needs a YES; a DELETE question lapses);
                # _send_unprompted applies rule 2 to whatever it says.
                await INTAKE.timer(model, "nudge", now)
                model.data["nudged"] = True
                self._apply_model(conv, texter, model, now)
                conv.nudge_at = None
                await self._send_unprompted(tx, conv, texter, model.replies, now)
            else:
                return None
            await tx.save_conversation(conv)
            return conv.state

    async def open_shift(self, now: datetime | None = None) -> int:
        """When the helpline opens, texters who wrote after hours join the queue in the order
        they wrote, and those who said it is safe are told (rule 2 decides)."""
        now = now or utcnow()
        async with self.store.transaction() as tx:
            book = await programs.book(tx, self.settings)
            if not any(book.of(p).hours.is_open(now) for p in book.ids()):
                return 0
            overnight = sorted(
                # Each program opens at its own hours.
                [
                    c
                    for c in await tx.list_conversations(states=[AFTER_HOURS])
                    if book.of(c.program_id).hours.is_open(now)
                ],
                key=lambda c: (c.created_at or now, c.id),
            )
            waiting = [(c.id, (await tx.get_texter(c.texter_id)).phone_hash) for c in overnight]
        for order, (conversation_id, phone_hash) in enumerate(waiting):
            async with self.store.transaction(lock_key=phone_hash) as tx:
                conv = await tx.get_conversation(conversation_id)
                if conv.state != AFTER_HOURS:
                    continue  # the texter moved on meanwhile
                texter = await tx.get_texter(conv.texter_id)
                await staff_step(tx, conv, "open", now)
                # Aging counts from the opening (the night is nobody's wait); a microsecond
                # apart keeps them in the order they wrote.
                conv.queued_at = now + timedelta(microseconds=order)
                await tx.save_conversation(conv)
                await self._send_unprompted(tx, conv, texter, [Say("opened")], now)
        if waiting:
            self.events.publish(Event("queue", {}))
        return len(waiting)

    async def check_alarms(self, now: datetime | None = None) -> list[int]:
        """Priority-1 texters waiting unclaimed past alarm_after: alarmed once each, across
        processes (bot.alarms), and on-call paged when nobody is signed in."""
        raised = await alarms.check_unclaimed(
            self.store, now or utcnow(), self.settings, self.events
        )
        if raised and self.settings.oncall_numbers:
            self.wake_outbox()
        return raised

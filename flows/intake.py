"""The intake conversation (DESIGN.md section 4), as one table plus small callbacks.

Read TABLE from top to bottom: it is the conversation. Each row is
`row(trigger, source, dest, when=..., unless=..., then=...)`; for one trigger in one state
the first row whose conditions hold wins, so specific rows come before fallbacks. A `dest`
of None means "stay" (an internal transition). `ANY` is every state.

Triggers: "message" (an ordinary text), the global keywords ("stop", "start", "help",
"language", "agent", "exit", "delete"; "confirm"/"decline" answer a DELETE), the timers
("nudge", "expire"), "escalate" (the engine saw danger) and the advocate's "claim",
"release", "close".

One AsyncMachine is built at import (INTAKE). For each message the conversation is wrapped
in a fresh per-message model, added to the machine, stepped, and removed in a finally, so
any number of conversations can be in flight at once. The wrapper exists because
FlowConversation is a dataclass with value equality: transitions finds models with `in`
and `list.remove`, which would confuse two conversations that happen to look alike.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from transitions import EventData, MachineError
from transitions.extensions.asyncio import AsyncMachine

from flows import keywords
from flows.model import FlowConversation, Turn
from flows.states import (
    BEFORE_QUEUE,
    CONFIRM_DELETE,
    ESCALATE_STATES,
    EXPIRE_STATES,
    INITIAL,
    NUDGE_STATES,
    OPTED_OUT,
    STATES,
)

# ── States (names and sets live in flows/states.py) ─────────────────────────────────
ANY = "*"
# States a declined DELETE can return to (everything but confirm_delete itself).
RETURNABLE = tuple(s for s in STATES if s != CONFIRM_DELETE)
TIMERS = ("nudge", "expire")
# Staff actions, each stepped under the texter's lock (bot.handoff): an advocate takes the
# texter, hands them back to the queue, closes; a supervisor reassigns; the shift opens.
ADVOCATE_EVENTS = ("claim", "release", "close", "reassign", "open")
# Every state must answer these (a fallback row with no conditions), so no inbound message
# or timer can fall through the table.
COVERED_TRIGGERS = (
    "message",
    "stop",
    "start",
    "help",
    "language",
    "agent",
    "exit",
    "delete",
    *TIMERS,
)

# Needs, by menu number. Free text is mapped from its triage labels.
NEEDS = {1: "hurt", 2: "control", 3: "someone_else", 4: "other"}
NEED_CONTROL = 2
# Lethality Screen: a yes to any of the first three screens a texter in.
LETHALITY = ("weapon", "threats_kill", "might_kill")
MAX_LETHALITY = 3
TRAFFICKING_ADULT = ("free_to_leave", "id_held", "debt")
TRAFFICKING_YOUTH = ("minor_sex", "free_to_leave", "id_held")
QUESTIONS = (*LETHALITY, "choked", "under_18", "free_to_leave", "id_held", "debt", "minor_sex")
# The answer that is a risk signal for each question.
RISK_ANSWER = {q: "yes" for q in QUESTIONS} | {"free_to_leave": "no"}
SCREEN_IN_PRIORITY = 2
# Answers that show trafficking (a "no" to free_to_leave, a "yes" to the others).
TRAFFICKING_INDICATORS = frozenset({"free_to_leave", "id_held", "debt"})
YOUTH_AT_RISK_PRIORITY = 1
_ZIP = re.compile(r"\b\d{5}\b")
MAX_LOCATION = 60


class FlowError(ValueError):
    """A conversation in an unknown state, a trigger the state can't take, or bad input.
    Messages never contain texter text or numbers."""


class FlowTableError(FlowError):
    """The transition table is malformed (unknown state, unreachable state, a state that
    can't answer a message or keyword)."""


# ── The per-message model ─────────────────────────────────────────────────────────────
class Step:
    """What transitions drives for one message: identity equality, `state` proxied to the
    conversation, and bound trigger methods that die with it (the conversation stays a
    plain dataclass)."""

    def __init__(self, conv: FlowConversation) -> None:
        self.conv = conv

    @property
    def state(self) -> str:
        return self.conv.state

    @state.setter
    def state(self, value: str) -> None:
        self.conv.state = value


Cond = Callable[[EventData], bool]


@dataclass(frozen=True)
class Do:
    """One action of a row, with the message ids it may say (for checks and reports)."""

    fn: Callable[[EventData], None]
    says: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "action")

    def __call__(self, ev: EventData) -> None:
        self.fn(ev)


def action(*message_ids: str) -> Callable[[Callable[[EventData], None]], Do]:
    def wrap(fn: Callable[[EventData], None]) -> Do:
        return Do(fn, frozenset(message_ids))

    return wrap


def say(message_id: str) -> Do:
    def speak(ev: EventData) -> None:
        _conv(ev).say(message_id)

    speak.__name__ = f"say_{message_id}"
    return Do(speak, frozenset({message_id}))


@dataclass(frozen=True)
class Row:
    trigger: str
    sources: tuple[str, ...]  # ("*",) for every state
    dest: str | None  # None: stay, no exit/enter
    when: tuple[Cond, ...] = ()
    unless: tuple[Cond, ...] = ()
    then: tuple[Do, ...] = ()
    back: bool = False  # returns to the state before (drawn once in the diagram)

    @property
    def unconditional(self) -> bool:
        return not self.when and not self.unless


def _tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple | list):
        return tuple(value)
    return (value,)


def row(
    trigger: str,
    source: str | Collection[str],
    dest: str | None,
    *,
    when: Cond | tuple[Cond, ...] | None = None,
    unless: Cond | tuple[Cond, ...] | None = None,
    then: Do | tuple[Do, ...] | None = None,
    back: bool = False,
) -> Row:
    if isinstance(source, str):
        sources: tuple[str, ...] = (source,)
    else:
        # Table order, so generated transitions and the diagram are stable.
        known = [s for s in STATES if s in source]
        sources = tuple(known + sorted(set(source) - set(known)))
    return Row(trigger, sources, dest, _tuple(when), _tuple(unless), _tuple(then), back)


# ── Reading the event ─────────────────────────────────────────────────────────────────
def _conv(ev: EventData) -> FlowConversation:
    step = ev.model
    if not isinstance(step, Step):
        raise FlowError("the flow's model must be a Step")
    return step.conv


def _turn(ev: EventData) -> Turn:
    turn = ev.kwargs.get("turn")
    if not isinstance(turn, Turn):
        raise FlowError(f"trigger {ev.event.name!r} needs a Turn")
    return turn


def _keyword(ev: EventData) -> str | None:
    kw: str | None = ev.kwargs.get("keyword")
    return kw


# ── Screening plan: which question comes next, from the need and the answers so far ──
def need_from_labels(labels: Iterable[str]) -> str | None:
    found = set(labels)
    if "trafficking" in found:
        return "control"
    if found & {"abuse", "emergency"}:
        return "hurt"
    return None


def need_of(text: str, labels: Iterable[str]) -> str | None:
    """The need id for an answer to the need question; None when skipped."""
    number = keywords.choice(text)
    if number is not None:
        return NEEDS[number]
    if keywords.answer(text) == "skip":
        return None
    return need_from_labels(labels) or "other"


def _lethality_plan(answers: dict[str, str]) -> list[str]:
    plan: list[str] = []
    for question in LETHALITY:
        plan.append(question)
        if answers.get(question) == "yes":
            # Screened in: the rest of the three add nothing to priority, so ask about
            # choking instead (a separate marker the advocate needs).
            plan.append("choked")
            break
    return plan[:MAX_LETHALITY]


def screening_plan(need: str | None, answers: dict[str, str]) -> list[str]:
    """The questions for this need, given the answers so far (a pure function, so
    nothing but the answers needs storing)."""
    if need == "hurt":
        plan = [*_lethality_plan(answers), "under_18"]
        if answers.get("under_18") == "yes":
            # Youth in a home with partner or family violence: ask the trafficking ones.
            plan += TRAFFICKING_YOUTH
        return plan
    if need == "control":
        youth = answers.get("under_18") == "yes"
        return ["under_18", *(TRAFFICKING_YOUTH if youth else TRAFFICKING_ADULT)]
    return []


def next_question(need: str | None, answers: dict[str, str]) -> str | None:
    for question in screening_plan(need, answers):
        if question not in answers:
            return question
    return None


def interpret(question: str, text: str) -> str:
    """yes / no / skip / unsure / unclear; an age answers the under-18 question."""
    answer = keywords.answer(text)
    if answer is None and question == "under_18":
        age = keywords.age(text)
        if age is not None:
            return "yes" if age < 18 else "no"
    return answer or "unclear"


def _answers_after(conv: FlowConversation, turn: Turn) -> dict[str, str]:
    answers = dict(conv.answers)
    question = next_question(conv.need, answers)
    if question is not None:
        answers[question] = interpret(question, turn.text)
    return answers


def _add_signal(conv: FlowConversation, signal: str) -> None:
    if signal not in conv.signals:
        conv.signals.append(signal)


# ── Conditions ────────────────────────────────────────────────────────────────────────
def is_open(ev: EventData) -> bool:
    return _turn(ev).is_open


def held(ev: EventData) -> bool:
    return _conv(ev).held


def media_only(ev: EventData) -> bool:
    turn = _turn(ev)
    return not turn.text.strip() and turn.media_count > 0


def said_yes(ev: EventData) -> bool:
    return keywords.answer(_turn(ev).text) == "yes"


def said_no(ev: EventData) -> bool:
    return keywords.answer(_turn(ev).text) == "no"


def said_skip(ev: EventData) -> bool:
    return keywords.answer(_turn(ev).text) in ("skip", "unsure")


def disclosed_need(ev: EventData) -> bool:
    """Instead of YES/NO they told us what is wrong (triage found it)."""
    return need_from_labels(_turn(ev).labels) is not None


def asked_again(ev: EventData) -> bool:
    return _conv(ev).data.get("safety_asked_again") is True


def need_has_questions(ev: EventData) -> bool:
    turn = _turn(ev)
    return next_question(need_of(turn.text, turn.labels), _conv(ev).answers) is not None


def more_questions(ev: EventData) -> bool:
    conv = _conv(ev)
    return next_question(conv.need, _answers_after(conv, _turn(ev))) is not None


def raised_or_asks_wait(ev: EventData) -> bool:
    turn = _turn(ev)
    return turn.raised or keywords.asks_about_wait(turn.text)


def is_opted_out(ev: EventData) -> bool:
    return _conv(ev).opted_out


def safe_to_text(ev: EventData) -> bool:
    return _conv(ev).safe_to_text is True


def not_nudged(ev: EventData) -> bool:
    return not _conv(ev).data.get("nudged")


def came_from(state: str) -> Cond:
    def check(ev: EventData) -> bool:
        return _conv(ev).data.get("before_delete") == state

    check.__name__ = f"from_{state}"
    return check


# ── Actions ───────────────────────────────────────────────────────────────────────────
@action("welcome")
def welcome(ev: EventData) -> None:
    conv = _conv(ev)
    conv.data["safety_asked_again"] = False
    conv.say("welcome")


@action("after_hours", "after_hours_safe")
def tell_after_hours(ev: EventData) -> None:
    # "We'll text when we open" is a promise of an unprompted text: only if safe.
    conv = _conv(ev)
    conv.say("after_hours_safe" if conv.safe_to_text is True else "after_hours")


@action("safety_question")
def ask_safety(ev: EventData) -> None:
    conv = _conv(ev)
    conv.data["safety_asked_again"] = False
    conv.say("safety_question")


@action("safety_again")
def ask_safety_again(ev: EventData) -> None:
    conv = _conv(ev)
    conv.data["safety_asked_again"] = True
    conv.say("safety_again")


@action()
def mark_safe(ev: EventData) -> None:
    _conv(ev).safe_to_text = True


@action()
def mark_unsafe(ev: EventData) -> None:
    _conv(ev).safe_to_text = False


@action("need_question")
def ask_need(ev: EventData) -> None:
    _conv(ev).say("need_question")


@action()
def record_need(ev: EventData) -> None:
    conv, turn = _conv(ev), _turn(ev)
    conv.need = need_of(turn.text, turn.labels)
    if conv.need == "control" and keywords.choice(turn.text) == NEED_CONTROL:
        # Choosing "someone controls my work, money or papers" is a trafficking screen-in
        # by their own answer (free text is labelled by triage instead).
        conv.labels.add("trafficking")
        raise_priority(conv, SCREEN_IN_PRIORITY, "screening")


@action(*(f"q_{q}" for q in QUESTIONS))
def ask_next_question(ev: EventData) -> None:
    conv = _conv(ev)
    question = next_question(conv.need, conv.answers)
    if question is None:
        raise FlowError("screening has no question to ask")
    conv.say(f"q_{question}")


def raise_priority(conv: FlowConversation, priority: int, basis: str) -> None:
    """Priority only rises; `basis` records what raised it ("screening" here, "words" when
    the engine's triage did), for the advocate's "why"."""
    if priority < conv.priority:
        conv.priority = priority
        conv.data["priority_basis"] = basis


def _screen_in(conv: FlowConversation, question: str) -> None:
    """A risky answer to one screening question: its signal, and what it does to priority.
    Any of the first three Lethality Screen items, or any trafficking indicator, screens
    the texter in at P2 (trafficking indicators also carry the label); a minor in commercial
    sex is trafficking in itself and routed first, as a youth at risk (P1)."""
    if question == "free_to_leave":
        _add_signal(conv, "screen:not_free_to_leave")
    else:
        _add_signal(conv, f"screen:{question}")
    if question in LETHALITY:
        raise_priority(conv, SCREEN_IN_PRIORITY, "screening")
    elif question in TRAFFICKING_INDICATORS:
        conv.labels.add("trafficking")
        raise_priority(conv, SCREEN_IN_PRIORITY, "screening")
    elif question == "minor_sex":
        conv.labels.add("trafficking")
        _add_signal(conv, "youth_at_risk")
        raise_priority(conv, YOUTH_AT_RISK_PRIORITY, "screening")
    elif question == "under_18" and conv.need == "hurt":
        _add_signal(conv, "youth_at_risk")


@action()
def record_answer(ev: EventData) -> None:
    conv = _conv(ev)
    before = dict(conv.answers)
    conv.answers = _answers_after(conv, _turn(ev))
    for question, value in conv.answers.items():
        if question not in before and value == RISK_ANSWER.get(question):
            _screen_in(conv, question)


@action("location_question")
def ask_location(ev: EventData) -> None:
    _conv(ev).say("location_question")


@action()
def record_location(ev: EventData) -> None:
    conv, text = _conv(ev), _turn(ev).text.strip()
    if not text or keywords.answer(text) in ("skip", "no", "unsure"):
        conv.location = None
        return
    # A ZIP is all an advocate needs; otherwise keep the short place name they gave.
    found = _ZIP.search(text)
    conv.location = found.group(0) if found else " ".join(text.split())[:MAX_LOCATION]


@action()
def enqueue(ev: EventData) -> None:
    conv = _conv(ev)
    if "enqueue" not in conv.effects:
        conv.effects.append("enqueue")


@action()
def opt_out(ev: EventData) -> None:
    _conv(ev).opted_out = True


@action()
def opt_in(ev: EventData) -> None:
    conv = _conv(ev)
    conv.opted_out = False
    conv.data["safety_asked_again"] = False


@action()
def set_language(ev: EventData) -> None:
    _conv(ev).language = "es" if _keyword(ev) == "spanish" else "en"


_PROMPTS = {
    "safety_check": "safety_question",
    "need": "need_question",
    "location": "location_question",
    "queued": "queue_update",
    "confirm_delete": "confirm_delete",
}


@action(*_PROMPTS.values(), *ask_next_question.says, *tell_after_hours.says)
def repeat_prompt(ev: EventData) -> None:
    """Say again what this state last asked (after a language switch or a stray START)."""
    conv = _conv(ev)
    if conv.state == "screening":
        ask_next_question(ev)
    elif conv.state == "after_hours":
        tell_after_hours(ev)
    elif conv.state in _PROMPTS:
        conv.say(_PROMPTS[conv.state])


@action()
def purge(ev: EventData) -> None:
    conv = _conv(ev)
    conv.effects.append("purge")
    conv.safe_to_text = None  # a quick exit may mean someone is reading: ask again next time


@action()
def delete_all(ev: EventData) -> None:
    _conv(ev).effects.append("delete_all")


@action()
def remember_origin(ev: EventData) -> None:
    _conv(ev).data["before_delete"] = ev.kwargs["origin"]


@action("not_deleted")
def back_from_delete(ev: EventData) -> None:
    conv = _conv(ev)
    conv.data.pop("before_delete", None)
    # STOP and EXIT get their own single line; nothing else is needed.
    if _keyword(ev) not in ("stop", "exit"):
        conv.say("not_deleted")


def return_to(state: str) -> Do:
    def set_return(ev: EventData) -> None:
        _conv(ev).data["before_delete"] = state

    set_return.__name__ = f"return_to_{state}"
    return Do(set_return)


@action()
def forget_delete(ev: EventData) -> None:
    _conv(ev).data.pop("before_delete", None)


@action("nudge")
def nudge(ev: EventData) -> None:
    conv = _conv(ev)
    conv.data["nudged"] = True
    conv.say("nudge")


@action()
def hold(ev: EventData) -> None:
    _conv(ev).held = True


@action()
def unhold(ev: EventData) -> None:
    _conv(ev).held = False


# ── The conversation ──────────────────────────────────────────────────────────────────
_INTAKE_AFTER_NEW = BEFORE_QUEUE - {"new"}

TABLE: tuple[Row, ...] = (
    # Held by an advocate: Haven says nothing itself (keywords below still work).
    row("message", ANY, None, when=held),
    # HELP while held: carriers require an answer to HELP, so it gets the help text.
    row("help", ANY, None, when=held, then=say("help")),
    row("agent", ANY, None, when=held),
    row("language", ANY, None, when=held, then=set_language),
    # The first message of a conversation gets the welcome (or the hours, when closed).
    row("message", "new", "after_hours", unless=is_open, then=tell_after_hours),
    row("message", "new", "safety_check", then=welcome),
    # Is it safe to text? YES / NO; unclear is asked once more, then taken as an
    # unreliable yes: safe_to_text stays None, so nothing is ever sent unprompted.
    # A picture with no text is no answer; the engine says we read text only.
    row("message", "safety_check", None, when=media_only),
    row("message", "safety_check", "need", when=said_yes, then=(mark_safe, ask_need)),
    row("message", "safety_check", "paused", when=said_no, then=(mark_unsafe, say("paused"))),
    # SKIP or "not sure": go on, but nothing will ever be sent unprompted (still None).
    row("message", "safety_check", "need", when=said_skip, then=ask_need),
    row(
        "message",
        "safety_check",
        "screening",
        when=(disclosed_need, need_has_questions),
        then=(record_need, ask_next_question),
    ),
    row("message", "safety_check", None, unless=asked_again, then=ask_safety_again),
    row("message", "safety_check", "need", then=ask_need),
    # Not safe now: any message later asks again.
    row("message", "paused", "safety_check", then=ask_safety),
    # What's going on? A number or their own words (triaged).
    row("message", "need", None, when=media_only),
    row(
        "message",
        "need",
        "screening",
        when=need_has_questions,
        then=(record_need, ask_next_question),
    ),
    row("message", "need", "location", then=(record_need, ask_location)),
    # A few yes/no questions chosen by need; SKIP skips one.
    row("message", "screening", None, when=media_only),
    row(
        "message",
        "screening",
        None,
        when=more_questions,
        then=(record_answer, ask_next_question),
    ),
    row("message", "screening", "location", then=(record_answer, ask_location)),
    # Where are you? (SKIP allowed.) Then the queue.
    row("message", "location", None, when=media_only),
    row(
        "message",
        "location",
        "after_hours",
        unless=is_open,
        then=(record_location, tell_after_hours),
    ),
    row("message", "location", "queued", then=(record_location, enqueue, say("queued"))),
    # Waiting: messages are kept for the advocate. Haven answers only a raised priority
    # or a question about the wait.
    row("message", "queued", None, when=raised_or_asks_wait, then=say("queue_update")),
    # After hours: kept for the next shift; once we are open, the welcome.
    row("message", "after_hours", "safety_check", when=is_open, then=welcome),
    # Everywhere else (queued, with an advocate, opted out, ended): kept; Haven is quiet.
    row("message", ANY, None),
    #
    # Global keywords, in every state.
    # STOP family: one confirmation, as carriers require; then silence until START.
    row("stop", "opted_out", None),
    row("stop", ANY, "opted_out", then=(opt_out, unhold, say("stopped"))),
    row("start", "opted_out", "safety_check", then=(opt_in, say("started"))),
    row("start", "new", "after_hours", unless=is_open, then=tell_after_hours),
    row("start", "new", "safety_check", then=welcome),
    row("start", "paused", "safety_check", then=ask_safety),
    row("start", ANY, None, then=repeat_prompt),
    # HELP: the carrier help text, and it asks for a person.
    row("help", BEFORE_QUEUE, "after_hours", unless=is_open, then=(say("help"), tell_after_hours)),
    row("help", BEFORE_QUEUE, "queued", then=(say("help"), enqueue, say("queued"))),
    row("help", ANY, None, then=say("help")),
    # ESPAÑOL / ENGLISH: switch, then say the current question again.
    row("language", "new", "after_hours", unless=is_open, then=(set_language, tell_after_hours)),
    row("language", "new", "safety_check", then=(set_language, welcome)),
    row("language", "paused", "safety_check", then=(set_language, ask_safety)),
    row("language", ANY, None, then=(set_language, repeat_prompt)),
    # AGENT: a person now; the rest of the intake is skipped.
    row("agent", BEFORE_QUEUE, "after_hours", unless=is_open, then=tell_after_hours),
    row("agent", "new", "queued", then=(say("opening_short"), enqueue, say("queued"))),
    row("agent", _INTAKE_AFTER_NEW, "queued", then=(enqueue, say("queued"))),
    row("agent", "queued", None, then=say("queue_update")),
    row("agent", ANY, None),
    # EXIT: quick exit, stored content purged, at most one neutral line.
    row("exit", "opted_out", "exited", then=purge),
    row("exit", ANY, "exited", then=(purge, unhold, say("exited"))),
    # DELETE: one confirmation; anything else goes back and is handled there.
    row("delete", ANY, "confirm_delete", then=(remember_origin, say("confirm_delete"))),
    row("confirm", "confirm_delete", "exited", then=(delete_all, say("deleted"))),
    *(
        row("decline", "confirm_delete", s, when=came_from(s), then=back_from_delete, back=True)
        for s in RETURNABLE
    ),
    # The state before was lost (should not happen): start again with the welcome.
    row("decline", "confirm_delete", "new", then=back_from_delete),
    #
    # Timers. One nudge, only when safe to text; then a quiet expiry.
    row(
        "nudge",
        NUDGE_STATES,
        None,
        when=(safe_to_text, not_nudged),
        unless=held,
        then=nudge,
    ),
    # An unanswered DELETE question lapses quietly: back where they were, nothing deleted.
    *(
        row("nudge", "confirm_delete", s, when=came_from(s), then=forget_delete, back=True)
        for s in RETURNABLE
    ),
    row("nudge", ANY, None),
    row("expire", EXPIRE_STATES, "expired"),
    # A DELETE question still open at expiry: mid-intake it expires as the intake would;
    # from the queue or an advocate it goes back there. Nothing is deleted.
    *(
        row("expire", "confirm_delete", "expired", when=came_from(s), then=forget_delete)
        for s in RETURNABLE
        if s in EXPIRE_STATES
    ),
    *(
        row("expire", "confirm_delete", s, when=came_from(s), then=forget_delete, back=True)
        for s in RETURNABLE
        if s not in EXPIRE_STATES
    ),
    row("expire", ANY, None),
    # Danger (the engine has already put the emergency numbers first).
    # Opted out: carriers carry nothing to them until START, so no advocate could answer;
    # the engine gives the numbers, and this says how to reach a person.
    row("escalate", "opted_out", None, then=say("start_for_person")),
    row(
        "escalate",
        "confirm_delete",
        "opted_out",
        when=is_opted_out,
        then=(forget_delete, say("start_for_person")),
    ),
    # Closed: the numbers (from the engine), the hours and the lines; first in line at opening.
    row(
        "escalate",
        ESCALATE_STATES,
        "after_hours",
        unless=is_open,
        then=(forget_delete, tell_after_hours),
    ),
    row("escalate", "new", "queued", then=(say("opening_short"), enqueue, say("queued"))),
    row("escalate", _INTAKE_AFTER_NEW, "queued", then=(enqueue, say("queued"))),
    row("escalate", "confirm_delete", "queued", then=(forget_delete, enqueue, say("queued"))),
    # Staff actions (bot.handoff steps them under the texter's lock). While the texter is
    # answering DELETE's question, the question stays open: the action only decides where
    # a "no" (or the question's lapse) returns to.
    row("claim", "queued", "with_advocate", then=hold),
    row("release", "with_advocate", "queued", then=unhold),
    row("release", "confirm_delete", None, then=(unhold, return_to("queued"))),
    row("close", ("queued", "with_advocate", "after_hours"), "closed", then=unhold),
    row("close", "confirm_delete", None, then=(unhold, return_to("closed"))),
    row("reassign", ("queued", "with_advocate"), "with_advocate", then=hold),
    # The helpline opens: those who wrote after hours join the queue.
    row("open", "after_hours", "queued", then=enqueue),
)


# ── Checking and building ─────────────────────────────────────────────────────────────
def _expand(sources: tuple[str, ...], states: tuple[str, ...]) -> tuple[str, ...]:
    return states if ANY in sources else sources


def validate_table(states: tuple[str, ...], rows: Iterable[Row], initial: str = INITIAL) -> None:
    """Raise FlowTableError unless every row names known states, every state is
    reachable from `initial`, and every state answers every message trigger and timer."""
    rows = tuple(rows)
    if len(set(states)) != len(states) or ANY in states:
        raise FlowTableError("states must be unique names")
    if initial not in states:
        raise FlowTableError(f"initial state {initial!r} is not a state")
    known = set(states)
    for r in rows:
        for name in (*r.sources, r.dest):
            if name is not None and name != ANY and name not in known:
                raise FlowTableError(f"row {r.trigger!r}: unknown state {name!r}")
    reached, frontier = {initial}, [initial]
    while frontier:
        here = frontier.pop()
        for r in rows:
            if r.dest and r.dest not in reached and here in _expand(r.sources, states):
                reached.add(r.dest)
                frontier.append(r.dest)
    if unreachable := [s for s in states if s not in reached]:
        raise FlowTableError(f"states not reachable from {initial!r}: {unreachable}")
    for trigger in COVERED_TRIGGERS:
        for state in states:
            if not any(
                r.trigger == trigger and r.unconditional and state in _expand(r.sources, states)
                for r in rows
            ):
                raise FlowTableError(f"state {state!r} has no fallback row for {trigger!r}")


def _sequence(actions: tuple[Do, ...]) -> Callable[[EventData], None]:
    # One callback per row: transitions runs a list of callbacks through asyncio.gather,
    # and the order of what we say matters.
    def run(ev: EventData) -> None:
        for act in actions:
            act(ev)

    return run


class IntakeFlow:
    """The intake flow. Build once; share across all conversations."""

    def __init__(self, rows: Iterable[Row] = TABLE, states: tuple[str, ...] = STATES) -> None:
        self.rows: tuple[Row, ...] = tuple(rows)
        validate_table(states, self.rows)
        self.states: tuple[str, ...] = tuple(states)
        self.intake_states = BEFORE_QUEUE
        self.escalate_states = ESCALATE_STATES
        self.nudge_states = NUDGE_STATES
        self.message_ids: frozenset[str] = frozenset(
            message_id for r in self.rows for act in r.then for message_id in act.says
        )
        self.machine = AsyncMachine(
            model=None,
            states=list(self.states),
            initial=INITIAL,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for r in self.rows:
            for source in _expand(r.sources, self.states):
                self.machine.add_transition(
                    r.trigger,
                    source,
                    r.dest,
                    conditions=list(r.when),
                    unless=list(r.unless),
                    after=[_sequence(r.then)] if r.then else [],
                )

    # ── what the engine calls ──
    @staticmethod
    def first_state(*, opted_out: bool) -> str:
        """Where a new conversation starts: an opted-out number stays opted out (silent)
        until START."""
        return OPTED_OUT if opted_out else INITIAL

    async def handle(self, conv: FlowConversation, turn: Turn) -> None:
        """Step `conv` by one inbound message; replies and effects land on `conv`."""
        async with self._session(conv) as step:
            origin = conv.state
            trigger, kw = self._classify(conv, turn.text)
            await self._fire(step, trigger, turn=turn, keyword=kw, origin=origin)
            if trigger == "decline" and not keywords.declines(turn.text):
                # Back in the earlier state: the message is handled there ("no" only
                # answered our question, and must not answer the one before it).
                trigger, kw = self._classify(conv, turn.text)
                await self._fire(step, trigger, turn=turn, keyword=kw, origin=conv.state)

    async def escalate(self, conv: FlowConversation, turn: Turn) -> None:
        """Danger before an advocate has it: straight to the queue (instead of handle).
        Allowed from BEFORE_QUEUE, opted_out and confirm_delete (ESCALATE_STATES)."""
        if conv.state not in ESCALATE_STATES:
            raise FlowError(f"escalate is not for state {conv.state!r}")
        async with self._session(conv) as step:
            await self._fire(step, "escalate", turn=turn, origin=conv.state)

    async def timer(self, conv: FlowConversation, kind: str, now: datetime) -> None:
        """A timer fired: "nudge" (one nudge, only when safe to text) or "expire"."""
        if kind not in TIMERS:
            raise FlowError(f"unknown timer {kind!r}; expected one of {TIMERS}")
        async with self._session(conv) as step:
            await self._fire(step, kind, now=now, origin=conv.state)

    async def advocate(self, conv: FlowConversation, kind: str) -> None:
        """The advocate side: "claim" (→ with_advocate, held), "release" (→ queued),
        "close" (→ closed)."""
        if kind not in ADVOCATE_EVENTS:
            raise FlowError(f"unknown advocate event {kind!r}; expected one of {ADVOCATE_EVENTS}")
        async with self._session(conv) as step:
            await self._fire(step, kind, origin=conv.state)

    def diagram(self) -> str:
        """The flow as mermaid stateDiagram-v2 text (state changes only; keyword rows
        that apply in every state are drawn once, from "any state")."""
        lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
        edges: dict[tuple[str, str], list[str]] = {}
        for r in self.rows:
            if r.dest is None:
                continue
            if r.back:
                edges.setdefault(("confirm_delete", "previous"), ["decline"])
                continue
            label = r.trigger
            conds = [c.__name__ for c in r.when] + [f"not {c.__name__}" for c in r.unless]
            if conds:
                label += f" [{', '.join(conds)}]"
            for source in ("any",) if ANY in r.sources else r.sources:
                labels = edges.setdefault((source, r.dest), [])
                if label not in labels:
                    labels.append(label)
        lines.append('    state "any state" as any')
        lines.append('    state "the state before" as previous')
        for (source, dest), labels in edges.items():
            lines.append(f"    {source} --> {dest} : {' | '.join(labels)}")
        return "\n".join(lines) + "\n"

    # ── internals ──
    @staticmethod
    def _classify(conv: FlowConversation, text: str) -> tuple[str, str | None]:
        exit_words = conv.data.get("exit_keywords")
        try:
            kw = keywords.keyword(text, exit_words)
        except TypeError as err:
            raise FlowError(f"conv.data['exit_keywords']: {err}") from None
        if conv.state == "confirm_delete":
            return ("confirm" if keywords.confirms_delete(text) else "decline"), kw
        if kw is None:
            return "message", None
        if kw in ("spanish", "english"):
            return "language", kw
        return kw, kw

    @asynccontextmanager
    async def _session(self, conv: FlowConversation) -> AsyncIterator[Step]:
        if conv.state not in self.states:
            raise FlowError(f"conversation is in an unknown state {conv.state!r}")
        # Bad input changes nothing: on any error the conversation is put back as it was.
        snapshot = {f.name: copy.deepcopy(getattr(conv, f.name)) for f in dataclasses.fields(conv)}
        step = Step(conv)
        self.machine.add_model(step, initial=conv.state)
        try:
            yield step
        except BaseException:
            for name, value in snapshot.items():
                setattr(conv, name, value)
            raise
        finally:
            self.machine.remove_model(step)

    async def _fire(self, step: Step, trigger: str, **kwargs: Any) -> None:
        state = step.state
        try:
            done = await self.machine.events[trigger].trigger(step, **kwargs)
        except MachineError:
            raise FlowError(f"state {state!r} cannot take {trigger!r}") from None
        if not done:
            raise FlowError(f"no row for {trigger!r} in state {state!r}")


INTAKE = IntakeFlow()

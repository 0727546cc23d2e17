"""The intake conversation (DESIGN.md section 4), as one table plus small callbacks.

Read TABLE from top to bottom: it is the conversation. Each row is
`row(trigger, source, dest, when=..., unless=..., then=...)`; for one trigger in one state
the first row whose conditions hold wins, so specific rows come before fallbacks. A `dest`
of None means "stay" (an internal transition). `ANY` is every state.

Triggers: "message" (an ordinary text), the global keywords ("stop", "start", "help",
"language", "agent", "exit", "delete"; "confirm"/"decline" answer a DELETE), the timers
("nudge", "expire"), "escalate" (the engine saw danger) and the staff's "claim",
"release", "close", "reassign" and "open".

How a row is written lives in flows/table.py, the screening plan in flows/screening.py, and
the machine that runs the table (INTAKE, built once at import) in flows/machine.py.
"""

from __future__ import annotations

from transitions import EventData

from flows import keywords
from flows.machine import IntakeFlow
from flows.screening import (
    MAX_LOCATION,
    NEED_CONTROL,
    QUESTIONS,
    RISK_ANSWER,
    SCREEN_IN_PRIORITY,
    ZIP,
    answers_after,
    need_from_labels,
    need_of,
    next_question,
    raise_priority,
    screen_in,
)
from flows.states import (
    BEFORE_QUEUE,
    CONFIRM_DELETE,
    ESCALATE_STATES,
    EXPIRE_STATES,
    NUDGE_STATES,
    STATES,
)
from flows.table import (
    ANY,
    COVERED_TRIGGERS,
    TIMERS,
    Cond,
    Do,
    FlowError,
    FlowTableError,
    Row,
    action,
    conv_of,
    keyword_of,
    row,
    say,
    turn_of,
    validate_table,
)

__all__ = [  # what tests and the engine import from here
    "ANY",
    "COVERED_TRIGGERS",
    "INTAKE",
    "RETURNABLE",
    "STATES",
    "TABLE",
    "TIMERS",
    "FlowError",
    "FlowTableError",
    "IntakeFlow",
    "Row",
    "row",
    "validate_table",
]

# States a declined DELETE can return to (everything but confirm_delete itself).
RETURNABLE = tuple(s for s in STATES if s != CONFIRM_DELETE)


# ── Conditions ────────────────────────────────────────────────────────────────────────
def is_open(ev: EventData) -> bool:
    return turn_of(ev).is_open


def held(ev: EventData) -> bool:
    return conv_of(ev).held


def media_only(ev: EventData) -> bool:
    turn = turn_of(ev)
    return not turn.text.strip() and turn.media_count > 0


def said_yes(ev: EventData) -> bool:
    return keywords.answer(turn_of(ev).text) == "yes"


def said_no(ev: EventData) -> bool:
    return keywords.answer(turn_of(ev).text) == "no"


def said_skip(ev: EventData) -> bool:
    return keywords.answer(turn_of(ev).text) in ("skip", "unsure")


def disclosed_need(ev: EventData) -> bool:
    """Instead of YES/NO they told us what is wrong (triage found it)."""
    turn = turn_of(ev)
    return need_from_labels(turn.labels, turn.third_party) is not None


def asked_again(ev: EventData) -> bool:
    return conv_of(ev).data.get("safety_asked_again") is True


def need_has_questions(ev: EventData) -> bool:
    turn = turn_of(ev)
    need = need_of(turn.text, turn.labels, turn.third_party)
    return next_question(need, conv_of(ev).answers) is not None


def more_questions(ev: EventData) -> bool:
    conv = conv_of(ev)
    return next_question(conv.need, answers_after(conv, turn_of(ev))) is not None


def raised_or_asks_wait(ev: EventData) -> bool:
    turn = turn_of(ev)
    return turn.raised or keywords.asks_about_wait(turn.text)


def is_opted_out(ev: EventData) -> bool:
    return conv_of(ev).opted_out


def safe_to_text(ev: EventData) -> bool:
    return conv_of(ev).safe_to_text is True


def not_nudged(ev: EventData) -> bool:
    return not conv_of(ev).data.get("nudged")


def came_from(state: str) -> Cond:
    def check(ev: EventData) -> bool:
        return conv_of(ev).data.get("before_delete") == state

    check.__name__ = f"from_{state}"
    return check


# ── Actions ───────────────────────────────────────────────────────────────────────────
@action("welcome")
def welcome(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.data["safety_asked_again"] = False
    conv.say("welcome")


@action("after_hours", "after_hours_safe")
def tell_after_hours(ev: EventData) -> None:
    # "We'll text when we open" is a promise of an unprompted text: only if safe.
    conv = conv_of(ev)
    conv.say("after_hours_safe" if conv.safe_to_text is True else "after_hours")


@action("safety_question")
def ask_safety(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.data["safety_asked_again"] = False
    conv.say("safety_question")


@action("safety_again")
def ask_safety_again(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.data["safety_asked_again"] = True
    conv.say("safety_again")


@action()
def mark_safe(ev: EventData) -> None:
    conv_of(ev).safe_to_text = True


@action()
def mark_unsafe(ev: EventData) -> None:
    conv_of(ev).safe_to_text = False


@action("need_question")
def ask_need(ev: EventData) -> None:
    conv_of(ev).say("need_question")


@action()
def note_need(ev: EventData) -> None:
    """Danger skipped the need question: what their words disclosed stands for it."""
    conv, turn = conv_of(ev), turn_of(ev)
    if conv.need is None:
        conv.need = need_from_labels(turn.labels, turn.third_party)


@action()
def record_need(ev: EventData) -> None:
    conv, turn = conv_of(ev), turn_of(ev)
    conv.need = need_of(turn.text, turn.labels, turn.third_party)
    if conv.need == "control" and keywords.choice(turn.text) == NEED_CONTROL:
        # Choosing "someone controls my work, money or papers" is a trafficking screen-in
        # by their own answer (free text is labelled by triage instead).
        conv.labels.add("trafficking")
        raise_priority(conv, SCREEN_IN_PRIORITY, "screening")


@action(*(f"q_{q}" for q in QUESTIONS))
def ask_next_question(ev: EventData) -> None:
    conv = conv_of(ev)
    question = next_question(conv.need, conv.answers)
    if question is None:
        raise FlowError("screening has no question to ask")
    conv.say(f"q_{question}")


@action()
def record_answer(ev: EventData) -> None:
    conv = conv_of(ev)
    before = dict(conv.answers)
    conv.answers = answers_after(conv, turn_of(ev))
    for question, value in conv.answers.items():
        if question not in before and value == RISK_ANSWER.get(question):
            screen_in(conv, question)


@action("location_question")
def ask_location(ev: EventData) -> None:
    conv_of(ev).say("location_question")


@action()
def record_location(ev: EventData) -> None:
    conv, text = conv_of(ev), turn_of(ev).text.strip()
    if not text or keywords.answer(text) in ("skip", "no", "unsure"):
        conv.location = None
        return
    # A ZIP is all an advocate needs; otherwise keep the short place name they gave.
    found = ZIP.search(text)
    conv.location = found.group(0) if found else " ".join(text.split())[:MAX_LOCATION]


@action()
def enqueue(ev: EventData) -> None:
    conv = conv_of(ev)
    if "enqueue" not in conv.effects:
        conv.effects.append("enqueue")


@action()
def opt_out(ev: EventData) -> None:
    conv_of(ev).opted_out = True


@action()
def opt_in(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.opted_out = False
    conv.data["safety_asked_again"] = False


@action()
def set_language(ev: EventData) -> None:
    conv_of(ev).language = "es" if keyword_of(ev) == "spanish" else "en"


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
    conv = conv_of(ev)
    if conv.state == "screening":
        ask_next_question(ev)
    elif conv.state == "after_hours":
        tell_after_hours(ev)
    elif conv.state in _PROMPTS:
        conv.say(_PROMPTS[conv.state])


@action()
def purge(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.effects.append("purge")
    conv.safe_to_text = None  # a quick exit may mean someone is reading: ask again next time


@action()
def delete_all(ev: EventData) -> None:
    conv_of(ev).effects.append("delete_all")


@action()
def remember_origin(ev: EventData) -> None:
    conv_of(ev).data["before_delete"] = ev.kwargs["origin"]


@action("not_deleted")
def back_from_delete(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.data.pop("before_delete", None)
    # STOP and EXIT get their own single line; nothing else is needed.
    if keyword_of(ev) not in ("stop", "exit"):
        conv.say("not_deleted")


def return_to(state: str) -> Do:
    def set_return(ev: EventData) -> None:
        conv_of(ev).data["before_delete"] = state

    set_return.__name__ = f"return_to_{state}"
    return Do(set_return)


@action()
def forget_delete(ev: EventData) -> None:
    conv_of(ev).data.pop("before_delete", None)


@action("nudge")
def nudge(ev: EventData) -> None:
    conv = conv_of(ev)
    conv.data["nudged"] = True
    conv.say("nudge")


@action()
def hold(ev: EventData) -> None:
    conv_of(ev).held = True


@action()
def unhold(ev: EventData) -> None:
    conv_of(ev).held = False


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
    row(
        "escalate",
        "new",
        "queued",
        then=(note_need, say("opening_short"), enqueue, say("queued")),
    ),
    row("escalate", _INTAKE_AFTER_NEW, "queued", then=(note_need, enqueue, say("queued"))),
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


INTAKE = IntakeFlow(TABLE)

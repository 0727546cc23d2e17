"""The intake conversation (flows/intake.py), driven only through INTAKE's public calls."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from flows import copy
from flows.intake import (
    INTAKE,
    STATES,
    TABLE,
    FlowError,
    FlowTableError,
    IntakeFlow,
    row,
    validate_table,
)
from flows.model import FlowConversation, Say, Turn
from flows.table import Do, conv_of

NOW = datetime(2024, 5, 1, 15, 0, tzinfo=UTC)
STANDARD = {"org": "Harbor House", "terms": "", "position": 3, "wait": 12, "hours": "9-5"}


def turn(text: str, **kwargs: Any) -> Turn:
    return Turn(text=text, now=NOW, **kwargs)


async def send(conv: FlowConversation, text: str, **kwargs: Any) -> list[str]:
    """One inbound message through handle(), as the engine does: outputs start empty."""
    conv.replies.clear()
    conv.effects.clear()
    await INTAKE.handle(conv, turn(text, **kwargs))
    return [say.id for say in conv.replies]


def texts(conv: FlowConversation) -> list[str]:
    params = STANDARD | {"lines": "LINES"}
    return [copy.render(say.id, conv.language, params | say.params) for say in conv.replies]


async def script(conv: FlowConversation, steps: list[tuple[str, str | None]]) -> None:
    """Run (texter says, Haven's reply contains) pairs; None means Haven stays quiet."""
    for text, expect in steps:
        await send(conv, text)
        said = "\n".join(texts(conv))
        if expect is None:
            assert said == "", (text, said)
        else:
            assert expect.casefold() in said.casefold(), (text, expect, said)


# ── Getting to each state, only through the flow ──────────────────────────────────────
async def drive_to(state: str) -> FlowConversation:
    conv = FlowConversation()
    path = {
        "new": [],
        "safety_check": ["hi"],
        "paused": ["hi", "no"],
        "need": ["hi", "yes"],
        "screening": ["hi", "yes", "1"],
        "location": ["hi", "yes", "4"],
        "queued": ["hi", "yes", "4", "skip"],
        "with_advocate": ["hi", "yes", "4", "skip"],
        "closed": ["hi", "yes", "4", "skip"],
        "expired": ["hi"],
        "exited": ["hi", "EXIT"],
        "after_hours": [],
        "opted_out": ["hi", "STOP"],
        "confirm_delete": ["hi", "DELETE"],
    }[state]
    for text in path:
        await send(conv, text)
    if state == "after_hours":
        await send(conv, "hi", is_open=False)
    if state in ("with_advocate", "closed"):
        await INTAKE.advocate(conv, "claim")
    if state == "closed":
        await INTAKE.advocate(conv, "close")
    if state == "expired":
        await INTAKE.timer(conv, "expire", NOW)
    conv.replies.clear()
    conv.effects.clear()
    assert conv.state == state
    return conv


@pytest.mark.parametrize("state", STATES)
async def test_every_state_is_reachable_from_new(state: str) -> None:
    """Each state can be reached from `new` through handle/timer/advocate calls."""
    await drive_to(state)


def test_the_table_itself_reaches_every_state() -> None:
    """The table validator (reachability, fallbacks) accepts the real table."""
    validate_table(STATES, TABLE)
    assert set(INTAKE.states) == set(STATES)


# ── Global keywords in every state ────────────────────────────────────────────────────
INTAKE_ASKING = {"safety_check", "need", "screening", "location", "paused", "after_hours"}
ENDED = {"closed", "expired", "exited"}
PROMPT = {
    "safety_check": ["safety_question"],
    "paused": ["safety_question"],
    "need": ["need_question"],
    "screening": ["q_weapon"],
    "location": ["location_question"],
    "queued": ["queue_update"],
    "after_hours": ["after_hours"],
}


def expected(state: str, word: str) -> tuple[str, list[str], list[str]]:
    """The documented result of one keyword in one state: (state, replies, effects)."""
    if state == "confirm_delete":
        if word == "DELETE":
            return "exited", ["deleted"], ["delete_all"]
        # Anything else: back to where it was (safety_check here), nothing deleted, and the
        # message handled there. STOP and EXIT carry their own single line.
        back_state, back_replies, back_effects = expected("safety_check", word)
        lead = [] if word in ("STOP", "EXIT") else ["not_deleted"]
        return back_state, lead + back_replies, back_effects
    if word == "STOP":
        return "opted_out", [] if state == "opted_out" else ["stopped"], []
    if word == "EXIT":
        return "exited", [] if state == "opted_out" else ["exited"], ["purge"]
    if word == "DELETE":
        return "confirm_delete", ["confirm_delete"], []
    if word == "START":
        if state == "opted_out":
            return "safety_check", ["started"], []
        if state == "new":
            return "safety_check", ["welcome"], []
        if state == "paused":
            return "safety_check", ["safety_question"], []
        return state, PROMPT.get(state, []), []
    if word == "ESPAÑOL":
        if state == "new":
            return "safety_check", ["welcome"], []
        if state == "paused":
            return "safety_check", ["safety_question"], []
        return state, PROMPT.get(state, []) if state != "opted_out" else [], []
    if word == "HELP":
        if state in INTAKE_ASKING or state == "new":
            return "queued", ["help", "queued"], ["enqueue"]
        return state, ["help"], []  # held too: carriers require an answer to HELP
    if word == "AGENT":
        if state == "new":
            return "queued", ["opening_short", "queued"], ["enqueue"]
        if state in INTAKE_ASKING:
            return "queued", ["queued"], ["enqueue"]
        if state == "queued":
            return state, ["queue_update"], []
        return state, [], []
    raise AssertionError(word)


@pytest.mark.parametrize("word", ["STOP", "START", "HELP", "ESPAÑOL", "AGENT", "EXIT", "DELETE"])
@pytest.mark.parametrize("state", STATES)
async def test_every_state_handles_every_global_keyword(state: str, word: str) -> None:
    """Drive to the state, send the keyword, and check state, replies and effects."""
    conv = await drive_to(state)
    replies = await send(conv, word)
    assert (conv.state, replies, conv.effects) == expected(state, word)
    if word == "STOP":
        assert conv.opted_out
    if word == "ESPAÑOL":
        assert conv.language == "es"
    if word == "DELETE" and state != "confirm_delete":
        assert conv.effects == []  # nothing deleted before the confirmation


async def test_keywords_are_whole_message_any_case() -> None:
    """ "stop." and " Stop " opt out; "please stop" is an ordinary message."""
    conv = await drive_to("need")
    await send(conv, "please stop")
    assert conv.state == "location" and not conv.opted_out
    conv = await drive_to("need")
    assert await send(conv, " Stop. ") == ["stopped"]


# ── Scripted conversations ────────────────────────────────────────────────────────────
async def test_english_conversation_with_skips_reaches_the_queue() -> None:
    """Hi → welcome; YES; 1; skip every question; a city; then queued with position."""
    conv = FlowConversation()
    await script(
        conv,
        [
            ("hi", "safe for you to text"),
            ("YES", "What's going on?"),
            ("1", "weapon"),
            ("skip", "threatened to kill"),
            ("skip", "might try to kill"),
            ("SKIP", "under 18"),
            ("pass", "ZIP code"),
            ("Springfield", "number 3 in line, about 12 min"),
        ],
    )
    assert conv.state == "queued"
    assert conv.effects == ["enqueue"]
    assert conv.safe_to_text is True
    assert conv.need == "hurt" and conv.location == "Springfield"
    assert conv.answers == {
        "weapon": "skip",
        "threats_kill": "skip",
        "might_kill": "skip",
        "under_18": "skip",
    }
    assert conv.priority == 4 and conv.signals == []


async def test_spanish_conversation_reaches_the_queue() -> None:
    """A Spanish texter (language set by the engine) goes through in Spanish with skips."""
    conv = FlowConversation(language="es")
    await script(
        conv,
        [
            ("hola", "¿Es seguro para ti escribir"),
            ("sí", "¿Qué pasa?"),
            ("2", "menos de 18"),
            ("no", "Puedes irte"),
            ("no", "pasaporte"),
            ("saltar", "debes dinero"),
            ("si", "ZIP code"),
            ("SALTAR", "Tu lugar en la fila: 3"),
        ],
    )
    assert conv.state == "queued" and conv.effects == ["enqueue"]
    assert conv.need == "control" and conv.location is None
    assert conv.signals == ["screen:not_free_to_leave", "screen:debt"]


async def test_switching_language_mid_intake_repeats_the_question() -> None:
    """ESPAÑOL during the need question: language becomes es and the question is asked
    again in Spanish; ENGLISH switches back."""
    conv = await drive_to("need")
    await send(conv, "español")
    assert conv.language == "es" and "¿Qué pasa?" in texts(conv)[0]
    await send(conv, "ENGLISH")
    assert conv.language == "en" and "What's going on?" in texts(conv)[0]
    assert conv.state == "need"


async def test_lethality_yes_raises_priority_and_asks_about_choking() -> None:
    """A yes to a first-three Lethality Screen question raises priority to 2, adds a
    signal, and (screened in) the next question is choking; at most three are asked."""
    conv = await drive_to("screening")
    assert await send(conv, "no") == ["q_threats_kill"]
    assert await send(conv, "yes") == ["q_choked"]
    assert conv.priority == 2 and conv.signals == ["screen:threats_kill"]
    assert await send(conv, "yes") == ["q_under_18"]
    assert "screen:choked" in conv.signals
    assert await send(conv, "no") == ["location_question"]
    assert conv.state == "location"


async def test_choking_alone_does_not_raise_priority() -> None:
    """Only the first three questions screen in; with none yes, three are asked."""
    conv = await drive_to("screening")
    for _ in range(3):
        await send(conv, "no")
    assert conv.replies[0].id == "q_under_18"
    assert "choked" not in conv.answers and conv.priority == 4


async def test_youth_in_a_violent_home_gets_the_trafficking_questions() -> None:
    """Under 18 in the partner/family violence path: youth_at_risk, then the youth
    trafficking questions (starting with commercial sex); a minor in commercial sex is routed
    first (P1), as a youth at risk, with the trafficking label."""
    conv = await drive_to("screening")
    for _ in range(3):
        await send(conv, "skip")
    assert await send(conv, "I'm 15") == ["q_minor_sex"]
    assert "youth_at_risk" in conv.signals and "screen:under_18" in conv.signals
    assert await send(conv, "yes") == ["q_free_to_leave"]
    assert conv.priority == 1 and "trafficking" in conv.labels
    assert conv.data["priority_basis"] == "screening"
    await send(conv, "skip")
    assert await send(conv, "skip") == ["location_question"]


async def test_adult_answer_skips_youth_questions() -> None:
    """An adult age ends the partner-violence path after the youth question."""
    conv = await drive_to("screening")
    for _ in range(3):
        await send(conv, "no")
    assert await send(conv, "34") == ["location_question"]
    assert conv.answers["under_18"] == "no"


async def test_free_text_need_is_read_from_triage_labels() -> None:
    """Free text at the need question uses triage: trafficking → the control path,
    no labels → other (no questions, straight to location)."""
    conv = await drive_to("need")
    assert await send(conv, "they took my papers", labels=frozenset({"trafficking"})) == [
        "q_under_18"
    ]
    assert conv.need == "control"
    conv = await drive_to("need")
    assert await send(conv, "I'm not sure what to say") == ["location_question"]
    assert conv.need == "other"


async def test_location_keeps_a_zip_or_a_short_place() -> None:
    """A ZIP is extracted; SKIP stores nothing."""
    conv = await drive_to("location")
    await send(conv, "my zip is 60614 thanks")
    assert conv.location == "60614"
    conv = await drive_to("location")
    await send(conv, "skip")
    assert conv.location is None and conv.state == "queued"


# ── Safety check ──────────────────────────────────────────────────────────────────────
async def test_unclear_safety_answer_is_asked_once_then_taken_as_unknown() -> None:
    """Free text is asked again once; a second unclear answer moves on with
    safe_to_text still None, so no unprompted text is ever allowed."""
    conv = await drive_to("safety_check")
    assert await send(conv, "who is this") == ["safety_again"]
    assert await send(conv, "hmm") == ["need_question"]
    assert conv.state == "need" and conv.safe_to_text is None
    conv.replies.clear()
    await INTAKE.timer(conv, "nudge", NOW)
    assert conv.replies == []


async def test_disclosure_at_safety_check_goes_to_the_questions() -> None:
    """Telling us what is wrong instead of YES/NO is taken as an unreliable yes and goes
    straight to that need's questions, without asking the need."""
    conv = await drive_to("safety_check")
    assert await send(conv, "he hits me", labels=frozenset({"abuse"})) == ["q_weapon"]
    assert conv.need == "hurt" and conv.safe_to_text is None


async def test_no_pauses_and_nothing_is_sent_unprompted() -> None:
    """NO → paused (safe_to_text False); paused is not nudge-eligible and a nudge timer
    says nothing; any message later asks the safety question again."""
    conv = await drive_to("safety_check")
    assert await send(conv, "no") == ["paused"]
    assert conv.state == "paused" and conv.safe_to_text is False
    assert "paused" not in INTAKE.nudge_states
    conv.replies.clear()
    await INTAKE.timer(conv, "nudge", NOW)
    assert conv.replies == [] and conv.state == "paused"
    assert await send(conv, "ok now") == ["safety_question"]
    assert conv.state == "safety_check"


async def test_one_nudge_only_when_safe() -> None:
    """After YES, one nudge in a question state; the second timer says nothing."""
    conv = await drive_to("need")
    await INTAKE.timer(conv, "nudge", NOW)
    assert [s.id for s in conv.replies] == ["nudge"]
    conv.replies.clear()
    await INTAKE.timer(conv, "nudge", NOW)
    assert conv.replies == []


async def test_expire_is_quiet_and_only_for_intake() -> None:
    """expire moves intake states to expired with no text; queued is untouched."""
    conv = await drive_to("location")
    await INTAKE.timer(conv, "expire", NOW)
    assert conv.state == "expired" and conv.replies == []
    conv = await drive_to("queued")
    await INTAKE.timer(conv, "expire", NOW)
    assert conv.state == "queued"


# ── Queue, advocate, after hours ──────────────────────────────────────────────────────
async def test_queued_answers_only_raised_priority_or_wait_questions() -> None:
    """In the queue Haven is quiet, except when priority rose or the wait is asked."""
    conv = await drive_to("queued")
    assert await send(conv, "he just left") == []
    assert await send(conv, "how long will it be?") == ["queue_update"]
    assert await send(conv, "¿cuánto falta?") == ["queue_update"]
    assert await send(conv, "he came back", raised=True) == ["queue_update"]
    assert conv.state == "queued" and conv.effects == []


async def test_held_conversation_is_silent_except_carrier_and_safety_keywords() -> None:
    """With an advocate: messages and AGENT get nothing; a language switch is silent;
    HELP gets the carrier help text and STOP still confirms (carriers require both)."""
    conv = await drive_to("with_advocate")
    assert conv.held
    for text in ("hello?", "AGENT", "how long"):
        assert await send(conv, text) == []
    assert await send(conv, "HELP") == ["help"]
    assert await send(conv, "ESPAÑOL") == [] and conv.language == "es"
    assert await send(conv, "STOP") == ["stopped"]


async def test_after_hours_promise_depends_on_safe_to_text() -> None:
    """Closed: hours and lines; "we'll text when we open" only when safe_to_text."""
    conv = FlowConversation()
    assert await send(conv, "hi", is_open=False) == ["after_hours"]
    assert await send(conv, "anyone?", is_open=False) == []
    conv = FlowConversation(safe_to_text=True)
    assert await send(conv, "hi", is_open=False) == ["after_hours_safe"]
    assert conv.state == "after_hours"
    assert await send(conv, "hello", is_open=True) == ["welcome"]
    assert conv.state == "safety_check"


async def test_stop_means_silence_until_start() -> None:
    """After STOP nothing is said (messages, AGENT, language, nudges) until START."""
    conv = await drive_to("need")
    assert await send(conv, "STOP") == ["stopped"]
    for text in ("hello", "I need someone", "AGENT", "ESPAÑOL", "STOP"):
        assert await send(conv, text) == [], text
    await INTAKE.timer(conv, "nudge", NOW)
    assert conv.replies == []
    assert await send(conv, "start") == ["started"]
    assert conv.state == "safety_check" and not conv.opted_out


async def test_delete_confirmed_deletes_and_declined_keeps() -> None:
    """DELETE asks; YES confirms (delete_all, exited); anything else goes back to the
    earlier state with nothing deleted and the message handled there."""
    conv = await drive_to("need")
    assert await send(conv, "borrar") == ["confirm_delete"]
    assert await send(conv, "sí") == ["deleted"]
    assert conv.state == "exited" and conv.effects == ["delete_all"]
    conv = await drive_to("need")
    await send(conv, "DELETE")
    assert await send(conv, "2") == ["not_deleted", "q_under_18"]
    assert conv.state == "screening" and conv.effects == []
    assert "before_delete" not in conv.data


async def test_exit_words_come_from_conversation_data() -> None:
    """conv.data['exit_keywords'] replaces EXIT/SALIR."""
    conv = await drive_to("need")
    conv.data["exit_keywords"] = ["BYE"]
    assert await send(conv, "bye!") == ["exited"]
    assert conv.effects == ["purge"]
    conv = await drive_to("need")
    conv.data["exit_keywords"] = ["BYE"]
    await send(conv, "exit")
    assert conv.state == "location"  # just an answer now


# ── Escalation (the engine saw danger) ────────────────────────────────────────────────
async def test_escalate_from_new_includes_a_short_opening() -> None:
    """From new: the short opening (org, delete this thread) and the queued copy."""
    conv = FlowConversation()
    await INTAKE.escalate(conv, turn("he has a gun"))
    assert [s.id for s in conv.replies] == ["opening_short", "queued"]
    assert conv.state == "queued" and conv.effects == ["enqueue"]
    said = texts(conv)[0]
    assert "Harbor House" in said and "delete this thread" in said


@pytest.mark.parametrize(
    "state", ["safety_check", "paused", "need", "screening", "location", "after_hours"]
)
async def test_escalate_queues_from_intake_states(state: str) -> None:
    """From every other intake state, while open: queued, enqueue, queued copy."""
    conv = await drive_to(state)
    await INTAKE.escalate(conv, turn("I want to kill myself"))
    assert (conv.state, [s.id for s in conv.replies], conv.effects) == (
        "queued",
        ["queued"],
        ["enqueue"],
    )


async def test_escalate_while_opted_out_says_how_to_reach_a_person() -> None:
    """Opted out, carriers deliver nothing until START, so no advocate could answer: the
    texter stays opted out and is told START brings a person (the engine adds 911)."""
    conv = await drive_to("opted_out")
    await INTAKE.escalate(conv, turn("he is hitting me"))
    assert (conv.state, [s.id for s in conv.replies], conv.effects) == (
        "opted_out",
        ["start_for_person"],
        [],
    )


@pytest.mark.parametrize("state", ["new", "safety_check", "need", "location", "after_hours"])
async def test_escalate_when_closed_gives_hours_and_lines_not_a_promise(state: str) -> None:
    """Closed: danger gets the after-hours text (hours and national lines), never "an
    advocate will reply in N minutes"; the texter waits for the opening at priority 1."""
    conv = await drive_to(state)
    await INTAKE.escalate(conv, turn("he has a knife", is_open=False))
    assert conv.state == "after_hours"
    # "We'll text when we open" only to a phone they said is safe.
    expected = "after_hours_safe" if conv.safe_to_text else "after_hours"
    assert [s.id for s in conv.replies] == [expected]
    assert "enqueue" not in conv.effects


async def test_agent_and_help_when_closed_do_not_promise_an_advocate() -> None:
    """AGENT or HELP while closed: hours and lines (HELP's carrier text too), no queue."""
    closed = "after_hours_safe"  # they said YES on the way to "need"
    for trigger, expected in (("agent", [closed]), ("help", ["help", closed])):
        conv = await drive_to("need")
        await INTAKE.handle(conv, turn(trigger.upper(), is_open=False))
        assert conv.state == "after_hours", trigger
        assert [s.id for s in conv.replies] == expected
        assert "enqueue" not in conv.effects


async def test_escalate_from_confirm_delete_drops_the_pending_delete() -> None:
    """Danger outranks a pending DELETE: queued, and the delete is forgotten."""
    conv = await drive_to("confirm_delete")
    await INTAKE.escalate(conv, turn("help he is here"))
    assert conv.state == "queued" and "before_delete" not in conv.data


async def test_escalate_is_refused_outside_intake() -> None:
    """Queued or held conversations are not escalated by the flow; nothing changes."""
    conv = await drive_to("queued")
    before = dataclasses.asdict(conv)
    with pytest.raises(FlowError):
        await INTAKE.escalate(conv, turn("x"))
    assert dataclasses.asdict(conv) == before


# ── Bad input and concurrency ─────────────────────────────────────────────────────────
async def test_bad_input_is_a_clear_error_and_changes_nothing() -> None:
    """Unknown state, unknown timer, bad exit list, invalid advocate event: FlowError,
    conversation unchanged."""
    conv = FlowConversation(state="limbo")
    with pytest.raises(FlowError, match="unknown state"):
        await INTAKE.handle(conv, turn("hi"))
    conv = await drive_to("need")
    before = dataclasses.asdict(conv)
    with pytest.raises(FlowError, match="timer"):
        await INTAKE.timer(conv, "snooze", NOW)
    conv.data["exit_keywords"] = "EXIT"
    before = dataclasses.asdict(conv)
    with pytest.raises(FlowError, match="exit_keywords"):
        await INTAKE.handle(conv, turn("1"))
    assert dataclasses.asdict(conv) == before
    conv = await drive_to("need")
    before = dataclasses.asdict(conv)
    with pytest.raises(FlowError):
        await INTAKE.advocate(conv, "release")
    assert dataclasses.asdict(conv) == before
    assert INTAKE.machine.models == []


async def test_many_lookalike_conversations_at_once() -> None:
    """Fifty identical fresh conversations stepped concurrently each get their own
    result, and the shared machine keeps no model afterwards."""
    convs = [FlowConversation() for _ in range(50)]
    await asyncio.gather(*(INTAKE.handle(c, turn("hi")) for c in convs))
    assert all(c.state == "safety_check" and len(c.replies) == 1 for c in convs)
    answers = ["yes" if i % 2 else "no" for i in range(50)]
    await asyncio.gather(*(INTAKE.handle(c, turn(a)) for c, a in zip(convs, answers, strict=True)))
    assert [c.state for c in convs] == ["need" if a == "yes" else "paused" for a in answers]
    assert INTAKE.machine.models == []
    assert not hasattr(convs[0], "trigger")  # the conversation stays a plain dataclass


async def test_messages_step_the_machine_without_registering_a_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11: a message, a timer and a staff action each step the shared machine without
    transitions' add_model/remove_model (they cost more than the step itself). With both
    made to fail, a whole intake, a nudge and a claim still run, with their usual replies."""

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a model was registered with the machine")

    monkeypatch.setattr(INTAKE.machine, "add_model", refused)
    monkeypatch.setattr(INTAKE.machine, "remove_model", refused)
    conv = FlowConversation()
    assert await send(conv, "hi") == ["welcome"]
    assert await send(conv, "yes") == ["need_question"]
    conv.replies.clear()
    await INTAKE.timer(conv, "nudge", NOW)
    assert [say.id for say in conv.replies] == ["nudge"]
    conv.state = "queued"
    await INTAKE.advocate(conv, "claim")
    assert conv.state == "with_advocate"


async def test_a_step_that_fails_midway_puts_every_field_back() -> None:
    """An action that changes every field of the conversation (and a list inside its
    data) and then fails leaves the conversation exactly as it was: the rollback covers
    every field, each restored to its own place."""

    def wreck(ev: Any) -> None:
        conv = conv_of(ev)
        conv.language, conv.safe_to_text, conv.opted_out, conv.held = "es", False, True, True
        conv.priority, conv.need, conv.location = 1, "hurt", "60601"
        conv.labels.add("abuse")
        conv.signals.append("screen:weapon")
        conv.answers["weapon"] = "yes"
        conv.data["exit_keywords"].append("BYE")
        conv.data["new"] = True
        conv.replies.append(Say("welcome"))
        conv.effects.append("purge")
        raise RuntimeError("a bug in an action")

    flow = IntakeFlow((row("message", "need", "location", then=Do(wreck)), *TABLE))
    conv = FlowConversation(
        state="need",
        language="en",
        safe_to_text=True,
        priority=3,
        labels={"trafficking"},
        signals=["words"],
        need="other",
        answers={"under_18": "no"},
        location="Austin",
        data={"exit_keywords": ["EXIT"], "safety_asked_again": False},
        replies=[Say("need_question")],
        effects=["enqueue"],
    )
    before = dataclasses.asdict(conv)
    with pytest.raises(RuntimeError):
        await flow.handle(conv, turn("4"))
    assert dataclasses.asdict(conv) == before


def test_a_coroutine_callback_is_refused_when_the_flow_is_built() -> None:
    """A step runs on transitions' synchronous Machine, so a condition or action that
    would need awaiting is refused when the flow is built, not skipped at run time."""

    async def later(_ev: Any) -> bool:
        return True

    with pytest.raises(FlowTableError, match="plain functions"):
        IntakeFlow((row("message", "need", None, when=later), *TABLE))
    with pytest.raises(FlowTableError, match="plain functions"):
        IntakeFlow((row("message", "need", None, then=Do(later)), *TABLE))  # type: ignore[arg-type]


def test_a_step_completes_without_waiting_on_the_event_loop() -> None:
    """handle runs to the end on its first resumption: nothing in a step awaits, so
    concurrent messages cannot interleave inside one."""
    conv = FlowConversation()
    step = INTAKE.handle(conv, turn("hi"))
    with pytest.raises(StopIteration):
        step.send(None)
    assert conv.state == "safety_check" and [s.id for s in conv.replies] == ["welcome"]


# ── The table as data ─────────────────────────────────────────────────────────────────
def test_broken_table_with_unknown_state_is_rejected() -> None:
    """A transition to a state that does not exist is refused, by the validator and by
    building a flow from the table."""
    broken = (*TABLE, row("message", "need", "limbo"))
    with pytest.raises(FlowTableError, match="limbo"):
        validate_table(STATES, broken)
    with pytest.raises(FlowTableError):
        IntakeFlow(rows=broken)
    with pytest.raises(FlowTableError, match="ghost"):
        validate_table(STATES, (*TABLE, row("stop", "ghost", "opted_out")))


def test_table_missing_a_fallback_or_a_path_is_rejected() -> None:
    """A state that cannot answer STOP, or a state nothing leads to, is refused."""
    no_stop = tuple(r for r in TABLE if r.trigger != "stop")
    with pytest.raises(FlowTableError, match="'stop'"):
        validate_table(STATES, no_stop)
    with pytest.raises(FlowTableError, match="not reachable"):
        validate_table((*STATES, "island"), TABLE)


def test_diagram_is_mermaid_over_real_states() -> None:
    """The diagram is a mermaid state diagram whose edges join real states."""
    text = INTAKE.diagram()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    nodes = set()
    for line in lines:
        if "-->" in line:
            left, right = line.split("-->")
            nodes.add(left.strip())
            nodes.add(right.split(":")[0].strip())
    assert nodes - {"[*]", "any", "previous"} == set(STATES)


def test_message_ids_cover_every_question() -> None:
    """The flow reports every id it may say, including each screening question."""
    ids = INTAKE.message_ids
    assert {"welcome", "queued", "q_weapon", "q_minor_sex", "stopped", "nudge"} <= ids
    assert "danger_emergency" not in ids  # the engine's, not the flow's


@pytest.mark.parametrize("reply", ["SKIP", "not sure", "saltar"])
async def test_skip_at_the_safety_check_goes_on_without_a_yes(reply: str) -> None:
    """Every question can be skipped, this one too: the intake goes on, and with no YES
    on record Haven will never text them unprompted."""
    conv = await drive_to("safety_check")
    assert await send(conv, reply) == ["need_question"]
    assert conv.state == "need" and conv.safe_to_text is None


async def test_an_unanswered_delete_question_lapses_back_quietly() -> None:
    """DELETE asked mid-queue, then silence: the nudge timer takes them back to the queue
    with nothing deleted and nothing said."""
    conv = await drive_to("queued")
    await send(conv, "DELETE")
    assert conv.state == "confirm_delete"
    conv.replies.clear()
    await INTAKE.timer(conv, "nudge", NOW)
    assert (conv.state, conv.replies, conv.effects) == ("queued", [], [])
    assert "before_delete" not in conv.data


async def test_no_to_delete_is_not_taken_as_the_earlier_questions_answer() -> None:
    """At the weapon question, DELETE then "no": nothing deleted, and "no" is not recorded
    as "no weapon" (it answered our DELETE question)."""
    conv = await drive_to("screening")
    await send(conv, "DELETE")
    said = await send(conv, "no")
    assert said == ["not_deleted"] and conv.state == "screening"
    assert "weapon" not in conv.answers


async def test_danger_after_stop_then_delete_says_start_not_an_advocate() -> None:
    """STOP, DELETE, then danger: opted out still, so START is the way to a person."""
    conv = await drive_to("opted_out")
    await send(conv, "DELETE")
    conv.replies.clear()
    await INTAKE.escalate(conv, turn("he is here with a gun"))
    assert (conv.state, [s.id for s in conv.replies]) == ("opted_out", ["start_for_person"])


@pytest.mark.parametrize(("origin", "after"), [("queued", "queued"), ("screening", "expired")])
async def test_a_delete_question_open_at_expiry_lapses(origin: str, after: str) -> None:
    """If the nudge never came (timers down), expiry still closes the DELETE question:
    back to the queue, or expired mid-intake as the intake would; nothing deleted."""
    conv = await drive_to(origin)
    await send(conv, "DELETE")
    conv.replies.clear()
    await INTAKE.timer(conv, "expire", NOW)
    assert (conv.state, conv.replies, conv.effects) == (after, [], [])


# ── Screen-ins raise priority (issue: trafficking answers stayed P4) ─────────────────
@pytest.mark.parametrize(
    ("language", "answers", "question"),
    [
        ("en", ["no", "no"], "free_to_leave"),  # "no" to free to leave is the risk
        ("en", ["no", "yes", "yes"], "id_held"),
        ("en", ["no", "yes", "no", "yes"], "debt"),
        ("es", ["no", "no"], "free_to_leave"),
        ("es", ["no", "sí", "sí"], "id_held"),
        ("es", ["no", "si", "no", "si"], "debt"),
    ],
)
async def test_a_trafficking_screen_in_is_p2_with_the_label(
    language: str, answers: list[str], question: str
) -> None:
    """Menu item 2 then the adult trafficking questions, in English and Spanish: the first
    risky answer makes the texter P2 with the trafficking label, basis "screening"."""
    conv = await drive_to("need")
    conv.language = language
    conv.priority, conv.labels = 4, set()
    assert await send(conv, "2") == ["q_under_18"]
    # The menu choice itself raises (tested below): isolate the answers.
    conv.priority = 4
    conv.labels.clear()
    del conv.data["priority_basis"]
    for answer in answers:
        await send(conv, answer)
    assert conv.priority == 2 and "trafficking" in conv.labels, question
    assert conv.data["priority_basis"] == "screening"


async def test_choosing_menu_item_2_is_a_trafficking_screen_in() -> None:
    """ "2" (someone controls my work, money or papers) is P2 with the trafficking label;
    "4" (something else) changes nothing."""
    conv = await drive_to("need")
    await send(conv, "2")
    assert conv.priority == 2 and conv.labels == {"trafficking"}
    other = await drive_to("need")
    await send(other, "4")
    assert other.priority == 4 and other.labels == set()


async def test_a_harmless_screening_answer_raises_nothing() -> None:
    """Free to leave (yes), no papers held, no debt: still P4, no label, no basis."""
    conv = await drive_to("need")
    conv.priority, conv.labels = 4, set()
    await send(conv, "4")
    conv.need = "control"
    conv.state = "screening"
    for answer in ("no", "yes", "no", "no"):
        await send(conv, answer)
    assert conv.priority == 4 and conv.labels == set()
    assert "priority_basis" not in conv.data


# ── Staff actions are rows of the table ──────────────────────────────────────────────
async def test_staff_rows_step_the_conversation() -> None:
    """claim → with_advocate (held); release → queued; reassign → with_advocate; close →
    closed; open moves an after-hours texter into the queue."""
    conv = await drive_to("queued")
    await INTAKE.advocate(conv, "claim")
    assert conv.state == "with_advocate" and conv.held
    await INTAKE.advocate(conv, "release")
    assert conv.state == "queued" and not conv.held
    await INTAKE.advocate(conv, "reassign")
    assert conv.state == "with_advocate" and conv.held
    await INTAKE.advocate(conv, "close")
    assert conv.state == "closed" and not conv.held
    late = FlowConversation()
    await send(late, "hi", is_open=False)
    assert late.state == "after_hours"
    await INTAKE.advocate(late, "open")
    assert late.state == "queued" and late.effects == ["enqueue"]


async def test_staff_actions_keep_an_open_delete_question() -> None:
    """While the texter answers DELETE's question, release and close leave the question
    open and only change where a "no" returns to."""
    for kind, back in (("release", "queued"), ("close", "closed")):
        conv = await drive_to("with_advocate")
        conv.held = True
        await send(conv, "DELETE")
        assert conv.state == "confirm_delete"
        await INTAKE.advocate(conv, kind)
        assert conv.state == "confirm_delete" and not conv.held
        assert conv.data["before_delete"] == back


async def test_staff_actions_a_state_cannot_take_are_refused() -> None:
    """Claiming a texter still in intake, or reassigning a closed one: FlowError, and the
    conversation is unchanged."""
    conv = await drive_to("need")
    with pytest.raises(FlowError):
        await INTAKE.advocate(conv, "claim")
    assert conv.state == "need"
    done = await drive_to("closed")
    with pytest.raises(FlowError):
        await INTAKE.advocate(done, "reassign")
    assert done.state == "closed"

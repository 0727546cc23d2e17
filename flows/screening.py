"""The screening plan: which question comes next, from the need and the answers so far,
and what a risky answer does to priority (Lethality Screen and trafficking indicators).
Pure functions over a FlowConversation; the intake table calls them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flows import keywords
from flows.model import FlowConversation, Turn

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
ZIP = re.compile(r"\b\d{5}\b")
MAX_LOCATION = 60


# ── Screening plan: which question comes next, from the need and the answers so far ──
def need_from_labels(labels: Iterable[str], third_party: bool = False) -> str | None:
    """The need their own words disclose; someone else's suicidal thoughts are "worried
    about someone else"."""
    found = set(labels)
    if third_party and "suicide" in found:
        return "someone_else"
    if "trafficking" in found:
        return "control"
    if found & {"abuse", "emergency"}:
        return "hurt"
    return None


def need_of(text: str, labels: Iterable[str], third_party: bool = False) -> str | None:
    """The need id for an answer to the need question; None when skipped."""
    number = keywords.choice(text)
    if number is not None:
        return NEEDS[number]
    if keywords.answer(text) == "skip":
        return None
    return need_from_labels(labels, third_party) or "other"


def lethality_plan(answers: dict[str, str]) -> list[str]:
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
        plan = [*lethality_plan(answers), "under_18"]
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


def answers_after(conv: FlowConversation, turn: Turn) -> dict[str, str]:
    answers = dict(conv.answers)
    question = next_question(conv.need, answers)
    if question is not None:
        answers[question] = interpret(question, turn.text)
    return answers


def add_signal(conv: FlowConversation, signal: str) -> None:
    if signal not in conv.signals:
        conv.signals.append(signal)


def raise_priority(conv: FlowConversation, priority: int, basis: str) -> None:
    """Priority only rises; `basis` records what raised it ("screening" here, "words" when
    the engine's triage did), for the advocate's "why"."""
    if priority < conv.priority:
        conv.priority = priority
        conv.data["priority_basis"] = basis


def screen_in(conv: FlowConversation, question: str) -> None:
    """A risky answer to one screening question: its signal, and what it does to priority.
    Any of the first three Lethality Screen items, or any trafficking indicator, screens
    the texter in at P2 (trafficking indicators also carry the label); a minor in commercial
    sex is trafficking in itself and routed first, as a youth at risk (P1)."""
    if question == "free_to_leave":
        add_signal(conv, "screen:not_free_to_leave")
    else:
        add_signal(conv, f"screen:{question}")
    if question in LETHALITY:
        raise_priority(conv, SCREEN_IN_PRIORITY, "screening")
    elif question in TRAFFICKING_INDICATORS:
        conv.labels.add("trafficking")
        raise_priority(conv, SCREEN_IN_PRIORITY, "screening")
    elif question == "minor_sex":
        conv.labels.add("trafficking")
        add_signal(conv, "youth_at_risk")
        raise_priority(conv, YOUTH_AT_RISK_PRIORITY, "screening")
    elif question == "under_18" and conv.need == "hurt":
        add_signal(conv, "youth_at_risk")

"""What the dashboard shows an advocate in plain words: screening answers, triage signals
and the reason for a priority. Staff-facing only (texter-facing words live in flows/copy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flows.screening import RISK_ANSWER

# Screening answers as an advocate reads them, in the order the flow asks.
QUESTION_NAMES = {
    "weapon": "weapon used or threatened",
    "threats_kill": "threatened to kill",
    "might_kill": "thinks they might kill",
    "choked": "ever choked",
    "under_18": "under 18",
    "age": "age",
    "free_to_leave": "free to leave",
    "id_held": "ID or papers held",
    "debt": "owes a debt",
    "minor_sex": "traded sex",
}

# Triage signal names (bot/lexicon rule ids after the colon) and screening signals.
SIGNAL_NAMES = {
    # emergency
    "emergency:attempt": "attempt on their life",
    "emergency:being_hurt": "being hurt now",
    "emergency:call_police": "asks for police",
    "emergency:escalated": "danger is present now",
    "emergency:hiding": "hiding from someone",
    "emergency:imminent": "danger is imminent",
    "emergency:injury": "injured",
    "emergency:intruder": "someone breaking in",
    "emergency:locked_in": "locked in",
    "emergency:overdose": "overdose",
    "emergency:present": "abuser there now",
    "emergency:self_injury": "hurting themself now",
    "emergency:threat_to_kill": "threat to kill",
    "emergency:violence": "violence now",
    "emergency:weapon": "gun or weapon",
    # suicide
    "suicide:ideation": "thinking of suicide",
    "suicide:plan": "suicide plan",
    "suicide:self_harm": "self-harm",
    "suicide:self_hit": "hitting themself",
    "suicide:third_party": "someone else is suicidal",
    # trafficking
    "trafficking:coercion": "forced or coerced",
    "trafficking:commercial_sex": "made to trade sex",
    "trafficking:confinement": "not free to leave",
    "trafficking:controller": "a boss or pimp controls them",
    "trafficking:debt": "held by a debt",
    "trafficking:escaped": "escaped someone",
    "trafficking:forced_labour": "forced labour",
    "trafficking:immigration_threat": "threatened with immigration",
    "trafficking:minor": "a minor",
    "trafficking:named": "says trafficking",
    "trafficking:papers_held": "passport or ID held",
    # abuse
    "abuse:control": "controlled by a partner",
    "abuse:custody_threat": "custody threatened",
    "abuse:demoted": "abuse (not an emergency now)",
    "abuse:fear": "afraid of someone",
    "abuse:held": "not let leave",
    "abuse:home_bad": "unsafe at home",
    "abuse:immigration_threat": "threatened with immigration",
    "abuse:intimidation": "intimidated",
    "abuse:kids_papers": "children's papers held",
    "abuse:marks": "marks or bruises",
    "abuse:named": "says abuse",
    "abuse:partner_exploits": "partner makes them sell sex or work",
    "abuse:resolved": "says the abuse stopped",
    "abuse:seeking_help": "wants to leave safely",
    "abuse:stalking": "stalked",
    "abuse:suicide_threat": "abuser threatens suicide",
    "abuse:threats": "threatened",
    "abuse:violence": "violence",
    "abuse:weapon_access": "abuser has a weapon",
    # present-danger context
    "context:abuser_present": "abuser present",
    "context:injured": "injured",
    "context:urgent": "says it is urgent",
    # screening answers
    "screen:weapon": "screening: weapon used or threatened",
    "screen:threats_kill": "screening: threatened to kill",
    "screen:might_kill": "screening: thinks they might kill",
    "screen:choked": "screening: ever choked",
    "screen:not_free_to_leave": "screening: not free to leave",
    "screen:under_18": "screening: under 18",
    "screen:id_held": "screening: ID or papers held",
    "screen:debt": "screening: owes a debt",
    "screen:minor_sex": "screening: a minor who traded sex",
    "screen:lethality": "Lethality Screen: screened in",
    "screen:trafficking": "trafficking screen: screened in",
    "screen:trafficking_minor": "trafficking screen: a minor in commercial sex",
    "youth_at_risk": "a young person being hurt",
}
# Prefixes triage puts before a rule id when it weighed the words differently.
QUALIFIERS = {
    "negated": "said not",
    "past": "in the past",
    "recent": "recently",
    "hypothetical": "if",
    "model": "the model reads",
}
# Signals that explain nothing to an advocate (idiom and filter bookkeeping).
HIDDEN_PREFIXES = ("idiom:", "filter:")

BASIS_NAMES = {
    "words": "their words",
    "screening": "screening answer",
    "aging": "waited (aging)",
    "none": "",
}


@dataclass(frozen=True)
class Answer:
    question: str  # plain words
    value: str  # as the texter answered: "yes", "no", "skip", or a value such as an age
    risky: bool  # the answer that is a risk signal for this question


def readable_answers(answers: dict[str, Any]) -> list[tuple[str, str]]:
    """(question in plain words, answer), in the order the flow asks, unknown keys last."""
    return [(a.question, a.value) for a in screening(answers)]


def screening(answers: dict[str, Any]) -> list[Answer]:
    order = list(QUESTION_NAMES)
    known = sorted((k for k in answers if k in QUESTION_NAMES), key=order.index)
    rest = sorted(k for k in answers if k not in QUESTION_NAMES)
    return [
        Answer(
            QUESTION_NAMES.get(k, k.replace("_", " ")),
            str(answers[k]),
            k in RISK_ANSWER and str(answers[k]).lower() == RISK_ANSWER[k],
        )
        for k in known + rest
    ]


def signal_words(signal: str) -> str:
    """One triage or screening signal id as a phrase ("" for bookkeeping an advocate need
    not read)."""
    if signal.startswith(HIDDEN_PREFIXES):
        return ""
    head, _, rest = signal.partition(":")
    if head in QUALIFIERS and rest:
        inner = signal_words(rest) or rest.replace("_", " ")
        return f"{QUALIFIERS[head]}: {inner}"
    if signal in SIGNAL_NAMES:
        return SIGNAL_NAMES[signal]
    return (rest or head).replace("_", " ")


def signals_words(signals: list[str]) -> list[str]:
    """Each signal as a phrase, once each, in the order they came."""
    return list(dict.fromkeys(w for w in map(signal_words, signals) if w))


def basis_words(basis: str) -> str:
    return BASIS_NAMES.get(basis, basis)

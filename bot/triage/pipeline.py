"""One message through triage: language, normalised words, the rules' reading, then the
model's second opinion, combined into a Triage.

The model (bot.triage.model) may add a label the rules missed, never remove one, and never
where the rules saw that label negated, in the past, hypothetical, or (for danger) inside an
idiom or beside laughter. Everything loads on first use; `warm()` loads it all at once.
"""

from __future__ import annotations

from bot.triage.lexicon import get_lexicon
from bot.triage.match import match
from bot.triage.model import Model, get_model
from bot.triage.normalise import detect_language, tokens
from bot.triage.text import BOUNDARY, fold
from bot.triage.verdict import DANGER, Triage, priority_for
from bot.vocabulary import LANGUAGES

_MODEL_VETOES = ("negated", "past", "hypothetical")  # qualifiers the model cannot read
# A model-only danger label needs one cue word of these labels in the text (model.cues).
_SUPPORT = {"emergency": ("emergency", "suicide"), "suicide": ("suicide", "emergency")}
# Only on short texts, where each feature weighs most (the features are L2-normalised) and a
# few function words can carry a vote; on longer ones the check cost recall in the
# cross-writer runs and bought nothing.
CUE_MAX_WORDS = 8
# A rule's own danger reading ("context:abuser_present" in "i cant talk hes here") is
# lexical support as good as a cue word.
_RULE_SUPPORT = frozenset({"context", "emergency", "suicide"})
MODEL_MIN_WORDS = 3
# near_danger: the model's emergency or suicide probability at least this share of its
# threshold, though under it. Chosen with the cross-writer runs (tools.train_triage
# --cross): 0.5 asked 6-7 % of messages with no danger, 0.7 asks 3-4 %.
NEAR_BAND = 0.7
# Signals that read as danger held back by a qualifier: a threat in the future or an "if",
# a danger word in a joke. Worth one plain question, never the 911 line itself.
_NEAR_SIGNALS = ("hypothetical:emergency:", "hypothetical:suicide:", "recent:emergency:")
# Suicide about someone else: the rules' own rule, or, when only the model read suicide,
# words about another person outnumbering the texter's own ("my roommate has been counting
# her pills" against "what do i do"). "my"/"mi" say nothing: "my friend" is someone else.
THIRD_PARTY = "third_party"
# Spanish drops the pronoun, so its commonest first-person verbs count as the texter's own.
_SELF = frozenset(
    "i im me myself mine yo conmigo matarme morirme suicidarme tengo estoy quiero pienso "
    "voy puedo siento regale conte hice necesito".split()
)
_OTHERS = frozenset(
    "she he shes hes her him his herself himself they them their says said saying "
    "friend son daughter brother sister mom dad roommate coworker girlfriend boyfriend wife "
    "husband grandpa grandma ella su sus dice dijo amiga amigo hijo hija hermano hermana "
    "mama papa novio novia primo prima esposo esposa abuelo abuela companero companera".split()
)


def warm() -> int:
    """Load the lexicon and the model and compile every pattern now, not on some texter's
    message (serve calls this before it listens); returns how many patterns there are."""
    get_model()
    return get_lexicon().warm()


def feature_input(text: str, language: str | None = None) -> tuple[list[str], str]:
    """What the model reads: normalised words (no boundaries) and the folded text."""
    words = tokens(text, language or detect_language(text))
    return [w for w in words if w != BOUNDARY], fold(text)


def _model_reading(
    model: Model | None, words: list[str], folded: str, signals: set[str]
) -> tuple[set[str], bool]:
    """Labels the model adds, and whether its danger vote came close without reaching the
    bar. Never a label the rules saw negated, past or hypothetical, and never danger where
    an idiom or laughter was found ("this traffic is killing me lol")."""
    if model is None or len(words) < MODEL_MIN_WORDS:
        return set(), False  # a word or two ("START", "ok") is the rules' and keywords' to read
    probabilities = model.probabilities_of(words, folded)
    found = {lab for lab, bar in model.bars if probabilities[lab] >= bar}
    if not any(s.split(":")[0] in _RULE_SUPPORT for s in signals):
        found -= _unsupported(model, found, words)
    near = any(
        NEAR_BAND * bar <= probabilities[lab] < bar for lab, bar in model.bars if lab in DANGER
    )
    # An idiom makes the model's danger vote too weak alone; laughter ("lol", "jaja", 😂)
    # only its emergency vote: "i want to die lol" is still suicide (issue 9, settled).
    vetoed = {s.split(":")[1] for s in signals if s.split(":")[0] in _MODEL_VETOES}
    if any(s.startswith("idiom:") for s in signals):
        vetoed |= DANGER
    elif "lol" in words:
        vetoed.add("emergency")
    added = found - vetoed
    return added, near


def _unsupported(model: Model, found: set[str], words: list[str]) -> set[str]:
    """The danger labels the model voted for on a short text with no cue word of danger
    and no rule's danger reading: letter grams and function words alone ("how long will it
    take", "im still here", "cuanto se tarda") are no evidence, however the weights add
    up."""
    if not model.cues or len(words) > CUE_MAX_WORDS:
        return set()
    present = frozenset(words)
    return {
        lab
        for lab in found & DANGER
        if all(model.cues.get(other, present).isdisjoint(present) for other in _SUPPORT[lab])
    }


def read(text: str, model: Model | None, language: str | None = None) -> Triage:
    """`triage` with a given model (the training tool scores candidate models with it)."""
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES} or None, not {language!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    lang = language or detect_language(text)
    words = tokens(text, lang)
    labels, signals = match(words, get_lexicon())
    plain = [w for w in words if w != BOUNDARY]
    added, near = _model_reading(model, plain, fold(text), signals)
    for label in added - labels:
        labels.add(label)
        signals.add(f"model:{label}")
    if "suicide" in labels and _about_someone_else(plain, signals):
        signals.add(THIRD_PARTY)
    frozen = frozenset(labels)
    danger = bool(frozen & DANGER)
    near = not danger and (near or any(s.startswith(_NEAR_SIGNALS) for s in signals))
    return Triage(frozen, priority_for(frozen), lang, tuple(sorted(signals)), near)


def _about_someone_else(words: list[str], signals: set[str]) -> bool:
    if "suicide:third_party" in signals:
        return True
    if any(s.startswith("suicide:") for s in signals):
        return False  # a rule read the texter's own risk
    others = sum(w in _OTHERS for w in words)
    return others > sum(w in _SELF for w in words)


def triage(text: str, language: str | None = None) -> Triage:
    return read(text, get_model(), language)

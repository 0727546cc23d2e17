"""One message through triage: language, normalised words, the rules' reading, then the
model's second opinion, combined into a Triage.

The model (bot.triage.model) may add a label the rules missed, never remove one, and never
where the rules saw that label negated, in the past, hypothetical, or (for danger) inside an
idiom or beside laughter. Everything loads on first use; `warm()` loads it all at once.
"""

from __future__ import annotations

from bot.triage.lexicon import get_lexicon
from bot.triage.match import match
from bot.triage.model import features, get_model
from bot.triage.normalise import detect_language, tokens
from bot.triage.text import BOUNDARY, fold
from bot.triage.verdict import DANGER, Triage, priority_for
from bot.vocabulary import LANGUAGES

_MODEL_VETOES = ("negated", "past", "hypothetical")  # qualifiers the model cannot read
MODEL_MIN_WORDS = 3


def warm() -> int:
    """Load the lexicon and the model and compile every pattern now, not on some texter's
    message (serve calls this before it listens); returns how many patterns there are."""
    get_model()
    return get_lexicon().warm()


def feature_input(text: str, language: str | None = None) -> tuple[list[str], str]:
    """What the model reads: normalised words (no boundaries) and the folded text."""
    words = tokens(text, language or detect_language(text))
    return [w for w in words if w != BOUNDARY], fold(text)


def _model_labels(words: list[str], folded: str, signals: set[str]) -> set[str]:
    """Labels the model adds: never one the rules saw negated, past or hypothetical, and
    never danger where an idiom or laughter was found ("this traffic is killing me lol")."""
    model = get_model()
    plain = [w for w in words if w != BOUNDARY]
    if model is None or len(plain) < MODEL_MIN_WORDS:
        return set()  # a word or two ("START", "ok") is the rules' and keywords' to read
    found = model.labels(features(plain, folded))
    # An idiom, or laughter ("lol", "jaja", 😂), makes the model's danger vote too weak alone.
    idiom = "lol" in plain or any(s.startswith("idiom:") for s in signals)
    vetoed = {s.split(":")[1] for s in signals if s.split(":")[0] in _MODEL_VETOES}
    return {label for label in found if label not in vetoed and not (idiom and label in DANGER)}


def triage(text: str, language: str | None = None) -> Triage:
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES} or None, not {language!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    lang = language or detect_language(text)
    words = tokens(text, lang)
    labels, signals = match(words, get_lexicon())
    for label in _model_labels(words, fold(text), signals) - labels:
        labels.add(label)
        signals.add(f"model:{label}")
    frozen = frozenset(labels)
    return Triage(frozen, priority_for(frozen), lang, tuple(sorted(signals)))

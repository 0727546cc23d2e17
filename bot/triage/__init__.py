"""Danger and need detection for one message (DESIGN.md section 5).

`triage(text, language=None) -> Triage` is the whole interface; the rest is re-exported
for the CLI, the tests and the training tool. The modules, bottom layer first (each imports
only those above it, so there is no cycle):

  verdict    labels, DANGER, priority, the Triage result
  text       accent folding, stretched letters, token shapes
  model      the learned second opinion: pure-Python inference over model.json.gz
  lexicon    the TOML lexicons and their pattern language, loaded on first use
  normalise  language detection, SMS spelling, laughter, typo repair
  match      the rule matcher: idioms, negation, tense, escalation
  pipeline   one message through all of them, and `warm()` for serve
  cli        `python -m bot triage`

The knowledge lives in bot/lexicon/*.toml as readable phrase patterns (syntax in
bot.triage.lexicon); the weights in bot/lexicon/model.json.gz. Both load on first use, and
patterns compile on theirs; `warm()` does it all before serve listens.
"""

from __future__ import annotations

from typing import Any

from bot.triage.lexicon import (
    LEXICON_DIR,
    Lexicon,
    LexiconError,
    Pattern,
    Rule,
    get_lexicon,
    load_lexicon,
)
from bot.triage.model import MODEL_PATH, Model, ModelError, features, get_model, load_model
from bot.triage.normalise import detect_language, tokens
from bot.triage.pipeline import MODEL_MIN_WORDS, feature_input, triage, warm
from bot.triage.text import BOUNDARY, MASK, fold
from bot.triage.verdict import DANGER, LABELS, Triage, priority_for
from bot.vocabulary import LANGUAGES

__all__ = [
    "BOUNDARY",
    "DANGER",
    "LABELS",
    "LANGUAGES",
    "LEXICON_DIR",
    "MASK",
    "MODEL_MIN_WORDS",
    "MODEL_PATH",
    "Lexicon",
    "LexiconError",
    "Model",
    "ModelError",
    "Pattern",
    "Rule",
    "Triage",
    "detect_language",
    "feature_input",
    "features",
    "fold",
    "get_lexicon",
    "get_model",
    "load_lexicon",
    "load_model",
    "priority_for",
    "tokens",
    "triage",
    "warm",
]


def __getattr__(name: str) -> Any:
    """LEXICON and MODEL, the module constants of the single-file bot.triage, for code that
    still imports them: loaded when first asked for (get_lexicon() and get_model() are the
    typed way)."""
    if name == "LEXICON":
        return get_lexicon()
    if name == "MODEL":
        return get_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Global keywords and short answers, English and Spanish (DESIGN.md section 4).

A keyword is the whole message: any case, accents optional, surrounding spaces and
punctuation ignored ("Stop!", " stop ", "ESPAÑOL", "espanol" all match). Words inside a
longer message are never keywords, so "please don't stop texting me" is just a message.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Literal

Keyword = Literal["stop", "start", "help", "spanish", "english", "agent", "exit", "delete"]
Answer = Literal["yes", "no", "skip", "unsure"]

# Carrier opt-out words (CTIA / Twilio defaults) plus Spanish PARAR.
STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "parar"}
)
START_WORDS = frozenset({"start", "unstop"})
HELP_WORDS = frozenset({"help", "info", "ayuda"})
SPANISH_WORDS = frozenset({"espanol", "spanish"})
ENGLISH_WORDS = frozenset({"english", "ingles"})
AGENT_WORDS = frozenset({"agent", "person", "advocate", "persona", "agente"})
DELETE_WORDS = frozenset({"delete", "borrar"})
DEFAULT_EXIT_WORDS: tuple[str, ...] = ("EXIT", "SALIR")

# Order matters only if an operator configures an exit word that collides with another
# keyword: STOP is checked first because carriers require it to always opt out.
_FIXED: tuple[tuple[Keyword, frozenset[str]], ...] = (
    ("stop", STOP_WORDS),
    ("start", START_WORDS),
    ("help", HELP_WORDS),
    ("spanish", SPANISH_WORDS),
    ("english", ENGLISH_WORDS),
    ("agent", AGENT_WORDS),
)

_YES_FIRST = frozenset(
    {
        "yes",
        "y",
        "yeah",
        "yea",
        "yep",
        "yup",
        "ya",
        "ok",
        "okay",
        "k",
        "sure",
        "si",
        "claro",
        "safe",
    }
)
_YES_PHRASES = frozenset(
    {
        "its safe",
        "it is safe",
        "is safe",
        "es seguro",
        "si es seguro",
        "estoy segura",
        "estoy seguro",
    }
)
_NO_FIRST = frozenset({"no", "n", "nope", "nah", "nop", "not", "nel"})
# "It's not safe", "isn't safe right now", "can't talk": a NO said in other words.
_NO_PHRASES = re.compile(
    r"\b(?:not|isnt|aint|no|nada|unsafe|inseguro|insegura)\b(?: \w+){0,2} ?(?:safe|segur[oa])\b"
    r"|\bunsafe\b|\b(?:cant|cannot|can not) (?:talk|text)\b|\bno puedo (?:hablar|escribir)\b"
)
_SKIP_FIRST = frozenset({"skip", "saltar", "salta", "pass", "paso", "pasar", "next", "siguiente"})
_UNSURE = frozenset(
    {
        "not sure",
        "im not sure",
        "i dont know",
        "dont know",
        "idk",
        "maybe",
        "no se",
        "nose",
        "tal vez",
        "quizas",
        "no estoy segura",
        "no estoy seguro",
    }
)
_CONFIRM_EXTRA = frozenset({"yes", "y", "si", "s"})
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "uno": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
}
_WAIT_WORDS = frozenset(
    {"wait", "waiting", "cuanto", "cuando", "espera", "esperar", "esperando", "tarda", "tardan"}
)
_WAIT_PHRASES = ("how long", "when will", "anyone there", "still there", "alguien ahi")
_EDGE_RUN = re.compile(r"[\W_]+")
_APOSTROPHES = re.compile(r"['’`´]")
_SPACES = re.compile(r"[\s\-_.]+")
_AGE = re.compile(r"\b(\d{1,2})\b")


def normalise(text: str) -> str:
    """Lower case, no accents, no apostrophes, single spaces, no surrounding punctuation."""
    memo = _MEMO.get()
    if memo is None:
        return _normalise(text)
    norm = memo.get(text)
    if norm is None:
        norm = memo[text] = _normalise(text)
    return norm


def _normalise(text: str) -> str:
    if text.isascii():
        # Most texts: NFKD leaves ASCII as it is and it has no combining marks, and
        # casefold is lower (tests/flows/test_keywords.py checks every ASCII character).
        plain = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        plain = "".join(itertools.filterfalse(unicodedata.combining, decomposed)).casefold()
    plain = _APOSTROPHES.sub("", plain)
    plain = " ".join(plain.split())
    # Surrounding punctuation, matched from each end: one `^...|...$` pattern tried the
    # trailing alternative at every position (5 us for 160 characters).
    lead = _EDGE_RUN.match(plain)
    start = lead.end() if lead else 0
    if start == len(plain):
        return ""
    trail = _EDGE_RUN.match(plain[::-1])
    return plain[start : len(plain) - trail.end()] if trail else plain[start:]


_MEMO: ContextVar[dict[str, str] | None] = ContextVar("keywords_memo", default=None)


class one_reading:  # lower case: used like a function, `with keywords.one_reading():`
    """Inside this block each distinct text is normalised once: a flow step asks several
    questions of one message (its keyword, yes/no, a menu choice, an age...). The memo is
    this block's alone (a context variable) and is gone when it ends, so no message text
    outlives the step; a block inside another shares the outer one's (so a caller can
    wrap a whole message). A class, not @contextmanager: its generator cost a
    microsecond, on every message."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = None if _MEMO.get() is not None else _MEMO.set({})

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _MEMO.reset(self._token)


def _exit_words(configured: Iterable[str] | None) -> frozenset[str]:
    words = DEFAULT_EXIT_WORDS if configured is None else configured
    if isinstance(words, str):
        # A bare string would be split into letters; refuse it rather than guess.
        raise TypeError("exit keywords must be a sequence of words, not one string")
    # The configured words (a setting, never a texter's text) are read on every message:
    # normalised once per distinct list.
    words = tuple(words)
    if all(isinstance(word, str) for word in words):
        return _normalised_words(words)
    return _normalised_words.__wrapped__(words)  # unhashable: the check below refuses it


@functools.lru_cache(maxsize=32)
def _normalised_words(words: tuple[str, ...]) -> frozenset[str]:
    out = set()
    for word in words:
        if not isinstance(word, str) or not normalise(word):
            raise TypeError(f"exit keyword must be a non-empty string, got {word!r}")
        out.add(normalise(word))
    return frozenset(out)


def keyword(text: str, exit_words: Iterable[str] | None = None) -> Keyword | None:
    """The global keyword this whole message is, or None. `exit_words` replaces the
    default quick-exit words (EXIT, SALIR) when given."""
    norm = normalise(text)
    if not norm:
        return None
    # "opt out", "stop all", "opt-out": carriers treat these as the one word.
    candidates = {norm, _SPACES.sub("", norm)}
    for name, words in _FIXED:
        if candidates & words:
            return name
    if candidates & _exit_words(exit_words):
        return "exit"
    if candidates & DELETE_WORDS:
        return "delete"
    return None


def answer(text: str) -> Answer | None:
    """A yes/no/skip answer to a question, "unsure" for "not sure", or None if unclear."""
    norm = normalise(text)
    tokens = norm.split()
    if not tokens:
        return None
    if norm in _UNSURE:
        return "unsure"
    if tokens[0] in _SKIP_FIRST:
        return "skip"
    if tokens[0] in _NO_FIRST or _NO_PHRASES.search(norm):
        return "no"
    if norm in _YES_PHRASES:
        return "yes"
    if tokens[0] in _YES_FIRST and not any(t in _NO_FIRST for t in tokens[1:]):
        return "yes"
    return None


def confirms_delete(text: str) -> bool:
    """In confirm_delete: DELETE/BORRAR or YES/SI confirm; anything else does not."""
    norm = normalise(text)
    return norm in DELETE_WORDS or norm in _CONFIRM_EXTRA


_KEEP = frozenset({"keep", "keep it", "dont delete", "conservar", "no borrar", "no lo borres"})


def declines(text: str) -> bool:
    """Whether a reply to DELETE's question only says no ("no", "keep it", "no borrar")."""
    return answer(text) == "no" or normalise(text) in _KEEP


def choice(text: str) -> int | None:
    """A menu choice 1-4 when the whole message is the number ("2", "#2", "two", "dos")."""
    norm = normalise(text)
    if norm in {"1", "2", "3", "4"}:
        return int(norm)
    return _NUMBER_WORDS.get(norm)


def age(text: str) -> int | None:
    """An age when the message states exactly one plausible number ("16", "I'm 15")."""
    found = _AGE.findall(normalise(text))
    if len(found) != 1:
        return None
    value = int(found[0])
    return value if 5 <= value <= 99 else None


def asks_about_wait(text: str) -> bool:
    """Whether a message asks how long the wait is ("how long?", "¿cuánto falta?")."""
    norm = normalise(text)
    if any(phrase in norm for phrase in _WAIT_PHRASES):
        return True
    return any(token in _WAIT_WORDS for token in norm.split())

"""Letters and tokens, before any lexicon: accent folding, stretched letters, the Spanish
sound-alike key, and the token shapes every other triage module agrees on.

This is the bottom layer of bot.triage: it imports nothing from the package, so both the
lexicon loader and the normaliser can build on it without importing each other.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

WORD_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")  # a word, with its apostrophes
TOKEN = re.compile(WORD_TOKEN.pattern + r"|[.!?;:,()\n]")  # a word or a punctuation mark
WORD = re.compile(r"[a-z0-9]+")
DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d)")  # "$10,000" is one number, not a clause break
BOUNDARY = "."  # token that stands for any punctuation: patterns and scopes stop there
MASK = "_"  # token that replaces an idiom's words

_STRETCH = re.compile(r"(.)\1+")
_ES_SOUNDS = (("ll", "y"), ("v", "b"), ("z", "s"), ("ce", "se"), ("ci", "si"), ("qu", "k"))


def fold(text: str) -> str:
    """Lowercase without accents, curly quotes made straight ("Está" -> "esta")."""
    if text.isascii():  # most texts: NFKD leaves ASCII as it is and nothing is combining
        return text.lower().replace("`", "'")
    return _fold_unicode(text)


@lru_cache(maxsize=256)  # triage folds the same message three times
def _fold_unicode(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")


@lru_cache(maxsize=16384)  # words repeat; the regular expression is the cost
def squeeze(word: str) -> str:
    """Stretched letters squeezed to one ("pleeease" -> "please", "holaaa" -> "hola")."""
    return _STRETCH.sub(r"\1", word)


def es_sound(word: str) -> str:
    """A sound-alike key for Spanish spelling slips (ll/y, b/v, s/z/c, silent h)."""
    key = word[1:] if word.startswith("h") else word
    for old, new in _ES_SOUNDS:
        key = key.replace(old, new)
    key = re.sub(r"c(?=[aou])", "k", key)
    return squeeze(key)

"""A message's words as the lexicon is written: language detection, then SMS spelling and
contractions expanded ("u", "rn", "kms", "dont"), stretched letters squeezed ("pleeease"),
laughter made one token ("jajaja", "lmao", 😂 -> "lol"), and typos of lexicon words repaired
(rapidfuzz, only for unknown tokens of five letters or more; Spanish also by a sound-alike
key, so "cuchiyo" finds "cuchillo").

A message sent in pieces ("he has\na gun") is read as one text: a line break is a boundary
only between two lines of four words or more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.triage.lexicon import Lexicon, get_lexicon
from bot.triage.text import (
    BOUNDARY,
    DIGIT_GROUP,
    TOKEN,
    WORD,
    WORD_TOKEN,
    es_sound,
    fold,
    squeeze,
)
from bot.vocabulary import LANGUAGES


def _raw_words(text: str) -> list[str]:
    return [t.replace("'", "") for t in WORD_TOKEN.findall(fold(text))]


@lru_cache(maxsize=16384)  # a word votes the same in every message
def _word_vote(word: str) -> tuple[int, int]:
    """What `word` adds to the Spanish and to the English count."""
    votes = get_lexicon().votes
    if word not in votes["es"] and word not in votes["en"]:
        word = squeeze(word)  # "holaaa"
    return votes["es"].get(word, 0), votes["en"].get(word, 0)


def detect_language(text: str) -> str:
    """'es' when Spanish function words outvote English ones; 'en' otherwise (the default)."""
    es = en = 0
    for word in _raw_words(text):
        for_es, for_en = _word_vote(word)
        es += for_es
        en += for_en
    return "es" if es > en else "en"


_CLITIC = re.compile(r"(?:ndo|[aei]r)(?:me|te|se|la|lo|le|nos|les|las|los)$")


@lru_cache(maxsize=8192)
def _repair(word: str, lang: str) -> str:
    """The lexicon word an unknown token most likely misspells, or the token itself."""
    lex = get_lexicon()
    if word in lex.known[lang] or word.isdigit():
        return word
    squeezed = lex.squeezed[lang].get(squeeze(word))
    if squeezed:
        return squeezed
    if lang == "es" and len(word) >= 4:
        sound = lex.sounds.get(es_sound(word))
        if sound:
            return sound
    if len(word) < 5 or (lang == "es" and _CLITIC.search(word)):
        # A verb with a pronoun attached ("matarse", "mirandola") is no dictionary word, and
        # one slip away from another person's ("matarme", "matandola"): never guessed at.
        return word
    # Typos of five letters or more: one slip, two from eight letters; same first letter.
    limit = 2 if len(word) >= 8 else 1
    candidates = lex.fuzzy[lang].get(word[0], [])
    best = process.extractOne(word, candidates, scorer=OSA.distance, score_cutoff=limit)
    return str(best[0]) if best else word


# Laughter, one token "lol": "jajaja", "hehe", "jsjsjs", "lool", "lmfao", "xD", "jk".
_LAUGH = re.compile(
    r"a?(?:(?:[jh]a){2,}|(?:[jh]e){2,}|(?:[jh]i){2,})[jh]?|(?:js){2,}j?|lo+l+|lmf?a+o+|rofl|x+d+|jk"
)
_LONG_LINE = 4  # words: a line break between two lines this long ends a sentence


def _join_pieces(text: str) -> str:
    """Line breaks inside a message sent in pieces ("he has\na gun") become spaces."""
    lines = text.replace("\r", "").split("\n")
    if len(lines) == 1:
        return text
    sizes = [len(WORD.findall(line)) for line in lines]
    out = [lines[0]]
    for i in range(1, len(lines)):
        long_pair = sizes[i - 1] >= _LONG_LINE and sizes[i] >= _LONG_LINE
        out.append("\n" if long_pair else " ")
        out.append(lines[i])
    return "".join(out)


# Laughing and crying-laughing emoji mark a joke as "lol" does ("holding me hostage 😂").
_LAUGH_EMOJI = re.compile("[\U0001f602\U0001f923\U0001f606\U0001f605\U0001f639\U0001f480]")


def tokens(text: str, language: str) -> list[str]:
    """Normalised words of `text`, with BOUNDARY for punctuation."""
    joins = get_lexicon().joins
    expanded = _EXPANDED[language]
    out: list[str] = []
    if not text.isascii():  # the emoji are not ASCII: most texts need no substitution
        text = _LAUGH_EMOJI.sub(" lol ", text)
    for raw in TOKEN.findall(DIGIT_GROUP.sub("", _join_pieces(fold(text)))):
        if not raw[0].isalnum():
            if out and out[-1] != BOUNDARY:
                out.append(BOUNDARY)
            continue
        word = expanded(raw)
        if out and len(word) == 1 and (out[-1], word[0]) in joins:
            out[-1] = joins[(out[-1], word[0])]
            continue
        out.extend(word)
    return out


def _expander(lang: str) -> Callable[[str], tuple[str, ...]]:
    other = "es" if lang == "en" else "en"

    @lru_cache(maxsize=16384)  # a token reads the same wherever it appears
    def expanded(raw: str) -> tuple[str, ...]:
        return tuple(_expand(raw, lang, other, get_lexicon()))

    return expanded


# One cache per language, keyed by the token alone (the cheapest key to look up).
_EXPANDED = {lang: _expander(lang) for lang in LANGUAGES}


def _expand(raw: str, lang: str, other: str, lex: Lexicon) -> Iterator[str]:
    if _LAUGH.fullmatch(raw):
        yield "lol"
        return
    for form in (raw, raw.replace("'", ""), squeeze(raw.replace("'", ""))):
        if form in lex.expand[lang]:
            yield from lex.expand[lang][form]
            return
        # The other language's shorthand only for words this language does not know
        # (Spanish "y" is "and", not English "why").
        if form in lex.expand[other] and form not in lex.known[lang]:
            yield from lex.expand[other][form]
            return
    if raw.endswith("'s"):
        raw = raw[:-2]  # possessive: "sister's" -> "sister"
    yield _repair(raw.replace("'", ""), lang)

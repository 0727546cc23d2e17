"""Danger and need detection for one message (DESIGN.md section 5).

The knowledge lives in bot/lexicon/*.toml as readable phrase patterns; this module only
normalises text and applies them. Steps for one message:

1. Normalise: lowercase, strip accents, expand SMS spelling and contractions ("u", "rn",
   "kms", "dont"), squeeze stretched letters ("pleeease") and repair typos of lexicon
   words (rapidfuzz, only for unknown tokens of five letters or more; Spanish also by a
   sound-alike key, so "cuchiyo" finds "cuchillo").
2. Mask idioms ("this traffic is killing me", "me muero de risa") so rules cannot see them.
3. Match every rule of both languages (people mix them). A match is then qualified by its
   clause: negated ("he's not here"), resolved past ("I used to cut myself"), recent past
   ("yesterday") or hypothetical ("if he hits me") can drop it or demote emergency to abuse,
   as the rule's label says (overridable per rule).
4. Violence or threats plus a present-danger context ("he's still in the house") escalate
   to emergency. The signals that fired, suppressed ones included, say why.

Pattern syntax (one pattern is one string of space-separated elements):
  word        the normalised word       word*   any word starting so
  a|b|@c      either word, or any phrase of class c ([classes] in the lexicon)
  a_b|c       "a b" or "c" (a phrase as one alternative)
  x?          the element is optional   .. / ...  up to 3 / 6 other words (never "not")
  #           any number (also as an alternative: "#|many")
  ##          a number of two digits or more ("took 30 pills", not "took 2 advil")
  $           the end of the sentence ("im gonna jump $", not "jump in the pool")

A message sent in pieces ("he has\na gun") is read as one text: a line break is a
boundary only between two lines of four words or more. Laughter ("jajaja", "lmao",
"hahaha") is one token, "lol", so idioms can tell a joke ("he'll kill me lol").
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.triage_model import LABELS, MODEL_PATH, Model, load_model
from bot.triage_model import features as model_features

DANGER = frozenset({"emergency", "suicide"})  # the labels that put 911 / 988 in the reply
LANGUAGES = ("en", "es")
LEXICON_DIR = Path(__file__).with_name("lexicon")


@dataclass(frozen=True)
class Triage:
    labels: frozenset[str] = field(default_factory=frozenset)
    priority: int = 4  # 1 emergency/suicide, 2 trafficking, 3 abuse, 4 other
    language: str = "en"  # "en" | "es"
    signals: tuple[str, ...] = ()  # short ids of what fired, e.g. "emergency:weapon"

    @property
    def danger(self) -> bool:
        return bool(DANGER & self.labels)

    def as_json(self) -> dict[str, object]:
        return {
            "labels": sorted(self.labels),
            "priority": self.priority,
            "language": self.language,
        }


class LexiconError(ValueError):
    """A lexicon file is malformed; raised at import so a bad edit never ships silently."""


# --- text normalisation -------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*|[.!?;:,()\n]")
_WORD = re.compile(r"[a-z0-9]+")
_STRETCH = re.compile(r"(.)\1+")
_DIGIT_GROUP = re.compile(r"(?<=\d)[,.](?=\d)")  # "$10,000" is one number, not a clause break
BOUNDARY = "."  # token that stands for any punctuation: patterns and scopes stop there
MASK = "_"  # token that replaces an idiom's words


def fold(text: str) -> str:
    """Lowercase without accents, curly quotes made straight ("Está" -> "esta")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")


def _squeeze(word: str) -> str:
    return _STRETCH.sub(r"\1", word)


_ES_SOUNDS = (("ll", "y"), ("v", "b"), ("z", "s"), ("ce", "se"), ("ci", "si"), ("qu", "k"))


def _es_sound(word: str) -> str:
    """A sound-alike key for Spanish spelling slips (ll/y, b/v, s/z/c, silent h)."""
    key = word[1:] if word.startswith("h") else word
    for old, new in _ES_SOUNDS:
        key = key.replace(old, new)
    key = re.sub(r"c(?=[aou])", "k", key)
    return _squeeze(key)


# --- lexicon ------------------------------------------------------------------------------

_OUTCOMES = ("drop", "keep", "abuse")
# What a qualifier does to a match, by the rule's label (a rule may override each).
_DEFAULTS: dict[str, dict[str, str]] = {
    "emergency": {"negated": "drop", "past": "abuse", "recent": "keep", "hypothetical": "abuse"},
    "suicide": {"negated": "drop", "past": "drop", "recent": "keep", "hypothetical": "keep"},
    "trafficking": {"negated": "drop", "past": "keep", "recent": "keep", "hypothetical": "keep"},
    "abuse": {"negated": "drop", "past": "keep", "recent": "keep", "hypothetical": "keep"},
    "context": {"negated": "drop", "past": "drop", "recent": "drop", "hypothetical": "drop"},
    # Labels nothing and escalates nothing: only cancels other signals ("filter:employer").
    "filter": {"negated": "drop", "past": "drop", "recent": "drop", "hypothetical": "drop"},
}


@dataclass(frozen=True)
class Rule:
    id: str  # "label:name": the signal it gives
    label: str
    patterns: tuple[Pattern, ...]
    outcomes: Mapping[str, str]
    escalates: bool  # with a present-danger context this becomes an emergency
    cancels: frozenset[str]  # signal ids this rule overrides
    needs: tuple[frozenset[str] | None, ...] = ()  # per pattern: one of these words or no match
    implies_abuse: bool = True  # an emergency from a person is abuse too (not an overdose)


@dataclass
class Lexicon:
    rules: list[Rule]
    idioms: list[tuple[str, Pattern, frozenset[str] | None]]
    markers: dict[str, list[Pattern]]  # "past" | "recent" | "hypothetical"
    negation: dict[str, int]  # cue -> how many words back it reaches
    clause_breaks: frozenset[str]  # words that end a negation scope
    contrast: frozenset[str]  # words that end a past-tense scope
    subjects: frozenset[str]  # a negation before a new subject does not reach past it
    joins: dict[tuple[str, str], str]  # two words written apart that mean one
    expand: dict[str, dict[str, tuple[str, ...]]]  # language -> token -> replacement
    votes: dict[str, dict[str, int]]  # language -> word -> weight
    known: dict[str, frozenset[str]]  # language -> words never "repaired"
    squeezed: dict[str, dict[str, str]]  # language -> squeezed form -> word
    sounds: dict[str, str]  # Spanish sound-alike key -> word
    fuzzy: dict[str, dict[str, list[str]]]  # language -> first letter -> repair targets
    # Word -> the (rule index, pattern index) of patterns that cannot match without it, and
    # the patterns no word announces: a message only tries the patterns its words allow.
    by_word: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    unindexed: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        by_word: dict[str, list[tuple[int, int]]] = {}
        unindexed = []
        for r, rule in enumerate(self.rules):
            for p, needs in enumerate(rule.needs):
                if needs is None:
                    unindexed.append((r, p))
                for word in needs or ():
                    by_word.setdefault(word, []).append((r, p))
        self.by_word = {word: tuple(slots) for word, slots in by_word.items()}
        self.unindexed = tuple(unindexed)

    def warm(self) -> int:
        """Compile every pattern now (they compile lazily); returns how many there are."""
        every = [p for rule in self.rules for p in rule.patterns]
        every += [p for _id, p, _needs in self.idioms]
        every += [p for pats in self.markers.values() for p in pats]
        for pattern in every:
            _ = pattern.compiled
        return len(every)

    def candidates(self, words: Iterable[str]) -> dict[int, list[int]]:
        """Rule index -> indexes of its patterns that the words could match, in order."""
        slots = set(self.unindexed)
        for word in words:
            slots.update(self.by_word.get(word, ()))
        out: dict[int, list[int]] = {}
        for r, p in sorted(slots):
            out.setdefault(r, []).append(p)
        return out


class Pattern:
    """A lexicon pattern, compiled on first use: compiling all of them at import took
    seconds, and a message only ever tries the few its words allow. `Lexicon.warm()`
    compiles the rest (serve does it in the background; a test checks every one)."""

    __slots__ = ("_compiled", "finditer", "search", "source", "where")

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        self.where = where
        self._compiled: re.Pattern[str] | None = None
        # Until the first call these compile; then they are the compiled pattern's own
        # methods (no wrapper on the hot path: tens of thousands of calls a second).
        self.search: Callable[[str], re.Match[str] | None] = self._first_search
        self.finditer: Callable[[str], Iterator[re.Match[str]]] = self._first_finditer

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            try:
                self._compiled = re.compile(self.source)
            except re.error as exc:  # pragma: no cover - the element checks catch it first
                raise LexiconError(f"{self.where}: {exc}") from exc
            self.search = self._compiled.search
            self.finditer = self._compiled.finditer
        return self._compiled

    def _first_search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def _first_finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)


class _Compiler:
    def __init__(self, classes: Mapping[str, list[str]], negation: Iterable[str]) -> None:
        self.classes = classes
        self.cache: dict[str, str] = {}
        cues = "|".join(sorted(re.escape(c) for c in negation))
        self.gap_word = rf"(?: (?!(?:{cues}) )[a-z0-9]+)"

    def pattern(self, source: str, where: str) -> Pattern:
        return Pattern(self.sequence(source, where, ()) + "(?= )", f"{where}: pattern {source!r}")

    def needs(self, source: str) -> frozenset[str] | None:
        """Words of which a text must hold one for `source` to match (None: no such set).

        Taken from the required element with the fewest choices, so most patterns are
        skipped without running their regular expression."""
        best: frozenset[str] | None = None
        for element in fold(source).split():
            if element.endswith("?") and len(element) > 1:
                continue
            words = self.first_words(element, ())
            if words is not None and (best is None or len(words) < len(best)):
                best = words
        return best

    def first_words(self, core: str, stack: tuple[str, ...]) -> frozenset[str] | None:
        """Words one of which starts any match of element `core` (None: not known)."""
        if core in ("..", "...", "$"):
            return None
        found: set[str] = set()
        for alt in core.split("|"):
            if alt.startswith("@"):
                name = alt[1:]
                if name in stack or name not in self.classes:
                    return None
                for entry in self.classes[name]:
                    words = self.sequence_first(fold(entry).split(), (*stack, name))
                    if words is None:
                        return None
                    found |= words
            elif alt.endswith("*") or alt.startswith("#"):
                return None
            else:
                found.add(alt.split("_")[0])
        return frozenset(found)

    def sequence_first(self, elements: list[str], stack: tuple[str, ...]) -> frozenset[str] | None:
        """First words of a sequence: an optional first element lets the next one start."""
        found: set[str] = set()
        for element in elements:
            optional = element.endswith("?") and len(element) > 1
            words = self.first_words(element[:-1] if optional else element, stack)
            if words is None:
                return None
            found |= words
            if not optional:
                return frozenset(found)
        return None  # every element optional

    def sequence(self, source: str, where: str, stack: tuple[str, ...]) -> str:
        parts = []
        for element in fold(source).split():
            optional = element.endswith("?") and len(element) > 1
            core = element[:-1] if optional else element
            frag = self.element(core, source, where, stack)
            parts.append(f"(?:{frag})?" if optional else frag)
        if not parts:
            raise LexiconError(f"{where}: empty pattern")
        return "".join(parts)

    def element(self, core: str, source: str, where: str, stack: tuple[str, ...]) -> str:
        if core in ("..", "..."):
            return self.gap_word + ("{0,3}" if core == ".." else "{0,6}")
        if core == "$":
            return rf"(?= {re.escape(BOUNDARY)} | ?$)"
        alts = []
        for alt in core.split("|"):
            if alt == "#":
                alts.append(" [0-9]+")
                continue
            if alt == "##":
                alts.append(" [0-9]{2,}")
                continue
            if alt.startswith("@"):
                alts.append(self.klass(alt[1:], where, stack))
                continue
            stem = alt.endswith("*")
            words = (alt[:-1] if stem else alt).split("_")
            if not all(_WORD.fullmatch(w) for w in words):
                raise LexiconError(f"{where}: bad word {alt!r} in pattern {source!r}")
            alts.append(" " + " ".join(words) + ("[a-z0-9]*" if stem else ""))
        return "(?:" + "|".join(alts) + ")"

    def klass(self, name: str, where: str, stack: tuple[str, ...]) -> str:
        if name in stack:
            raise LexiconError(f"{where}: class @{name} refers to itself")
        if name not in self.classes:
            raise LexiconError(f"{where}: unknown class @{name}")
        if name not in self.cache:
            # Longest phrases first so "my ex husband" is preferred to "my ex".
            entries = sorted(self.classes[name], key=lambda e: -len(e.split()))
            frags = [self.sequence(e, f"class @{name}", (*stack, name)) for e in entries]
            self.cache[name] = "(?:" + "|".join(frags) + ")"
        return self.cache[name]


def _words_of(sources: Iterable[str]) -> set[str]:
    """Plain literal words in patterns (what typo repair may aim at)."""
    found: set[str] = set()
    for source in sources:
        for element in fold(source).split():
            for alt in element.rstrip("?").split("|"):
                found.update(w for w in alt.split("_") if _WORD.fullmatch(w))
    return found


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LexiconError(f"{path.name}: {exc}") from exc


def load_lexicon(directory: Path = LEXICON_DIR) -> Lexicon:
    common = _load_toml(directory / "common.toml")
    by_lang = {lang: _load_toml(directory / f"{lang}.toml") for lang in LANGUAGES}

    classes: dict[str, list[str]] = {}
    for lang, data in by_lang.items():
        for name, entries in data.get("classes", {}).items():
            if name in classes:
                raise LexiconError(f"{lang}.toml: class @{name} is defined twice")
            classes[name] = [str(e) for e in entries]
    negation = {fold(k): int(v) for k, v in common["negation"]["cues"].items()}
    compiler = _Compiler(classes, negation)

    rules: list[Rule] = []
    idioms: list[tuple[str, Pattern, frozenset[str] | None]] = []
    literal: dict[str, set[str]] = {}
    for lang, data in by_lang.items():
        sources: list[str] = []
        for i, raw in enumerate(data.get("rule", [])):
            where = f"{lang}.toml rule #{i + 1} ({raw.get('id', '?')})"
            rules.append(_rule(raw, compiler, where))
            sources += raw["patterns"]
        for i, raw in enumerate(data.get("idiom", [])):
            where = f"{lang}.toml idiom #{i + 1}"
            idioms += [
                (str(raw["id"]), compiler.pattern(p, where), compiler.needs(p))
                for p in raw["patterns"]
            ]
        sources += [e for name in data.get("classes", {}) for e in classes[name]]
        literal[lang] = _words_of(sources)

    markers = {
        kind: [compiler.pattern(p, f"common.toml markers.{kind}") for p in pats]
        for kind, pats in common["markers"].items()
    }
    expand = {
        lang: {fold(k): tuple(fold(v).split()) for k, v in data.get("expand", {}).items()}
        for lang, data in by_lang.items()
    }
    votes = {
        lang: {fold(w): int(n) for w, n in common["language"][lang].items()} for lang in LANGUAGES
    }
    dictionary = _load_toml(directory / "known_words.toml")
    known: dict[str, frozenset[str]] = {}
    squeezed: dict[str, dict[str, str]] = {}
    fuzzy: dict[str, dict[str, list[str]]] = {}
    for lang, data in by_lang.items():
        words = set(fold(data.get("known", {}).get("words", "")).split())
        words |= set(dictionary.get(lang, {}).get("words", "").split())
        words |= literal[lang] | set(votes[lang]) | set(negation)
        words |= {w for rep in expand[lang].values() for w in rep}
        known[lang] = frozenset(words)
        squeezed[lang] = {}
        for word in sorted(words, key=lambda w: (_squeeze(w) != w, w)):
            squeezed[lang].setdefault(_squeeze(word), word)
        targets: dict[str, list[str]] = {}
        for word in sorted(literal[lang]):
            if len(word) >= 5 and not word.isdigit():
                targets.setdefault(word[0], []).append(word)
        fuzzy[lang] = targets
    sounds: dict[str, str] = {}
    for word in sorted(literal["es"]):
        if len(word) >= 4:
            sounds.setdefault(_es_sound(word), word)

    return Lexicon(
        rules=rules,
        idioms=idioms,
        markers=markers,
        negation=negation,
        clause_breaks=frozenset(fold(common["scope"]["clause_breaks"]).split()),
        contrast=frozenset(fold(common["scope"]["contrast"]).split()),
        subjects=frozenset(fold(common["scope"]["subjects"]).split()),
        joins={_pair(k): fold(v) for k, v in common["joins"].items()},
        expand=expand,
        votes=votes,
        known=known,
        squeezed=squeezed,
        sounds=sounds,
        fuzzy=fuzzy,
    )


def _pair(phrase: str) -> tuple[str, str]:
    words = fold(phrase).split()
    if len(words) != 2:
        raise LexiconError(f"common.toml joins: {phrase!r} must be two words")
    return words[0], words[1]


def _rule(raw: Mapping[str, Any], compiler: _Compiler, where: str) -> Rule:
    rid = str(raw.get("id", ""))
    label = rid.split(":", 1)[0]
    if label not in _DEFAULTS or ":" not in rid:
        raise LexiconError(f"{where}: id must be '<label>:<name>' with a known label")
    patterns = raw.get("patterns")
    if not isinstance(patterns, list) or not patterns:
        raise LexiconError(f"{where}: needs a non-empty list of patterns")
    outcomes = dict(_DEFAULTS[label])
    for kind in outcomes:
        if kind in raw:
            if raw[kind] not in _OUTCOMES:
                raise LexiconError(f"{where}: {kind} must be one of {_OUTCOMES}")
            outcomes[kind] = str(raw[kind])
    return Rule(
        id=rid,
        label=label,
        patterns=tuple(compiler.pattern(p, where) for p in patterns),
        outcomes=outcomes,
        escalates=bool(raw.get("escalates", False)),
        cancels=frozenset(raw.get("cancels", [])),
        needs=tuple(compiler.needs(p) for p in patterns),
        implies_abuse=bool(raw.get("implies_abuse", True)),
    )


LEXICON = load_lexicon()


# --- language -----------------------------------------------------------------------------


def _raw_words(text: str) -> list[str]:
    return [t.replace("'", "") for t in _TOKEN.findall(fold(text)) if t[0].isalnum()]


def _vote(words: Iterable[str], lex: Lexicon) -> str:
    es = en = 0
    for word in words:
        if word not in lex.votes["es"] and word not in lex.votes["en"]:
            word = _squeeze(word)  # "holaaa"
        es += lex.votes["es"].get(word, 0)
        en += lex.votes["en"].get(word, 0)
    return "es" if es > en else "en"


def detect_language(text: str) -> str:
    """'es' when Spanish function words outvote English ones; 'en' otherwise (the default)."""
    return _vote(_raw_words(text), LEXICON)


def priority_for(labels: frozenset[str]) -> int:
    if labels & DANGER:
        return 1
    if "trafficking" in labels:
        return 2
    if "abuse" in labels:
        return 3
    return 4


# --- tokens -------------------------------------------------------------------------------


_CLITIC = re.compile(r"(?:ndo|[aei]r)(?:me|te|se|la|lo|le|nos|les|las|los)$")


@lru_cache(maxsize=8192)
def _repair(word: str, lang: str) -> str:
    """The lexicon word an unknown token most likely misspells, or the token itself."""
    lex = LEXICON
    if word in lex.known[lang] or word.isdigit():
        return word
    squeezed = lex.squeezed[lang].get(_squeeze(word))
    if squeezed:
        return squeezed
    if lang == "es" and len(word) >= 4:
        sound = lex.sounds.get(_es_sound(word))
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
    sizes = [len(_WORD.findall(line)) for line in lines]
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
    lex = LEXICON
    other = "es" if language == "en" else "en"
    out: list[str] = []
    text = _LAUGH_EMOJI.sub(" lol ", text)
    for raw in _TOKEN.findall(_DIGIT_GROUP.sub("", _join_pieces(fold(text)))):
        if not raw[0].isalnum():
            if out and out[-1] != BOUNDARY:
                out.append(BOUNDARY)
            continue
        word = list(_expand(raw, language, other, lex))
        if out and len(word) == 1 and (out[-1], word[0]) in lex.joins:
            out[-1] = lex.joins[(out[-1], word[0])]
            continue
        out.extend(word)
    return out


def _expand(raw: str, lang: str, other: str, lex: Lexicon) -> Iterator[str]:
    if _LAUGH.fullmatch(raw):
        yield "lol"
        return
    for form in (raw, raw.replace("'", ""), _squeeze(raw.replace("'", ""))):
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


# --- matching -----------------------------------------------------------------------------


@dataclass
class _Text:
    words: list[str]
    padded: str
    starts: list[int]  # offset in `padded` of the space before each word
    clause: list[int]  # negation scope id of each word
    sentence: list[int]  # past-tense scope id of each word

    @classmethod
    def of(cls, words: list[str], lex: Lexicon) -> _Text:
        starts, offset = [], 0
        clause, sentence = [], []
        c = s = 0
        for word in words:
            starts.append(offset)
            offset += len(word) + 1
            if word == BOUNDARY or word in lex.clause_breaks:
                c += 1
            if word == BOUNDARY or word in lex.contrast:
                s += 1
            clause.append(c)
            sentence.append(s)
        return cls(words, " " + " ".join(words) + " ", starts, clause, sentence)

    def spans(self, pattern: Pattern) -> Iterator[tuple[int, int]]:
        for m in pattern.finditer(self.padded):
            if m.end() > m.start():
                first = bisect_right(self.starts, m.start()) - 1
                last = bisect_right(self.starts, m.end() - 1) - 1
                yield first, last


def _qualifier(
    text: _Text, lex: Lexicon, first: int, last: int, marks: Mapping[str, list[int]]
) -> str | None:
    """Why a match at words first..last does not stand as written, or None."""
    # Negation: a cue shortly before the match, in its clause, not behind a new subject
    # ("no he has a gun" is an answer then a statement; "he is not here" never matches).
    reach = 0 if text.words[first] in lex.subjects else 4
    for back in range(1, reach + 1):
        i = first - back
        if i < 0 or text.clause[i] != text.clause[first]:
            break
        word = text.words[i]
        if lex.negation.get(word, 0) >= back:
            return "negated"
        if word in lex.subjects:
            break
    sentence = text.sentence[first]
    for kind in ("recent", "past"):  # "last night" outweighs a habitual verb
        if any(text.sentence[i] == sentence for i in marks[kind]):
            return kind
    if any(text.clause[i] == text.clause[first] and i < first for i in marks["hypothetical"]):
        return "hypothetical"
    return None


_UNMATCHED = "unmatched"


# The learned second opinion (bot/triage_model.py); absent only while training the first one.
MODEL: Model | None = load_model() if MODEL_PATH.exists() else None
_MODEL_VETOES = ("negated", "past", "hypothetical")  # qualifiers the model cannot read
MODEL_MIN_WORDS = 3


def feature_input(text: str, language: str | None = None) -> tuple[list[str], str]:
    """What the model reads: normalised words (no boundaries) and the folded text."""
    words = tokens(text, language or detect_language(text))
    return [w for w in words if w != BOUNDARY], fold(text)


def _model_labels(words: list[str], folded: str, signals: set[str]) -> set[str]:
    """Labels the model adds: never one the rules saw negated, past or hypothetical, and
    never danger where an idiom or laughter was found ("this traffic is killing me lol")."""
    plain = [w for w in words if w != BOUNDARY]
    if MODEL is None or len(plain) < MODEL_MIN_WORDS:
        return set()  # a word or two ("START", "ok") is the rules' and keywords' to read
    found = MODEL.labels(model_features(plain, folded))
    # An idiom, or laughter ("lol", "jaja", 😂), makes the model's danger vote too weak alone.
    idiom = "lol" in plain or any(s.startswith("idiom:") for s in signals)
    vetoed = {s.split(":")[1] for s in signals if s.split(":")[0] in _MODEL_VETOES}
    return {label for label in found if label not in vetoed and not (idiom and label in DANGER)}


def triage(text: str, language: str | None = None) -> Triage:
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES} or None, not {language!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    lex = LEXICON
    lang = language or detect_language(text)
    words = tokens(text, lang)
    read = list(words)  # as written, before idioms are masked: the model reads these
    signals: set[str] = set()

    # Idioms first: their words become MASK so no rule can read them.
    text0 = _Text.of(words, lex)
    present = frozenset(words)
    for idiom_id, pattern, needs in lex.idioms:
        if needs is not None and needs.isdisjoint(present):
            continue
        for first, last in text0.spans(pattern):
            signals.add(f"idiom:{idiom_id}")
            words[first : last + 1] = [MASK] * (last + 1 - first)
    body = _Text.of(words, lex) if any(w == MASK for w in words) else text0

    marks = {
        kind: [first for p in pats for first, _ in body.spans(p)]
        for kind, pats in lex.markers.items()
    }
    fired: list[Rule] = []
    clean: set[str] = set()  # matched as written: only these escalate
    for index, slots in lex.candidates(present).items():
        rule = lex.rules[index]
        # None: a match stands as written; else why every match was qualified.
        why: str | None = _UNMATCHED
        for slot in slots:  # only patterns whose needed words the message has
            pattern = rule.patterns[slot]
            if pattern.search(body.padded) is None:
                continue  # most patterns miss; skip the span bookkeeping
            for first, last in body.spans(pattern):
                why = _qualifier(body, lex, first, last, marks)
                if why is None:
                    break
            if why is None:
                break
        if why is None:
            fired.append(rule)
            clean.add(rule.id)
            signals.add(rule.id)
        elif why != _UNMATCHED:
            outcome = rule.outcomes[why]
            signals.add(f"{why}:{rule.id}")
            if outcome == "keep":
                fired.append(rule)
                signals.add(rule.id)
            elif outcome == "abuse":
                signals.add("abuse:demoted")

    cancelled = {c for rule in fired for c in rule.cancels}
    kept = [r for r in fired if r.id not in cancelled]
    labels = {r.label for r in kept} & set(LABELS)
    harm = any(r.label == "emergency" and r.implies_abuse for r in kept)
    if ("abuse:demoted" in signals or harm) and "trafficking" not in labels:
        # Harm happening now from a person is abuse too; it keeps the texter in the right
        # team's queue when the emergency itself passes. (Harm from a trafficker is the
        # trafficking team's, and an overdose is no one else's harm.)
        labels.add("abuse")
    live = clean - cancelled
    if any(s.startswith("context:") for s in live) and any(
        r.escalates and r.id in live for r in fired
    ):
        labels.add("emergency")
        signals.add("emergency:escalated")
    signals -= cancelled
    for label in _model_labels(read, fold(text), signals) - labels:
        labels.add(label)
        signals.add(f"model:{label}")
    frozen = frozenset(labels)
    return Triage(frozen, priority_for(frozen), lang, tuple(sorted(signals)))

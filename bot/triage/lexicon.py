"""The triage lexicons (bot/lexicon/*.toml): loading, checking and indexing them, and the
pattern language they are written in. Loaded once, on first use (`get_lexicon()`); each
pattern compiles on its own first use, and `Lexicon.warm()` compiles the rest.

Pattern syntax (one pattern is one string of space-separated elements):
  word        the normalised word       word*   any word starting so
  a|b|@c      either word, or any phrase of class c ([classes] in the lexicon)
  a_b|c       "a b" or "c" (a phrase as one alternative)
  x?          the element is optional   .. / ...  up to 3 / 6 other words (never "not")
  #           any number (also as an alternative: "#|many")
  ##          a number of two digits or more ("took 30 pills", not "took 2 advil")
  $           the end of the sentence ("im gonna jump $", not "jump in the pool")

What a negation, a resolved or recent past, or a hypothetical does to a rule's match is
set by its label in _DEFAULTS below (a rule may override each).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bot.triage.text import BOUNDARY, WORD, es_sound, fold, squeeze
from bot.vocabulary import LANGUAGES

# The data files stay in the bot.lexicon package (installed with it), beside this package.
LEXICON_DIR = Path(__file__).parent.parent / "lexicon"


class LexiconError(ValueError):
    """A lexicon file is malformed; raised at import so a bad edit never ships silently."""


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
    # Per pattern: every other word set of which the text must hold one (see _Compiler.needs)
    requires: tuple[tuple[frozenset[str], ...], ...] = ()


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
    # The word sets each idiom and marker pattern needs one word of (all of them): a
    # pattern whose sets the text misses cannot match, so its expression never runs.
    idiom_requires: list[tuple[frozenset[str], ...]] = field(default_factory=list)
    marker_requires: dict[str, list[tuple[frozenset[str], ...]]] = field(default_factory=dict)
    _requires: dict[tuple[int, int], tuple[frozenset[str], ...]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        by_word: dict[str, list[tuple[int, int]]] = {}
        unindexed = []
        for r, rule in enumerate(self.rules):
            for p, needs in enumerate(rule.needs):
                if needs is None:
                    unindexed.append((r, p))
                for word in needs or ():
                    by_word.setdefault(word, []).append((r, p))
                if rule.requires and rule.requires[p]:
                    self._requires[(r, p)] = rule.requires[p]
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
        present = words if isinstance(words, frozenset) else frozenset(words)
        slots = set(self.unindexed)
        by_word = self.by_word
        for word in present:
            found = by_word.get(word)
            if found:
                slots.update(found)
        requires = self._requires
        out: dict[int, list[int]] = {}
        for slot in sorted(slots):
            if all(not need.isdisjoint(present) for need in requires.get(slot, ())):
                out.setdefault(slot[0], []).append(slot[1])
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


_PLAIN = re.compile(r"(?: [a-z0-9]+)+(?:\[a-z0-9\]\*)?| \[0-9\](?:\+|\{2,\})")


class _Compiler:
    def __init__(
        self,
        classes: Mapping[str, list[str]],
        negation: Iterable[str],
        common: Iterable[str] = (),
    ) -> None:
        self.classes = classes
        self.cache: dict[str, str] = {}
        self.common = frozenset(common)
        cues = "|".join(sorted(re.escape(c) for c in negation))
        self.gap_word = rf"(?: (?!(?:{cues}) )[a-z0-9]+)"

    def pattern(self, source: str, where: str) -> Pattern:
        return Pattern(self.sequence(source, where, ()) + "(?= )", f"{where}: pattern {source!r}")

    def needs(self, source: str) -> frozenset[str] | None:
        """Words of which a text must hold one for `source` to match (None: no such set).

        Taken from the required element least likely in a text (fewest choices, function
        words counting as very likely), so most patterns are skipped without running their
        regular expression."""
        sets = self.requirements(source)
        return sets[0] if sets else None

    def requirements(self, source: str) -> tuple[frozenset[str], ...]:
        """One word set per required element whose first words are known: a text that
        misses any of them cannot match `source`. Least likely in a text first."""
        sets: list[frozenset[str]] = []
        for element in fold(source).split():
            if element.endswith("?") and len(element) > 1:
                continue
            words = self.first_words(element, ())
            if words is not None and words not in sets:
                sets.append(words)
        return tuple(sorted(sets, key=lambda w: 1000 * len(w & self.common) + len(w)))

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
            if not all(WORD.fullmatch(w) for w in words):
                raise LexiconError(f"{where}: bad word {alt!r} in pattern {source!r}")
            alts.append(" " + " ".join(words) + ("[a-z0-9]*" if stem else ""))
        if len(alts) == 1 and _PLAIN.fullmatch(alts[0]):
            return alts[0]  # one literal needs no group: far less to compile at start
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
                found.update(w for w in alt.split("_") if WORD.fullmatch(w))
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
    votes = {
        lang: {fold(w): int(n) for w, n in common["language"][lang].items()} for lang in LANGUAGES
    }
    function_words = [w for lang in LANGUAGES for w in votes[lang]]
    function_words += fold(common["scope"]["subjects"]).split()
    compiler = _Compiler(classes, negation, [*function_words, *negation])

    rules: list[Rule] = []
    idioms: list[tuple[str, Pattern, frozenset[str] | None]] = []
    idiom_requires: list[tuple[frozenset[str], ...]] = []
    literal: dict[str, set[str]] = {}
    for lang, data in by_lang.items():
        sources: list[str] = []
        for i, raw in enumerate(data.get("rule", [])):
            where = f"{lang}.toml rule #{i + 1} ({raw.get('id', '?')})"
            rules.append(_rule(raw, compiler, where))
            sources += raw["patterns"]
        for i, raw in enumerate(data.get("idiom", [])):
            where = f"{lang}.toml idiom #{i + 1}"
            for p in raw["patterns"]:
                idioms.append((str(raw["id"]), compiler.pattern(p, where), compiler.needs(p)))
                idiom_requires.append(compiler.requirements(p)[1:])
        sources += [e for name in data.get("classes", {}) for e in classes[name]]
        literal[lang] = _words_of(sources)

    markers = {
        kind: [compiler.pattern(p, f"common.toml markers.{kind}") for p in pats]
        for kind, pats in common["markers"].items()
    }
    marker_requires = {
        kind: [compiler.requirements(p) for p in pats] for kind, pats in common["markers"].items()
    }
    expand = {
        lang: {fold(k): tuple(fold(v).split()) for k, v in data.get("expand", {}).items()}
        for lang, data in by_lang.items()
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
        for word in sorted(words, key=lambda w: (squeeze(w) != w, w)):
            squeezed[lang].setdefault(squeeze(word), word)
        targets: dict[str, list[str]] = {}
        for word in sorted(literal[lang]):
            if len(word) >= 5 and not word.isdigit():
                targets.setdefault(word[0], []).append(word)
        fuzzy[lang] = targets
    sounds: dict[str, str] = {}
    for word in sorted(literal["es"]):
        if len(word) >= 4:
            sounds.setdefault(es_sound(word), word)

    return Lexicon(
        rules=rules,
        idioms=idioms,
        markers=markers,
        idiom_requires=idiom_requires,
        marker_requires=marker_requires,
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
        requires=tuple(compiler.requirements(p)[1:] for p in patterns),
    )


@cache
def get_lexicon() -> Lexicon:
    """The lexicon every message is read with, loaded from LEXICON_DIR on first use."""
    return load_lexicon()

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
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

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
    implies_abuse: bool = True  # an emergency from a person is abuse too (not an overdose)


@dataclass
class Lexicon:
    rules: list[Rule]
    idioms: list[tuple[str, Pattern]]
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
    # Built from the above (see _index): every idiom, marker and rule pattern as one Probe,
    # idioms first, then markers, then rules, each in lexicon order, so sorted probe ids
    # are the order the matcher tries them in.
    probes: tuple[Probe, ...] = field(init=False, repr=False)
    first_marker: int = field(init=False, repr=False)  # probes[first_marker:] are no idioms
    first_rule: int = field(init=False, repr=False)  # probes[first_rule:] are rule patterns
    marker_kinds: tuple[str, ...] = field(init=False, repr=False)  # Probe.owner of a marker
    clause_ends: frozenset[str] = field(init=False, repr=False)  # clause_breaks and BOUNDARY
    sentence_ends: frozenset[str] = field(init=False, repr=False)  # contrast and BOUNDARY
    always: tuple[int, ...] = field(init=False, repr=False)  # probes no word announces
    needs: tuple[int, ...] = field(init=False, repr=False)  # Probe.need of each probe
    # word -> (bits of the word sets it belongs to, probes announced by it); see _index.
    facts: Callable[[str], tuple[int, tuple[int, ...]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.clause_ends = self.clause_breaks | {BOUNDARY}
        self.sentence_ends = self.contrast | {BOUNDARY}
        self._index()

    def _index(self) -> None:
        """Index every pattern by the words it needs, once, so a message tries only the
        patterns its words allow, with one look-up per distinct word (cached) and one
        integer test per pattern, instead of a set test per pattern and word set.

        A pattern is announced by the words of its first set (Pattern.requires, the least
        likely in a text first), so most are never looked at. Each distinct other set gets
        a bit; a text's bits are those of the sets its words belong to, and an announced
        pattern can match only where its bits (Probe.need) are all among them.
        A set entry ending in "*" is a stem: any word starting so belongs to the set."""
        self.marker_kinds = tuple(self.markers)
        owned = [(i, pattern) for i, (_id, pattern) in enumerate(self.idioms)]
        self.first_marker = len(owned)
        kinds = enumerate(self.marker_kinds)
        owned += [(k, pattern) for k, kind in kinds for pattern in self.markers[kind]]
        self.first_rule = len(owned)
        owned += [(r, p) for r, rule in enumerate(self.rules) for p in rule.patterns]

        # A pattern is looked at only when a word of its first set is present, so only
        # its other sets need bits (fewer bits, smaller integers); likeliest first, so the
        # numbering is the same from one load to the next.
        common = _function_words(self.votes, self.negation, self.subjects)
        others = {words for _owner, pattern in owned for words in pattern.requires[1:]}
        likely = sorted(others, key=lambda words: (-_likelihood(words, common), sorted(words)))
        bit_of = {words: 1 << i for i, words in enumerate(likely)}
        bits: dict[str, int] = {}
        for words, bit in bit_of.items():
            for word in words:
                bits[word] = bits.get(word, 0) | bit
        announces: dict[str, list[int]] = {}
        always: list[int] = []
        probes = []
        for number, (owner, pattern) in enumerate(owned):
            need = sum(bit_of[words] for words in pattern.requires[1:])
            probes.append(Probe(owner, pattern, need))
            if not pattern.requires:
                always.append(number)
            for word in pattern.requires[0] if pattern.requires else ():
                announces.setdefault(word, []).append(number)
                bits.setdefault(word, 0)
        self.probes = tuple(probes)
        self.needs = tuple(probe.need for probe in probes)
        self.always = tuple(always)
        exact = {w: (b, tuple(announces.get(w, ()))) for w, b in bits.items() if w[-1] != "*"}
        stems = {w[:-1]: (b, tuple(announces.get(w, ()))) for w, b in bits.items() if w[-1] == "*"}
        sizes = sorted({len(stem) for stem in stems})
        none: tuple[int, tuple[int, ...]] = (0, ())

        @lru_cache(maxsize=16384)  # a word reads the same in every message
        def facts(word: str) -> tuple[int, tuple[int, ...]]:
            found, announced = exact.get(word, none)
            for size in sizes:
                if size > len(word):
                    break
                stem = stems.get(word[:size])
                if stem is not None:
                    found |= stem[0]
                    announced += stem[1]
            return found, announced

        self.facts = facts

    def warm(self) -> int:
        """Compile every pattern now (they compile lazily); returns how many there are."""
        for probe in self.probes:
            _ = probe.pattern.compiled
        return len(self.probes)


class Probe(NamedTuple):
    """One pattern as the matcher tries it."""

    owner: int  # its index in Lexicon.idioms, Lexicon.marker_kinds or Lexicon.rules
    pattern: Pattern
    need: int  # the bits of its Pattern.requires (see Lexicon._index)


class Pattern:
    """A lexicon pattern, compiled on first use: compiling all of them at import took
    seconds, and a message only ever tries the few its words allow. `Lexicon.warm()`
    compiles the rest (serve does it in the background; a test checks every one).

    `requires` and `starts` say what a text must hold for a match (see _Compiler), so
    the matcher can skip the expression, or run it only where a match could begin."""

    __slots__ = (
        "_compiled",
        "finditer",
        "match",
        "requires",
        "search",
        "seconds",
        "source",
        "starts",
        "where",
    )

    def __init__(
        self,
        source: str,
        where: str,
        requires: tuple[frozenset[str], ...] = (),
        starts: frozenset[str] | None = None,
        seconds: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.source = source
        self.where = where
        # Word sets a text must hold one word of each for a match, least likely first.
        self.requires = requires
        # Words one of which begins every match (None: not known): a match starts at the
        # space before such a word, so the matcher tries only there.
        self.starts = starts
        # First word -> the words one of which follows it in every match beginning with
        # it (where known), so the expression need not run where another word does.
        self.seconds = seconds or {}
        self._compiled: re.Pattern[str] | None = None
        # Until the first call these compile; then they are the compiled pattern's own
        # methods (no wrapper on the hot path: tens of thousands of calls a second).
        self.search: Callable[[str], re.Match[str] | None] = self._first_search
        self.finditer: Callable[[str], Iterator[re.Match[str]]] = self._first_finditer
        self.match: Callable[[str, int], re.Match[str] | None] = self._first_match

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            try:
                self._compiled = re.compile(self.source)
            except re.error as exc:  # pragma: no cover - the element checks catch it first
                raise LexiconError(f"{self.where}: {exc}") from exc
            self.search = self._compiled.search
            self.finditer = self._compiled.finditer
            self.match = self._compiled.match
        return self._compiled

    def _first_search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def _first_finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)

    def _first_match(self, text: str, pos: int) -> re.Match[str] | None:
        return self.compiled.match(text, pos)


_PLAIN = re.compile(r"(?: [a-z0-9]+)+(?:\[a-z0-9\]\*)?| \[0-9\](?:\+|\{2,\})")


# First word -> (the second words, None if not known; whether a match can be one word).
_Pairs = dict[str, tuple[frozenset[str] | None, bool]]


def _merge_pair(pairs: _Pairs, first: str, second: frozenset[str] | None, alone: bool) -> None:
    if first in pairs:
        known, was_alone = pairs[first]
        second = None if known is None or second is None else known | second
        alone = alone or was_alone
    pairs[first] = second, alone


def _function_words(
    votes: Mapping[str, Mapping[str, int]], negation: Iterable[str], subjects: Iterable[str]
) -> frozenset[str]:
    """Words found in most texts: the language votes, negation cues and subjects."""
    return frozenset([*(w for lang in votes.values() for w in lang), *negation, *subjects])


def _plain(words: frozenset[str] | None) -> frozenset[str] | None:
    """`words` when they are all plain words; None when a stem ("ab*") is among them, as
    a set of exact words cannot say which words it stands for."""
    if words is None or any(word[-1] == "*" for word in words):
        return None
    return words


def _likelihood(words: frozenset[str], common: frozenset[str]) -> int:
    """How likely a text is to hold one of `words`, roughly (higher: more likely): more
    choices, function words (`common`) and words of one or two letters ("a", "to")
    counting as very likely."""
    return 1000 * sum(1 for w in words if w in common or len(w) <= 2) + len(words)


class _Compiler:
    def __init__(
        self,
        classes: Mapping[str, list[str]],
        negation: Iterable[str],
        common: Iterable[str] = (),
    ) -> None:
        self.classes = classes
        self.cache: dict[str, str] = {}
        self.first_cache: dict[str, frozenset[str] | None] = {}
        self.pairs_cache: dict[str, _Pairs | None] = {}
        self.common = frozenset(common)
        cues = "|".join(sorted(re.escape(c) for c in negation))
        self.gap_word = rf"(?: (?!(?:{cues}) )[a-z0-9]+)"

    def pattern(self, source: str, where: str) -> Pattern:
        elements = fold(source).split()
        return Pattern(
            self.sequence(source, where, ()) + "(?= )",
            f"{where}: pattern {source!r}",
            self.requirements(source),
            _plain(self.sequence_first(elements, ())),
            self.seconds(elements),
        )

    def seconds(self, elements: list[str]) -> dict[str, frozenset[str]]:
        """First word of a match -> the words one of which comes second in every match
        that begins with it (only where those are known: no gap or stem follows the
        first word, and a match cannot be that word alone)."""
        out: dict[str, frozenset[str]] = {}
        for first, (second, alone) in (self.pairs(elements, ()) or {}).items():
            plain = _plain(second)
            if plain is not None and not alone:
                out[first] = plain
        return out

    def pairs(self, elements: list[str], stack: tuple[str, ...]) -> _Pairs | None:
        """First word -> (the words that can come second, or None: not known; whether a
        match can be that word alone), for every first word; None: first words unknown."""
        if not elements:
            return None
        head, rest = elements[0], elements[1:]
        optional = head.endswith("?") and len(head) > 1
        found = self.element_pairs(head[:-1] if optional else head, stack)
        if found is None:
            return None
        out: _Pairs = {}
        for first, (second, alone) in found.items():
            if alone and rest:  # the head was that word alone: the rest's first comes next
                after = self.sequence_first(rest, stack)
                second = None if second is None or after is None else second | after
                alone = False
            _merge_pair(out, first, second, alone)
        if optional:  # or the head is skipped and the rest begins the match
            skipped = self.pairs(rest, stack)
            if skipped is None:
                return None
            for first, (second, alone) in skipped.items():
                _merge_pair(out, first, second, alone)
        return out

    def element_pairs(self, core: str, stack: tuple[str, ...]) -> _Pairs | None:
        """`pairs` of one element's own words."""
        if core in ("..", "...", "$"):
            return None
        out: _Pairs = {}
        for alt in core.split("|"):
            if alt.startswith("@"):
                inner = self.class_pairs(alt[1:], stack)
                if inner is None:
                    return None
                for first, (second, alone) in inner.items():
                    _merge_pair(out, first, second, alone)
            elif alt.startswith("#"):
                return None
            else:
                words = alt.split("_")
                _merge_pair(out, words[0], frozenset(words[1:2]), len(words) == 1)
        return out

    # A class's first words and pairs, worked out once (every pattern using it asks): a
    # class that refers to itself is an error raised while compiling, so the stack
    # changes no answer that stands.

    def class_first(self, name: str, stack: tuple[str, ...]) -> frozenset[str] | None:
        if name in stack or name not in self.classes:
            return None
        if name not in self.first_cache:
            found: set[str] | None = set()
            for entry in self.classes[name]:
                words = self.sequence_first(fold(entry).split(), (*stack, name))
                found = None if found is None or words is None else found | words
            self.first_cache[name] = None if found is None else frozenset(found)
        return self.first_cache[name]

    def class_pairs(self, name: str, stack: tuple[str, ...]) -> _Pairs | None:
        if name in stack or name not in self.classes:
            return None
        if name not in self.pairs_cache:
            out: _Pairs | None = {}
            for entry in self.classes[name]:
                inner = self.pairs(fold(entry).split(), (*stack, name))
                if out is None or inner is None:
                    out = None
                    continue
                for first, (second, alone) in inner.items():
                    _merge_pair(out, first, second, alone)
            self.pairs_cache[name] = out
        return self.pairs_cache[name]

    def requirements(self, source: str) -> tuple[frozenset[str], ...]:
        """One word set per required element whose first words are known: a text that
        misses any of them cannot match `source`. Least likely in a text first (fewest
        choices, function words counting as very likely), so that set, which announces
        the pattern (Lexicon._index), leaves most patterns unlooked at."""
        sets: list[frozenset[str]] = []
        for element in fold(source).split():
            if element.endswith("?") and len(element) > 1:
                continue
            words = self.first_words(element, ())
            if words is not None and words not in sets:
                sets.append(words)
        return tuple(sorted(sets, key=lambda words: _likelihood(words, self.common)))

    def first_words(self, core: str, stack: tuple[str, ...]) -> frozenset[str] | None:
        """Words one of which starts any match of element `core` (None: not known). A
        word ending in "*" stands for every word starting so (a stem in the pattern)."""
        if core in ("..", "...", "$"):
            return None
        found: set[str] = set()
        for alt in core.split("|"):
            if alt.startswith("@"):
                words = self.class_first(alt[1:], stack)
                if words is None:
                    return None
                found |= words
            elif alt.startswith("#"):
                return None
            else:
                # "a_b" starts with the word "a"; "ab*" (a stem) with any word "ab...".
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
        return _alternation(alts)

    def klass(self, name: str, where: str, stack: tuple[str, ...]) -> str:
        if name in stack:
            raise LexiconError(f"{where}: class @{name} refers to itself")
        if name not in self.classes:
            raise LexiconError(f"{where}: unknown class @{name}")
        if name not in self.cache:
            # Longest phrases first so "my ex husband" is preferred to "my ex".
            entries = sorted(self.classes[name], key=lambda e: -len(e.split()))
            frags = [self.sequence(e, f"class @{name}", (*stack, name)) for e in entries]
            self.cache[name] = _alternation(frags)
        return self.cache[name]


_PHRASE = re.compile(r"(?: [a-z0-9]+)+")
_GROUPED = 8  # alternatives: fewer are as quick to try one by one


def _alternation(alts: list[str]) -> str:
    """`(?:alt|alt|...)`, but a long list of plain phrases (" hit", " slammed me into")
    grouped by first letter: " (?:h(?:it|its)|s(?:lammed me into))". The expression
    engine tries alternatives one by one, touching each one's code, and a big class
    (@struck, @victim) appears in dozens of patterns: grouped, it tries about one group.
    The same match: an alternative's words are whole words (a space or the end follows
    each), so two with different first words never match at the same place and their
    order does not matter; alternatives keep their order within a letter's group."""
    if len(alts) < _GROUPED or not all(_PHRASE.fullmatch(alt) for alt in alts):
        return "(?:" + "|".join(alts) + ")"
    groups: dict[str, list[str]] = {}
    for alt in alts:
        groups.setdefault(alt[1], []).append(alt[2:])
    return " (?:" + "|".join(f"{c}(?:{'|'.join(rest)})" for c, rest in groups.items()) + ")"


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
    subjects = frozenset(fold(common["scope"]["subjects"]).split())
    compiler = _Compiler(classes, negation, _function_words(votes, negation, subjects))

    rules: list[Rule] = []
    idioms: list[tuple[str, Pattern]] = []
    literal: dict[str, set[str]] = {}
    for lang, data in by_lang.items():
        sources: list[str] = []
        for i, raw in enumerate(data.get("rule", [])):
            where = f"{lang}.toml rule #{i + 1} ({raw.get('id', '?')})"
            rules.append(_rule(raw, compiler, where))
            sources += raw["patterns"]
        for i, raw in enumerate(data.get("idiom", [])):
            where = f"{lang}.toml idiom #{i + 1}"
            idioms += [(str(raw["id"]), compiler.pattern(p, where)) for p in raw["patterns"]]
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
        negation=negation,
        clause_breaks=frozenset(fold(common["scope"]["clause_breaks"]).split()),
        contrast=frozenset(fold(common["scope"]["contrast"]).split()),
        subjects=subjects,
        joins={_pair(k): _one_word(v) for k, v in common["joins"].items()},
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


def _one_word(joined: str) -> str:
    # The matcher finds a match only at the space before a word (match._Text.spans): a
    # word with a space inside would hide where a match may begin.
    word = fold(joined)
    if not WORD.fullmatch(word):
        raise LexiconError(f"common.toml joins: {joined!r} must be one word")
    return word


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
        implies_abuse=bool(raw.get("implies_abuse", True)),
    )


@cache
def get_lexicon() -> Lexicon:
    """The lexicon every message is read with, loaded from LEXICON_DIR on first use."""
    return load_lexicon()

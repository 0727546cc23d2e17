"""The rule matcher: which lexicon rules a message's normalised words fire, and why.

1. Idioms are masked first ("this traffic is killing me", "me muero de risa") so no rule
   can read their words.
2. Every rule of both languages is tried (people mix them), but only the patterns whose
   needed words the message has. A match is then qualified by its clause: negated ("he's
   not here"), resolved past ("I used to cut myself"), recent past ("yesterday") or
   hypothetical ("if he hits me") can drop it or demote emergency to abuse, as the rule's
   label says (lexicon._DEFAULTS, overridable per rule).
3. Violence or threats plus a present-danger context ("he's still in the house") escalate
   to emergency. The signals that fired, suppressed ones included, say why.

Laughter arrives here as the token "lol", so idioms can tell a joke ("he'll kill me lol").
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from bot.triage.lexicon import Lexicon, Pattern, Rule
from bot.triage.text import MASK
from bot.triage.verdict import LABELS


class _Text:
    """Words as the patterns read them: joined with spaces, where each word sits, and
    (built on first use, as most messages never need them) the scopes."""

    __slots__ = ("_scopes", "lex", "nexts", "padded", "present", "starts", "where", "words")

    def __init__(self, words: list[str], lex: Lexicon) -> None:
        self.words = words
        self.lex = lex
        self.padded = " " + " ".join(words) + " "
        # Offset in `padded` of the space before each word (and one past the last).
        self.starts = list(accumulate([len(w) + 1 for w in words], initial=0))
        self.where: dict[str, list[int]] = {}  # word -> its indexes, in order
        for i, word in enumerate(words):
            self.where.setdefault(word, []).append(i)
        # The distinct words, as a set: `starts & present` is one C call over the smaller.
        self.present = frozenset(self.where)
        self.nexts = [*words[1:], ""]  # the word after each ("" after the last)
        self._scopes: tuple[list[int], list[int]] | None = None

    @property
    def clause(self) -> list[int]:
        """Negation scope id of each word."""
        return self.scopes[0]

    @property
    def sentence(self) -> list[int]:
        """Past-tense scope id of each word."""
        return self.scopes[1]

    @property
    def scopes(self) -> tuple[list[int], list[int]]:
        if self._scopes is None:
            # A scope id is the number of scope ends up to the word, itself included
            # (counted from 0, so the ids are ints, not the first word's bool).
            clause = accumulate(map(self.lex.clause_ends.__contains__, self.words), initial=0)
            sentence = accumulate(map(self.lex.sentence_ends.__contains__, self.words), initial=0)
            self._scopes = list(clause)[1:], list(sentence)[1:]
        return self._scopes

    def spans(self, pattern: Pattern) -> list[tuple[int, int]]:
        """First and last word index of each match, as pattern.finditer finds them (a
        list, not a generator: most calls find nothing, and a list costs less to make)."""
        starts = self.starts
        if pattern.starts is None:
            return [
                (bisect_right(starts, m.start()) - 1, bisect_right(starts, m.end() - 1) - 1)
                for m in pattern.finditer(self.padded)
                if m.end() > m.start()
            ]
        # Every match begins at the space before one of pattern.starts, so the expression
        # runs only there (anchored), not at every space of the text: the same matches,
        # found in the same order, as finditer's scan (which resumes where a match ended).
        found = pattern.starts & self.present
        if not found:
            return []
        # The places where a match may begin: at a word of `found`, followed by a word that
        # can come second after it (where the lexicon says which), in text order.
        seconds, where, nexts = pattern.seconds, self.where, self.nexts
        firsts: list[int] = []
        for word in found:
            second = seconds.get(word)
            if second is None:
                firsts += where[word]
            else:  # most places end here: the next word cannot be a match's second
                firsts += [i for i in where[word] if nexts[i] in second]
        if len(found) > 1:
            firsts.sort()
        out = []
        end = 0
        for first in firsts:
            at = starts[first]
            if at < end:
                continue  # inside the last match: the scan resumes after it
            hit = pattern.match(self.padded, at)
            if hit is not None:
                end = hit.end()
                out.append((first, bisect_right(starts, end - 1) - 1))
        return out


class _Marks:
    """Where the tense and mood markers stand, found on first use: most messages match
    no rule, so never ask."""

    __slots__ = ("_found", "ids", "text")

    def __init__(self, text: _Text, ids: list[int]) -> None:
        self.text = text
        self.ids = ids  # the marker probes the message's words allow
        self._found: tuple[set[int], set[int], dict[int, int]] | None = None

    def found(self) -> tuple[set[int], set[int], dict[int, int]]:
        """Sentences with a "recent" marker, sentences with a "past" one, and per clause
        the first word of its first "hypothetical" marker."""
        if self._found is None:
            text, lex = self.text, self.text.lex
            sentence, clause = text.sentence, text.clause
            by_kind: dict[str, list[int]] = {kind: [] for kind in lex.marker_kinds}
            for number in self.ids:
                probe = lex.probes[number]
                by_kind[lex.marker_kinds[probe.owner]] += [
                    first for first, _ in text.spans(probe.pattern)
                ]
            hypothetical: dict[int, int] = {}
            for i in by_kind.get("hypothetical", ()):
                hypothetical[clause[i]] = min(i, hypothetical.get(clause[i], i))
            self._found = (
                {sentence[i] for i in by_kind.get("recent", ())},
                {sentence[i] for i in by_kind.get("past", ())},
                hypothetical,
            )
        return self._found


def _qualifier(text: _Text, lex: Lexicon, first: int, marks: _Marks) -> str | None:
    """Why a match starting at word `first` does not stand as written, or None."""
    # Negation: a cue shortly before the match, in its clause, not behind a new subject
    # ("no he has a gun" is an answer then a statement; "he is not here" never matches).
    reach = 0 if text.words[first] in lex.subjects else 4
    clause = text.clause
    for back in range(1, reach + 1):
        i = first - back
        if i < 0 or clause[i] != clause[first]:
            break
        word = text.words[i]
        if lex.negation.get(word, 0) >= back:
            return "negated"
        if word in lex.subjects:
            break
    recent, past, hypothetical = marks.found()
    sentence = text.sentence[first]
    if sentence in recent:  # "last night" outweighs a habitual verb
        return "recent"
    if sentence in past:
        return "past"
    if hypothetical.get(clause[first], first) < first:
        return "hypothetical"
    return None


_UNMATCHED = "unmatched"


def _allowed(present: frozenset[str], lex: Lexicon) -> list[int]:
    """The probes (Lexicon.probes) whose needed words the message has, in order: each
    distinct word looked up once, then one integer test per pattern its words announce."""
    facts = lex.facts
    have = 0
    announced = set(lex.always)
    for word in present:
        bits, probes = facts(word)
        have |= bits
        announced.update(probes)
    needs = lex.needs
    return sorted([n for n in announced if needs[n] & have == needs[n]])


def match(words: list[str], lex: Lexicon) -> tuple[set[str], set[str]]:
    """The labels the rules give `words` (from normalise.tokens) and the signals that say
    why; cancelled signals are gone, qualified ones ("negated:...") stay."""
    signals: set[str] = set()
    body = _Text(words, lex)
    # Every pattern is allowed or not by the words as sent, idioms' words included.
    allowed = _allowed(body.present, lex)
    probes = lex.probes
    idioms = bisect_right(allowed, lex.first_marker - 1)
    rules = bisect_right(allowed, lex.first_rule - 1)

    # Idioms first, each read in the text as sent: their words become MASK so no rule can
    # read them (in a copy; the caller's words stay as read).
    masked: list[str] | None = None
    for number in allowed[:idioms]:
        probe = probes[number]
        for first, last in body.spans(probe.pattern):
            signals.add(f"idiom:{lex.idioms[probe.owner][0]}")
            if masked is None:
                masked = list(words)
            masked[first : last + 1] = [MASK] * (last + 1 - first)
    if masked is not None:
        body = _Text(masked, lex)

    marks = _Marks(body, allowed[idioms:rules])
    # Rule index -> None: a match stands as written; else why every match was qualified
    # (by the last match of its last pattern that matched, as the patterns are tried).
    why: dict[int, str | None] = {}
    for number in allowed[rules:]:
        probe = probes[number]
        if why.get(probe.owner, _UNMATCHED) is None:
            continue  # this rule already matched as written
        for first, _last in body.spans(probe.pattern):
            why[probe.owner] = _qualifier(body, lex, first, marks)
            if why[probe.owner] is None:
                break
    fired: list[Rule] = []
    clean: set[str] = set()  # matched as written: only these escalate
    for index, qualified in why.items():
        rule = lex.rules[index]
        if qualified is None:
            fired.append(rule)
            clean.add(rule.id)
            signals.add(rule.id)
        else:
            outcome = rule.outcomes[qualified]
            signals.add(f"{qualified}:{rule.id}")
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
    return labels, signals

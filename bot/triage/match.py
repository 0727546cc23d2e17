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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from bot.triage.lexicon import Lexicon, Pattern, Rule
from bot.triage.text import BOUNDARY, MASK
from bot.triage.verdict import LABELS


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


def match(words: list[str], lex: Lexicon) -> tuple[set[str], set[str]]:
    """The labels the rules give `words` (from normalise.tokens) and the signals that say
    why; cancelled signals are gone, qualified ones ("negated:...") stay."""
    words = list(words)  # idioms are masked in this copy; the caller's words stay as read
    signals: set[str] = set()

    # Idioms first: their words become MASK so no rule can read them.
    text0 = _Text.of(words, lex)
    present = frozenset(words)
    for (idiom_id, pattern, needs), requires in zip(lex.idioms, lex.idiom_requires, strict=True):
        if needs is not None and needs.isdisjoint(present):
            continue
        if not all(not need.isdisjoint(present) for need in requires):
            continue
        for first, last in text0.spans(pattern):
            signals.add(f"idiom:{idiom_id}")
            words[first : last + 1] = [MASK] * (last + 1 - first)
    body = _Text.of(words, lex) if any(w == MASK for w in words) else text0

    marks = {
        kind: [
            first
            for p, requires in zip(pats, lex.marker_requires[kind], strict=True)
            if all(not need.isdisjoint(present) for need in requires)
            for first, _ in body.spans(p)
        ]
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
    return labels, signals

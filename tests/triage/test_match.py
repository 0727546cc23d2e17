"""The matcher's short cuts (bot.triage.match) find what a plain scan finds: every lexicon
pattern tried only where its needed words allow, run only at the words a match can begin
with, and skipped where the next word cannot come second."""

from __future__ import annotations

import json
from bisect import bisect_right
from functools import cache
from pathlib import Path

from benchmarks.triage_bench import long_messages
from bot.triage import get_lexicon, tokens
from bot.triage.lexicon import Pattern
from bot.triage.match import _allowed, _Text
from bot.triage.normalise import detect_language

EXAMPLES = Path(__file__).resolve().parents[1] / "triage_examples.jsonl"


@cache
def _texts() -> tuple[list[str], ...]:
    """Our labelled texts run together as 160-character messages (many patterns' words
    in each), plus short ones that put a pattern's first word last or alone."""
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines if line.strip()]
    extra = ["he", "my", "i took", "he has a", "me tome", "no. he. has. a gun", "he he he he"]
    return tuple(tokens(t, detect_language(t)) for t in [*long_messages(texts), *extra])


def _scanned(text: _Text, pattern: Pattern) -> list[tuple[int, int]]:
    """(first, last) word of each match as a scan of the whole text finds them."""
    return [
        (bisect_right(text.starts, m.start()) - 1, bisect_right(text.starts, m.end() - 1) - 1)
        for m in pattern.compiled.finditer(text.padded)
    ]


def test_spans_are_the_matches_a_full_scan_finds() -> None:
    """For every pattern and text, the anchored spans (tried only at pattern.starts, and
    only where the next word is among pattern.seconds) are exactly the scan's matches;
    the texts give thousands of matches, so a wrong first or second word would show."""
    lex = get_lexicon()
    matched = 0
    for words in _texts():
        text = _Text(words, lex)
        for probe in lex.probes:
            expected = _scanned(text, probe.pattern)
            assert text.spans(probe.pattern) == expected, (probe.pattern.where, words)
            matched += len(expected)
    assert matched > 1000


def test_no_pattern_that_matches_is_left_out() -> None:
    """A pattern left out by its needed words (Lexicon.facts, Probe.need) never has a
    match in the text: the index only saves work."""
    lex = get_lexicon()
    tried = 0
    for words in _texts():
        text = _Text(words, lex)
        allowed = set(_allowed(text.present, lex))
        for number, probe in enumerate(lex.probes):
            if number not in allowed:
                assert not _scanned(text, probe.pattern), (probe.pattern.where, words)
        tried += len(allowed)
    # and it does leave most out: the point of it
    assert tried < len(_texts()) * len(lex.probes) / 10


def test_stems_announce_their_patterns() -> None:
    """A stem ("suicid*") announces its pattern for any word it begins, so no pattern
    is tried on every message."""
    lex = get_lexicon()
    assert not lex.always
    alone = " suicid[a-z0-9]*(?= )"  # the pattern 'suicid*', in both languages' rules
    stemmed = [n for n, p in enumerate(lex.probes) if p.pattern.source == alone]
    assert len(stemmed) == 2 and set(stemmed) <= set(lex.facts("suicidal")[1])
    assert not set(stemmed) & set(lex.facts("suit")[1])

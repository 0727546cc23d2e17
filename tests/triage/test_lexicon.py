"""The compiled lexicon (bot.triage.lexicon): expressions rewritten for speed match as the
patterns are written."""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path

import pytest

from bot.triage import LexiconError, get_lexicon, load_lexicon
from bot.triage.lexicon import _alternation

# Listed so that order matters: " a" before " a b", " hit" before " hit me".
_ALTS = [" a", " hit", " a b", " an", " hits", " hit me", " h", " b", " ab", " me"]
# What may follow an alternation in a pattern: always a space or the end of the match.
_TAILS = ["(?= )", "(?: me)?(?= )", "(?: [a-z]+){0,2} me(?= )", " [a-z]+(?= )"]


def test_grouped_alternatives_match_as_listed() -> None:
    """Grouped by first letter, a long list of phrases finds, at every word of every text
    of up to four words, the very match the list tried in order finds (the same end, so
    the same words masked or qualified), whatever follows it in the pattern."""
    grouped = _alternation(_ALTS)
    assert grouped != "(?:" + "|".join(_ALTS) + ")"  # the rewrite did happen
    vocabulary = ["a", "an", "b", "ab", "hit", "hits", "me", "h", "x"]
    compared = 0
    for tail in _TAILS:
        listed = re.compile("(?:" + "|".join(_ALTS) + ")" + tail)
        rewritten = re.compile(grouped + tail)
        for size in range(1, 5):
            for words in product(vocabulary, repeat=size):
                padded = " " + " ".join(words) + " "
                for at in (i for i, c in enumerate(padded[:-1]) if c == " "):
                    want, got = listed.match(padded, at), rewritten.match(padded, at)
                    assert (want and want.span()) == (got and got.span()), (tail, padded, at)
                    compared += want is not None
    assert compared > 1000


def test_short_lists_and_other_alternatives_stay_as_written() -> None:
    """Only long lists of plain phrases are grouped; a class or a stem among them, or a
    short list, is left as written."""
    assert _alternation([" a", " b"]) == "(?: a| b)"
    assert _alternation([*_ALTS, " x[a-z0-9]*"]) == "(?:" + "|".join([*_ALTS, " x[a-z0-9]*"]) + ")"


def test_every_pattern_says_what_a_match_needs() -> None:
    """Each pattern carries the word sets a match needs (its announcing set first) and,
    where its first words are plain, where a match may begin: the index has something to
    go on for every pattern."""
    lex = get_lexicon()
    assert all(probe.pattern.requires for probe in lex.probes)
    anchored = sum(probe.pattern.starts is not None for probe in lex.probes)
    assert anchored > 0.9 * len(lex.probes)


def test_a_join_must_make_one_word(tmp_path: Path) -> None:
    """Two words joined into one ("no one" -> "noone") must give one word: the matcher
    looks for a match only at the space before a word, so a space inside one would hide
    a match. A join that gives two words fails at load."""
    source = Path(__file__).resolve().parents[2] / "bot" / "lexicon"
    for name in ("common.toml", "en.toml", "es.toml", "known_words.toml"):
        (tmp_path / name).write_text((source / name).read_text(encoding="utf-8"), "utf-8")
    assert load_lexicon(tmp_path).joins
    common = (tmp_path / "common.toml").read_text(encoding="utf-8")
    bad = common.replace("[joins]\n", '[joins]\n"x y" = "x y"\n', 1)
    assert bad != common
    (tmp_path / "common.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(LexiconError, match="must be one word"):
        load_lexicon(tmp_path)

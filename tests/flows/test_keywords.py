"""Global keywords and short answers (flows/keywords.py)."""

from __future__ import annotations

import random
import re
import string
import unicodedata

import pytest

from flows import keywords

FAMILIES = {
    "stop": [
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "PARAR",
    ],
    "start": ["START", "UNSTOP"],
    "help": ["HELP", "INFO", "AYUDA"],
    "spanish": ["ESPAÑOL", "ESPANOL", "SPANISH"],
    "english": ["ENGLISH", "INGLES", "INGLÉS"],
    "agent": ["AGENT", "PERSON", "ADVOCATE", "PERSONA", "AGENTE"],
    "exit": ["EXIT", "SALIR"],
    "delete": ["DELETE", "BORRAR"],
}


@pytest.mark.parametrize(
    ("expected", "word"), [(name, word) for name, words in FAMILIES.items() for word in words]
)
def test_every_keyword_matches_in_any_case_with_punctuation(expected: str, word: str) -> None:
    """Each listed word is its keyword in upper, lower and title case, with surrounding
    spaces and punctuation, and with or without accents."""
    for text in (
        word,
        word.lower(),
        word.title(),
        f"  {word.lower()}!! ",
        f"¡{word}?",
        f'"{word}."',
    ):
        assert keywords.keyword(text) == expected, text


def test_accents_are_optional_both_ways() -> None:
    """ESPAÑOL and español, INGLÉS and ingles: accents never matter."""
    assert keywords.keyword("español") == "spanish"
    assert keywords.keyword("Espanol") == "spanish"
    assert keywords.keyword("inglés") == "english"
    assert keywords.keyword("SALÍR") == "exit"


def test_spaced_or_hyphenated_opt_out_counts_as_stop() -> None:
    """Carriers treat "opt out" / "opt-out" / "stop all" like the one word."""
    for text in ("opt out", "Opt-Out", "stop all"):
        assert keywords.keyword(text) == "stop", text


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop",
        "stop it",
        "I need help",
        "help me please",
        "can I talk to a person",
        "the end",
        "how do I delete this",
        "",
        "   ",
        "?!",
    ],
)
def test_keywords_inside_longer_messages_are_not_keywords(text: str) -> None:
    """Only the whole message is a keyword; words in a sentence are just a message."""
    assert keywords.keyword(text) is None


def test_keyword_families_do_not_overlap() -> None:
    """No word belongs to two families, so the order of checks never decides meaning."""
    families = [
        keywords.STOP_WORDS,
        keywords.START_WORDS,
        keywords.HELP_WORDS,
        keywords.SPANISH_WORDS,
        keywords.ENGLISH_WORDS,
        keywords.AGENT_WORDS,
        keywords.DELETE_WORDS,
        frozenset(w.lower() for w in keywords.DEFAULT_EXIT_WORDS),
    ]
    for i, a in enumerate(families):
        for b in families[i + 1 :]:
            assert not a & b


def test_exit_words_are_configurable() -> None:
    """A configured exit list replaces EXIT/SALIR; STOP still wins over a clash."""
    assert keywords.keyword("bye", exit_words=("BYE",)) == "exit"
    assert keywords.keyword("exit", exit_words=("BYE",)) is None
    assert keywords.keyword("stop", exit_words=("STOP",)) == "stop"


def test_exit_words_must_be_a_list_of_words() -> None:
    """A bare string (which would split into letters) or an empty word is refused."""
    with pytest.raises(TypeError):
        keywords.keyword("x", exit_words="EXIT")
    with pytest.raises(TypeError):
        keywords.keyword("x", exit_words=("",))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("Y", "yes"),
        ("yeah", "yes"),
        ("ok", "yes"),
        ("sí", "yes"),
        ("Si!", "yes"),
        ("yes it's safe", "yes"),
        ("es seguro", "yes"),
        ("no", "no"),
        ("NO.", "no"),
        ("nope", "no"),
        ("nah", "no"),
        ("not safe", "no"),
        ("it's not safe", "no"),
        ("It isn't safe right now", "no"),
        ("i can't talk", "no"),
        ("no puedo escribir", "no"),
        ("no es seguro", "no"),
        ("not now", "no"),
        ("skip", "skip"),
        ("SALTAR", "skip"),
        ("pass", "skip"),
        ("no sé", "unsure"),
        ("not sure", "unsure"),
        ("idk", "unsure"),
        ("yes but not really", None),
        ("what is this", None),
        ("", None),
    ],
)
def test_answers(text: str, expected: str | None) -> None:
    """Short answers in English and Spanish are read as yes / no / skip / unsure."""
    assert keywords.answer(text) == expected


def test_confirm_delete_words() -> None:
    """DELETE/BORRAR/YES/SI confirm a deletion; anything else does not."""
    for text in ("DELETE", "borrar", "yes", "Sí"):
        assert keywords.confirms_delete(text)
    for text in ("no", "wait", "delete it all", ""):
        assert not keywords.confirms_delete(text)


def test_menu_choice_and_age() -> None:
    """Menu numbers as digits or words; an age when exactly one number is given."""
    assert keywords.choice("2") == 2
    assert keywords.choice("#3.") == 3
    assert keywords.choice("dos") == 2
    assert keywords.choice("five") is None
    assert keywords.choice("2 kids") is None
    assert keywords.age("I'm 16") == 16
    assert keywords.age("tengo 15 años") == 15
    assert keywords.age("16 or 17") is None
    assert keywords.age("no") is None


def test_wait_questions() -> None:
    """Questions about the wait are recognised in both languages; other texts are not."""
    for text in ("how long?", "How much longer do I wait", "¿Cuánto falta?", "cuando me contestan"):
        assert keywords.asks_about_wait(text), text
    for text in ("thanks", "he is back", "ok"):
        assert not keywords.asks_about_wait(text), text


# ── normalise: the fast paths give exactly what the definition gives ─────────────────
_APOS = re.compile(r"['’`´]")
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


def _defined(text: str) -> str:
    """normalise as its docstring defines it (and as it was first written)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = _APOS.sub("", plain)
    return _EDGES.sub("", " ".join(plain.split()))


def test_normalise_matches_its_definition_on_every_bmp_character() -> None:
    """Each character of the Basic Multilingual Plane alone, and between letters and
    spaces, normalises exactly as the definition says (ASCII fast path, marks dropped,
    edges stripped from each end)."""
    for code in range(0x10000):
        c = chr(code)
        for text in (c, f" a{c}b ", f"{c}{c}x{c}", f"x {c}"):
            assert keywords.normalise(text) == _defined(text), hex(code)


def test_normalise_matches_its_definition_on_mixed_texts() -> None:
    """Random texts mixing ASCII, accents, combining marks, curly quotes, emoji, odd
    spaces and underscores normalise exactly as the definition says."""
    alphabet = (
        string.printable + "ñÑáÉíóúü’´`'\u0301\u0303\u00a0\u2003_—–¿¡😢👍🏽\u200d" + "ＳＴＯＰﬁ①"
    )
    rng = random.Random(11)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert keywords.normalise(text) == _defined(text), repr(text)


def test_one_reading_keeps_one_normalised_text_per_message_and_nothing_after() -> None:
    """Inside one_reading a text is normalised once (the same string comes back each
    time); after the block nothing is remembered (each call works it out anew)."""
    text = "He said he’d come back tonight, I’m scared " * 3
    with keywords.one_reading():
        first = keywords.normalise(text)
        assert keywords.normalise(text) is first
        assert keywords.answer(text) is None and keywords.normalise(text) is first
    again = keywords.normalise(text)
    assert again == first and again is not first
    assert keywords.normalise(text) is not again


def test_a_reading_inside_another_shares_it() -> None:
    """A flow step's reading inside a caller's (the engine wrapping a whole message)
    uses the caller's memo, and the caller's lasts until its own block ends."""
    text = "it’s not safe to talk right now, he is home " * 2
    with keywords.one_reading():
        outer = keywords.normalise(text)
        with keywords.one_reading():
            assert keywords.normalise(text) is outer
        assert keywords.normalise(text) is outer
    assert keywords.normalise(text) is not outer


def test_exit_words_are_checked_every_time_though_read_once() -> None:
    """A configured list is normalised once, but a bad list is refused on every message,
    a non-string word (even an unhashable one) with the same clear message, and a list
    reads the same as a tuple."""
    for _ in range(2):
        with pytest.raises(TypeError, match="non-empty string"):
            keywords.keyword("x", exit_words=("",))
        with pytest.raises(TypeError, match="non-empty string"):
            keywords.keyword("x", exit_words=[["EXIT"]])  # type: ignore[list-item]
    assert keywords.keyword("adiós", exit_words=["ADIOS"]) == "exit"
    assert keywords.keyword("adiós", exit_words=("ADIOS",)) == "exit"

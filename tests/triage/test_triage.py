"""Triage (DESIGN.md section 5): scored on the shared examples and on our own, plus the
behaviours the scores rest on (normalisation, negation, idioms, language, signals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.triage import (
    LABELS,
    LexiconError,
    Triage,
    detect_language,
    load_lexicon,
    priority_for,
    tokens,
    triage,
)
from bot.triage.cli import Example, Report, evaluate, read_examples

SHARED = Path(__file__).resolve().parents[3] / "shared" / "triage" / "examples.jsonl"
OURS = Path(__file__).resolve().parents[1] / "triage_examples.jsonl"
MIN_RECALL = {"emergency": 1.0, "suicide": 1.0, "trafficking": 0.95, "abuse": 0.90}


def _examples(path: Path) -> list[Example]:
    if not path.is_file():
        pytest.fail(f"labelled examples missing: {path} (clone the repo beside shared/)")
    return read_examples(path)


def _check(report: Report) -> None:
    problems = [
        f"{label} recall {report.scores[label].recall:.1%} < {floor:.0%}"
        for label, floor in MIN_RECALL.items()
        if report.scores[label].recall < floor
    ]
    problems += [
        f"{label} on {ex.text!r} (labels {sorted(ex.labels)}, allow {sorted(ex.allow)})"
        for ex, result in report.alarms
        for label in ("emergency", "suicide")
        if label in result.labels and label not in ex.labels | ex.allow
    ]
    misses = [f"missed {sorted(ex.labels - r.labels)}: {ex.text!r}" for ex, r in report.misses]
    assert not problems, "\n".join(problems + misses)


def test_shared_examples_meet_the_bar() -> None:
    """The shared file: emergency and suicide recall 100 %, trafficking >= 95 %, abuse
    >= 90 %, and no emergency or suicide label where neither labels nor allow have it."""
    _check(evaluate(_examples(SHARED)))


def test_our_examples_meet_the_same_bar() -> None:
    """Our own, harder examples (SMS spelling, typos, Spanish, idioms, negation, past,
    third parties, everyday texts) are held to the same bar."""
    examples = _examples(OURS)
    assert len(examples) >= 150
    assert {e.lang for e in examples} == {"en", "es"}
    _check(evaluate(examples))


def test_our_examples_language_detection() -> None:
    """Detected language matches the labelled one on nearly all of our examples (short
    texts like "ok" are ambiguous, so a few misses are tolerated but not many)."""
    examples = _examples(OURS)
    wrong = [e.text for e in examples if detect_language(e.text) != e.lang]
    assert len(wrong) <= len(examples) // 20, wrong


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("u ok? hes here rn", ["you", "ok", ".", "he", "is", "here", "right", "now"]),
        ("kms", ["kill", "myself"]),
        ("I can't", ["i", "can", "not"]),
        ("pleeeease", ["please"]),
        ("my sister's boyfriend", ["my", "sister", "boyfriend"]),
        ("i want to hurt my self", ["i", "want", "to", "hurt", "myself"]),
        ("$10,000 dollars", ["10000", "dollars"]),
    ],
)
def test_normalisation(text: str, expected: list[str]) -> None:
    """SMS shorthand, contractions, stretched letters, possessives, split words and
    number groups normalise to the words the lexicon is written in."""
    assert tokens(text, "en") == expected


def test_typos_are_repaired_but_known_words_are_not() -> None:
    """A misspelt lexicon word is repaired ("knfie", "pasport", Spanish "cuchiyo"), while a
    real word one letter away from a lexicon word stays itself ("shout" is not "shoot")."""
    assert "knife" in tokens("hes got a knfie", "en")
    assert "passport" in tokens("he has my pasport", "en")
    assert "cuchillo" in tokens("tiene un cuchiyo", "es")
    assert tokens("he will shout", "en") == ["he", "will", "shout"]
    assert tokens("he is cooking", "en") == ["he", "is", "cooking"]  # not "choking"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("hola", "es"),
        ("si", "es"),
        ("Sí", "es"),
        ("gracias", "es"),
        ("me está amenazando con un cuchillo", "es"),
        ("ok", "en"),
        ("yes", "en"),
        ("12345", "en"),
        ("", "en"),
        ("no", "en"),
        ("my husband hits me", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    """Short texts: Spanish function words win ("hola", "sí"), everything else is English."""
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("labels", "priority"),
    [
        (set(), 4),
        ({"abuse"}, 3),
        ({"trafficking"}, 2),
        ({"trafficking", "abuse"}, 2),
        ({"emergency"}, 1),
        ({"suicide", "abuse"}, 1),
    ],
)
def test_priority_for(labels: set[str], priority: int) -> None:
    """Priority: 1 emergency or suicide, 2 trafficking, 3 abuse, 4 other."""
    assert priority_for(frozenset(labels)) == priority


def test_triage_result_shape() -> None:
    """A danger message gives a frozen Triage whose JSON is exactly the CLI's shape."""
    result = triage("he's got a knife")
    assert isinstance(result, Triage)
    assert result.danger and result.priority == 1
    assert "emergency:weapon" in result.signals
    assert result.as_json() == {"labels": sorted(result.labels), "priority": 1, "language": "en"}
    with pytest.raises(AttributeError):
        result.priority = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("I'm not suicidal", "negated:suicide:ideation"),
        ("this traffic is killing me", "idiom:killing_me"),
        ("me muero de risa", "idiom:me_muero_de"),
        ("I used to cut myself as a teen", "past:suicide:self_harm"),
        ("he choked me last year", "past:emergency:violence"),
        ("he hit me and he's still in the house", "emergency:escalated"),
    ],
)
def test_signals_say_why(text: str, signal: str) -> None:
    """The signals record what fired and what was set aside, so an advocate sees why."""
    assert signal in triage(text).signals


@pytest.mark.parametrize(
    ("text", "labels", "allow"),
    [
        ("I'm not suicidal", set(), set()),
        ("he's not here", set(), set()),
        ("he choked me last year", {"abuse"}, set()),
        ("no he has a gun", {"emergency"}, {"abuse"}),
        ("I dont want to live anymore", {"suicide"}, set()),
        ("no quiero vivir", {"suicide"}, set()),
        ("no quiero morir", set(), set()),
        ("my sister's boyfriend took her passport", {"trafficking"}, set()),
        ("my friend wants to kill herself", {"suicide"}, set()),
        # A partner's threat to kill himself: coercion, and his own suicidal words, which the
        # product accepts as suicide (issue 9: third parties' suicidal thoughts).
        ("he says he'll kill himself if I leave", {"abuse"}, {"suicide"}),
        ("mi esposo is hitting me", {"emergency"}, {"abuse"}),
    ],
)
def test_negation_past_and_third_parties(text: str, labels: set[str], allow: set[str]) -> None:
    """Negation and resolved past remove danger; a negation only reaches forward within its
    clause ("no he has a gun" is still danger); negation written into a rule ("don't want
    to live") is not mistaken for one; reports about someone else still get their label;
    an abuser's suicide threat is control, not the texter's own risk; mixed languages."""
    got = set(triage(text).labels)
    assert labels <= got <= labels | allow, got


def test_language_argument() -> None:
    """An explicit language is kept; anything but en/es/None is a clear error."""
    assert triage("ok", language="es").language == "es"
    with pytest.raises(ValueError, match="language"):
        triage("ok", language="fr")


def test_every_label_is_reachable_from_both_languages() -> None:
    """Each label has at least one English and one Spanish rule that fires."""
    samples = {
        "en": ["he is hitting me", "i want to die", "they took my passport", "he hits me"],
        "es": ["me esta pegando", "quiero morirme", "me quitaron el pasaporte", "me pega"],
    }
    for lang, texts in samples.items():
        got = [triage(t, language=lang).labels for t in texts]
        assert [label in g for label, g in zip(LABELS, got, strict=True)] == [True] * 4, got


def _write_lexicon(folder: Path, rule: str) -> None:
    source = Path(__file__).resolve().parents[2] / "bot" / "lexicon"
    for name in ("common.toml", "en.toml", "es.toml", "known_words.toml"):
        (folder / name).write_text((source / name).read_text(encoding="utf-8"), "utf-8")
    with (folder / "en.toml").open("a", encoding="utf-8") as handle:
        handle.write(rule)


def test_lexicon_errors_are_clear(tmp_path: Path) -> None:
    """A bad lexicon edit fails loudly at load, naming the rule, instead of matching
    nothing; a good added rule loads and is used."""
    _write_lexicon(tmp_path, '\n[[rule]]\nid = "abuse:x"\npatterns = ["@nosuchclass"]\n')
    with pytest.raises(LexiconError, match="unknown class @nosuchclass"):
        load_lexicon(tmp_path)
    _write_lexicon(tmp_path, '\n[[rule]]\nid = "danger:x"\npatterns = ["x"]\n')
    with pytest.raises(LexiconError, match="label"):
        load_lexicon(tmp_path)
    _write_lexicon(tmp_path, '\n[[rule]]\nid = "abuse:x"\npatterns = ["he\'s"]\n')
    with pytest.raises(LexiconError, match="bad word"):
        load_lexicon(tmp_path)
    _write_lexicon(tmp_path, '\n[[rule]]\nid = "abuse:zebra"\npatterns = ["zebra"]\n')
    assert any(r.id == "abuse:zebra" for r in load_lexicon(tmp_path).rules)


def test_the_model_adds_what_no_rule_was_written_for() -> None:
    """A phrasing no lexicon pattern covers is still caught by the learned model, and the
    signal says so, so the advocate sees why the texter ranks where they do."""
    result = triage("exhausted of life tbh")
    assert "suicide" in result.labels and result.priority == 1
    assert "model:suicide" in result.signals


def test_the_model_never_overrules_a_negation_or_an_idiom_the_rules_read() -> None:
    """The model reads no grammar: where the rules saw the label negated or an idiom, the
    model's vote for danger is vetoed (it does think this one is suicidal)."""
    from bot.triage import feature_input, get_model
    from bot.triage.model import features

    MODEL = get_model()

    text = "no estoy pensando en suicidarme"
    assert MODEL is not None
    assert MODEL.probabilities(features(*feature_input(text)))["suicide"] > 0.5
    assert triage(text).labels == frozenset()


def test_a_broken_model_file_is_refused_at_load(tmp_path: Path) -> None:
    """A truncated or mislabelled weights file raises ModelError, never a silent model."""
    import gzip
    import json

    from bot.triage.model import ModelError, load_model

    broken = tmp_path / "model.json.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ModelError):
        load_model(broken)
    with gzip.open(broken, "wt") as handle:
        json.dump({"labels": ["abuse"], "bias": [0], "weights": {}, "thresholds": [0.5]}, handle)
    with pytest.raises(ModelError):
        load_model(broken)


@pytest.mark.parametrize("text", ["START", "EXIT", "ok", "ayuda"])
def test_the_model_leaves_a_word_or_two_to_the_rules(text: str) -> None:
    """Keywords and one-word answers carry too little for the model to judge: a START is
    never read as danger."""
    assert not triage(text).labels & {"emergency", "suicide"}


def test_laughing_emoji_read_as_laughter() -> None:
    """😂 and 💀 mark a joke the way "lol" does, so the model's danger vote is vetoed on a
    joke while the rules still read real danger sent with an emoji."""
    assert tokens("holding me hostage on the couch 😂", "en")[-1] == "lol"
    assert "emergency" in triage("he has a knife 😭").labels


def test_every_lexicon_pattern_compiles() -> None:
    """Patterns compile lazily (import stays fast); every one of them must compile, so a
    bad edit fails here rather than on some texter's message."""
    from bot.triage import get_lexicon

    assert get_lexicon().warm() > 1000


HELD_OUT = Path(__file__).resolve().parents[1] / "triage_held_out.jsonl"
HELD_OUT_FLOOR = {"emergency": 0.90, "suicide": 0.90, "trafficking": 0.90, "abuse": 0.85}


def test_a_held_out_set_keeps_its_recall() -> None:
    """tests/triage_held_out.jsonl was written blind (by someone who never saw the lexicon)
    and is never trained on: it guards generalisation, as unseen texts would. Keep it out
    of tests/triage_examples.jsonl and out of the model's training data."""
    from tools.train_triage import training_examples

    held = read_examples(HELD_OUT)
    assert len(held) >= 200
    trained = {row["text"] for row in training_examples(Path(__file__).resolve().parents[2])}
    assert not trained & {e.text for e in held}, "held-out texts leaked into training"
    report = evaluate(held)
    low = {
        label: f"{report.scores[label].recall:.1%}"
        for label, floor in HELD_OUT_FLOOR.items()
        if report.scores[label].recall < floor
    }
    assert not low, low


BLIND = sorted((Path(__file__).resolve().parent / "blind").glob("*.jsonl"))
# Regression guards, set a little under each set's one blind measurement (blind/RECORD.md).
BLIND_FLOORS = {
    "2026-12-02-writer-c.jsonl": (
        {"emergency": 0.91, "suicide": 0.85, "trafficking": 0.94, "abuse": 0.90},
        {"emergency": 0.065, "suicide": 0.04, "trafficking": 0.035, "abuse": 0.085},
    ),
    "2026-12-02-writer-d.jsonl": (
        {"emergency": 0.95, "suicide": 0.93, "trafficking": 0.96, "abuse": 0.94},
        {"emergency": 0.055, "suicide": 0.04, "trafficking": 0.03, "abuse": 0.115},
    ),
    "2026-12-02-writer-e.jsonl": (
        {"emergency": 0.98, "suicide": 0.92, "trafficking": 0.98, "abuse": 0.81},
        {"emergency": 0.045, "suicide": 0.015, "trafficking": 0.015, "abuse": 0.085},
    ),
}


@pytest.mark.parametrize("path", BLIND, ids=lambda p: p.name)
def test_blind_sets_keep_their_figures(path: Path) -> None:
    """Each committed blind set (never trained on) keeps the recall and false-alarm rates
    it was first measured at, give or take a message; none of its texts is trained on."""
    from tools.train_triage import training_examples

    blind = read_examples(path)
    trained = {row["text"] for row in training_examples(Path(__file__).resolve().parents[2])}
    assert not trained & {e.text for e in blind}, "blind texts leaked into training"
    floors, ceilings = BLIND_FLOORS[path.name]
    report = evaluate(blind)
    low = {
        k: f"{report.scores[k].recall:.1%}"
        for k, f in floors.items()
        if report.scores[k].recall < f
    }
    high = {
        k: f"{report.scores[k].false_alarm_rate:.1%}"
        for k, c in ceilings.items()
        if report.scores[k].false_alarm_rate > c
    }
    assert not low and not high, (low, high)

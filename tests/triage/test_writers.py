"""Issue 9: laughter does not cancel suicidal words, a third party's suicidal thoughts are
marked `third_party`, `near_danger` flags messages close to danger but under it, the
everyday false alarms the issue names stay quiet, and the writers' sets are trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.triage import Triage, triage
from bot.triage.cli import evaluate, read_examples
from bot.triage.pipeline import NEAR_BAND, read

REPO = Path(__file__).resolve().parents[2]
WRITERS = sorted((REPO / "tests" / "triage" / "data").glob("*.jsonl"))


@pytest.mark.parametrize(
    "text",
    ["me quiero morir jaja", "i want to die lol", "me quiero morir jajaja ya no aguanto 😂"],
)
def test_laughter_does_not_cancel_suicidal_words(text: str) -> None:
    """Settled product decision: "me quiero morir jaja" is read like "i want to die lol"."""
    assert "suicide" in triage(text).labels


@pytest.mark.parametrize(
    "text",
    ["me quiero morir jajaja que verguenza el examen", "i want to die lol this exam"],
)
def test_laughter_about_a_named_everyday_thing_is_still_an_idiom(text: str) -> None:
    """Laughing about an exam or a blunder stays an idiom in both languages."""
    assert not triage(text).danger


@pytest.mark.parametrize(
    "text",
    [
        "my friend wants to kill herself",
        "mi amiga dice que se quiere matar",
        "my sister says she wants to die and shes been giving her stuff away",
    ],
)
def test_a_third_partys_suicidal_thoughts_are_suicide_and_third_party(text: str) -> None:
    """Someone else's risk is labelled suicide and signalled `third_party`, so the engine
    routes the need to "worried about someone else" with 988 in the reply."""
    result = triage(text)
    assert "suicide" in result.labels
    assert "third_party" in result.signals


@pytest.mark.parametrize(
    "text", ["i want to kill myself", "quiero morirme", "i have 60 pills saved and a note"]
)
def test_the_texters_own_risk_is_not_third_party(text: str) -> None:
    """The texter's own risk is suicide without the `third_party` signal."""
    result = triage(text)
    assert "suicide" in result.labels
    assert "third_party" not in result.signals


@pytest.mark.parametrize(
    "text",
    [
        "coach made us run suicides at practice",
        "papers due friday 😭",
        "they killed me in fortnite lol",
        "my boss works me like a slave today",
        "we watched a movie about trafficking in class",
        "i owe back taxes, do you help with that",
        "sold my broken phone on marketplace",
    ],
)
def test_the_issues_false_alarm_kinds_stay_quiet(text: str) -> None:
    """The everyday messages issue 9 reports as false alarms get no label."""
    assert triage(text).labels == frozenset(), triage(text)


def test_near_danger_is_never_set_with_a_danger_label() -> None:
    """near_danger means "close but under": a labelled danger never carries it, and the
    field defaults to False so older constructors keep working."""
    assert Triage().near_danger is False
    result = triage("he has a gun pointed at me")
    assert result.danger and not result.near_danger


def test_near_danger_flags_a_threat_held_back_by_an_if() -> None:
    """A danger the rules read but an "if" holds back is close to danger: one question."""
    result = triage("if he finds me he will kill me")
    assert not result.danger or not result.near_danger
    quiet = triage("what time do you open tomorrow")
    assert not quiet.near_danger


def test_near_danger_follows_the_models_band() -> None:
    """The model's suicide probability inside the band below its bar sets near_danger;
    far below the bar it does not (the same model, its bar moved, the same message)."""
    import dataclasses

    from bot.triage import feature_input, get_model
    from bot.triage.model import features

    model = get_model()
    assert model is not None
    text = "what time do you open on saturday"
    p = model.probabilities(features(*feature_input(text)))["suicide"]
    assert 0.0 < p < 0.3  # an everyday message: well under any bar
    in_band = p / (NEAR_BAND + (1 - NEAR_BAND) / 2)  # p sits between NEAR_BAND*bar and bar
    far = p / NEAR_BAND * 2  # p under half the band's floor
    close_model = dataclasses.replace(model, thresholds=(0.99, in_band, 0.99, 0.99))
    far_model = dataclasses.replace(model, thresholds=(0.99, far, 0.99, 0.99))
    assert read(text, close_model).near_danger
    assert not read(text, far_model).near_danger
    assert not read(text, model).near_danger


def test_near_danger_is_rare_on_everyday_messages() -> None:
    """On the writers' messages with no danger label, near_danger fires at most 5 %."""
    examples = [e for path in WRITERS for e in read_examples(path)]
    report = evaluate(examples)
    assert report.calm > 300
    assert report.near_danger_rate <= 0.05, report.near_danger_rate


def test_the_writers_sets_are_trained_on_and_kept_apart_from_the_blind_set() -> None:
    """The independent writers' sets feed training; none of their texts is in the
    committed blind set (tests/triage_held_out.jsonl), which is never trained on."""
    from tools.train_triage import training_examples

    trained = {row["text"] for row in training_examples(REPO)}
    assert len(WRITERS) >= 2
    for path in WRITERS:
        texts = {json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()}
        assert texts <= trained
    held = {e.text for e in read_examples(REPO / "tests" / "triage_held_out.jsonl")}
    assert not held & trained

"""Everyday helpline texts are not danger: a queued texter asking how long the wait is must
not get a 988 text and jump the queue (the model alone once read "how long will it take",
"im still here" and "cuanto se tarda" as suicide).

None of the texts below is in the training data (a test checks it): they judge whether the
fix generalises, not whether the model remembers them. Two things make it hold: hard
negatives in training (tests/triage/everyday_negatives.jsonl: waiting, thanks, greetings,
logistics and intake answers in both languages), and, on short texts, a model-only danger
label needs one of its cue words ("pills", "bridge", "matarme") in the text.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bot.triage import get_model, triage
from bot.triage.pipeline import CUE_MAX_WORDS, read

REPO = Path(__file__).resolve().parents[2]

# The texts the defect report named, read as suicide (priority 1) by the model alone.
REPORTED = [
    "how long will it be",
    "how long will it take",
    "how much longer",
    "i have to go now",
    "im still here",
    "sorry i fell asleep",
    "will it take long",
    "cuanto se tarda",
    "how long does a protective order last",
]
WAITING = [
    "how long is this gonna take",
    "how much longer do i have to wait",
    "is it almost my turn",
    "whats the wait time",
    "any idea how long",
    "ok i'll hang on",
    "im still waiting for someone",
    "still on hold i guess",
    "are you still there",
    "cuanto tiempo se tarda",
    "cuanto mas tengo que esperar",
    "ya mero me toca",
    "todavia sigo aqui",
    "sigo aqui esperando",
    "ok ya voy a esperar",
]
GREETINGS_AND_THANKS = [
    "hellooo anyone",
    "hey good morning",
    "hi i have a question",
    "thank you for your help",
    "thanks so much for being here",
    "ok ty",
    "sounds good",
    "perfect thanks",
    "hola muy buenas tardes",
    "hola tengo una pregunta",
    "muchas gracias por su ayuda",
    "gracias de verdad",
    "ok gracias ya entendi",
    "thank u mil gracias",
]
COMING_AND_GOING = [
    "i have to run",
    "i gotta leave now sorry",
    "need to go bye",
    "talk tomorrow",
    "sorry i took so long to answer",
    "sorry fell asleep on the couch",
    "sorry was in the shower",
    "sorry i missed your text",
    "my phone died sorry",
    "perdon me quede dormido",
    "perdon se me acabo la pila",
    "me tengo que ir ya",
    "ya me tengo que ir bye",
    "luego le escribo",
    "sorry i was sleeping jaja",
]
LOGISTICS = [
    "what are the hours on saturday",
    "is there parking",
    "do you have an office downtown",
    "how do i get there by bus",
    "how long does it take to get a divorce",
    "how long does custody take",
    "how long will the court take to decide",
    "how long do they let you stay at the shelter",
    "how many nights can i stay",
    "can i stay longer than 30 days",
    "a que hora abren el lunes",
    "cuanto dura una orden de restriccion",
    "cuanto tarda el divorcio",
    "cuanto tiempo me puedo quedar en el refugio",
]
INTAKE_ANSWERS = [
    "yes safe to text after 7pm",
    "only text me on weekends",
    "im 27",
    "i am 45",
    "zip 90011",
    "i have one kid",
    "my pronouns are she her",
    "english is ok for me",
    "si es seguro escribirme despues de las 7",
    "tengo 30 años",
    "mi zip es 77036",
    "tengo un niño",
]
# Court, shelter and custody logistics: a question about the process names no abuse
# (issue 9: most abuse false alarms on the last blind set were these).
PROCESS = [
    "how do i apply for a protective order",
    "what do i bring to the courthouse for a restraining order hearing",
    "can the shelter take my two kids and my dog",
    "is there a fee to file for a restraining order",
    "the judge extended the protective order, what now",
    "do i need a lawyer for the custody hearing next week",
    "como pido una orden de proteccion",
    "cuanto tiempo me puedo quedar en el albergue",
]
# Someone else drinking or using again: worry about them, not the texter's suicide.
RELAPSE = [
    "he's drinking again",
    "my dad is drinking again",
    "she started drinking again after 2 years sober",
    "mi esposo esta tomando otra vez",
]
# The abuser outside or busy while the texter writes: no present danger.
SAFE_WINDOW = [
    "he's outside so i can text now",
    "my husband is outside mowing the lawn",
    "he's outside smoking, i have a few minutes",
    "mi esposo esta afuera asi que puedo escribir",
    "el esta en el trabajo y puedo hablar un rato",
]
EVERYDAY = REPORTED + WAITING + GREETINGS_AND_THANKS + COMING_AND_GOING + LOGISTICS
EVERYDAY += INTAKE_ANSWERS + PROCESS + RELAPSE + SAFE_WINDOW


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_texts_are_not_danger(text: str) -> None:
    """No emergency or suicide label (so no 911/988 text and no jump to priority 1) and
    no trafficking on a waiting, thanks, greeting, coming-and-going, logistics or intake
    text, a court or shelter question, someone else's relapse or a safe moment to text."""
    result = triage(text)
    assert not result.danger, (text, sorted(result.labels), result.signals)
    assert "trafficking" not in result.labels, (text, result.signals)


@pytest.mark.parametrize("text", PROCESS + RELAPSE + SAFE_WINDOW)
def test_process_questions_relapse_and_a_safe_moment_get_no_label(text: str) -> None:
    """A question about an order, a shelter or custody, someone else drinking again, and
    the abuser outside while the texter writes: no label at all, abuse included."""
    result = triage(text)
    assert result.labels == frozenset(), (text, sorted(result.labels), result.signals)


@pytest.mark.parametrize(
    "text",
    [
        "how do i get a restraining order against my ex, he keeps showing up",
        "he violated the protective order again last night",
        "i have a protective order but he keeps calling from new numbers",
    ],
)
def test_an_order_against_someone_or_broken_by_them_is_abuse(text: str) -> None:
    """Once the order is against a person, or that person breaks it, it is abuse."""
    assert "abuse" in triage(text).labels, triage(text)


def test_the_everyday_texts_are_not_trained_on() -> None:
    """The texts above judge generalisation: none of them is a training text."""
    from tools.train_triage import training_examples

    trained = {row["text"] for row in training_examples(REPO)}
    assert not set(EVERYDAY) & trained


def test_the_hard_negatives_are_trained_on_and_unlabelled() -> None:
    """The everyday hard negatives are in training, all without a label."""
    from tools.train_triage import training_examples

    path = REPO / "tests" / "triage" / "everyday_negatives.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    assert len(rows) >= 300
    assert all(row["labels"] == [] for row in rows)
    trained = {row["text"] for row in training_examples(REPO)}
    assert {row["text"] for row in rows} <= trained


def test_a_short_model_only_danger_vote_needs_a_cue_word() -> None:
    """The same model made to vote suicide on everything: on a short text it gives the
    label only where a suicide or emergency cue word is present, and on a long text it
    keeps its vote (the check is for short texts, where function words weigh most)."""
    model = get_model()
    assert model is not None and "pills" in model.cues["suicide"]
    eager = dataclasses.replace(model, bias=(-20.0, 20.0, -20.0, -20.0))
    assert "suicide" not in read("how long will it take", eager).labels
    assert "suicide" in read("how many pills will it take", eager).labels
    long_text = " ".join(["we", "went", "to", "the", "store"] * 2)
    assert len(long_text.split()) > CUE_MAX_WORDS
    assert "suicide" in read(long_text, eager).labels
    no_cues = dataclasses.replace(eager, cues={})
    assert "suicide" in read("how long will it take", no_cues).labels

"""Issue 9's missed kinds, read by general rules rather than single phrases: means and
method asked about, farewells and affairs put in order, a past attempt coming back, youth
trafficking, a threat dated today in colloquial Spanish or "I'm next", past violence with
its date, and the family and school idioms that are not danger. None of these texts is
trained on (a test checks it), so they judge the rules, not the model's memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.triage import triage

REPO = Path(__file__).resolve().parents[2]

SUICIDE = [
    "how many advil would it take to not wake up",
    "how much tylenol is lethal for someone my size",
    "cuantos mg de ibuprofeno son mortales",
    "what does an overdose of painkillers feel like",
    "how high does a building have to be so you dont survive",
    "a que altura tiene que estar el puente",
    "how long does rat poison take",
    "i finished writing letters to my kids tonight",
    "this is goodbye. thank you for everything",
    "i gave away my dog and my guitar this week, i wont need them",
    "ya regale mis cosas a mis primas",
    "who gets my kids if i die, i need to sort that out",
    "the urges from last year are back and worse",
    "tried to kill myself in 2022 and lately it feels the same",
    "intente matarme hace un año y siento que voy para alla otra vez",
    "le deje una carta a mi hija pidiendole perdon",
]
TRAFFICKING = [
    "my bf sets up meetups for me with older guys and keeps the money. im 15",
    "this man let me stay at his place in exchange for sex, i had nowhere else",
    "he drove me to a motel to meet some guy who paid him",
    "a guy from insta is selling my pics and im 16",
    "mi novio vende mis fotos en internet y tengo 15",
    "me deja quedarme en su casa a cambio de acostarme con el",
]
EMERGENCY = [
    "ya viene y me dijo que hoy si me mata",
    "me grito que esta noche me mata",
    "mi marido dijo que yo soy la proxima",
    "he shot the tv and told me im next",
]
PAST = [
    "my ex beat me back in 2018, i want to talk about it",
    "the last time he choked me was years ago",
]
CALM = [
    "my grandma is gonna kill me i forgot her birthday lol",
    "my little brother shot me with his water gun at the party",
    "the coach held us hostage after practice for laps",
    "mi mama me va a matar si no lavo los platos",
    "el profe nos tiene secuestrados con tanto examen",
    "el jefe me trae como burro hoy",
    "my friends kidnapped me for a surprise party",
    "we had a training on the signs of trafficking at work",
]


@pytest.mark.parametrize("text", SUICIDE)
def test_means_farewells_and_a_returning_attempt_are_suicide(text: str) -> None:
    """A lethal amount, a height or a poison asked about, goodbyes and belongings given
    away, or a past attempt coming back: suicide, in English, Spanish and Spanglish."""
    assert "suicide" in triage(text).labels, triage(text)


@pytest.mark.parametrize("text", TRAFFICKING)
def test_youth_trafficking_patterns_are_trafficking(text: str) -> None:
    """A "boyfriend" booking older men, a bed paid for with sex, a drive to a motel to meet
    a man, pictures sold: trafficking."""
    assert "trafficking" in triage(text).labels, triage(text)


@pytest.mark.parametrize("text", EMERGENCY)
def test_a_threat_dated_today_or_im_next_is_an_emergency(text: str) -> None:
    """A threat dated today ("dijo que hoy me mata"), "yo soy la proxima" or "told me im
    next": an emergency."""
    assert "emergency" in triage(text).labels, triage(text)


@pytest.mark.parametrize("text", PAST)
def test_violence_with_a_past_date_is_abuse_not_emergency(text: str) -> None:
    """Violence dated in the past ("back in 2018", "the last time ... years ago") is abuse,
    not a present emergency."""
    result = triage(text)
    assert "abuse" in result.labels and "emergency" not in result.labels, result


@pytest.mark.parametrize("text", CALM)
def test_family_and_school_idioms_are_not_danger(text: str) -> None:
    """A parent's "kill" over a trifle, a water gun, a coach's "hostage", a teacher who
    "kidnaps" with exams, a day worked "like a mule", a surprise party: no danger label
    and no trafficking."""
    result = triage(text)
    assert not result.danger, result
    assert "trafficking" not in result.labels, result


def test_these_texts_are_not_trained_on() -> None:
    """They judge the rules on texts the model never saw."""
    from tools.train_triage import training_examples

    trained = {row["text"] for row in training_examples(REPO)}
    assert not set(SUICIDE + TRAFFICKING + EMERGENCY + PAST + CALM) & trained

"""Issue 9's missed kinds, read by general rules rather than single phrases: means and
method asked about, farewells and affairs put in order, a past attempt coming back, youth
trafficking, a threat dated today in colloquial Spanish or "I'm next", past violence with
its date, and the family, school, work and play idioms that are not danger. None of these texts is
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
    # When and where already chosen, affairs in order, someone provided for "after i'm gone".
    "i already picked the spot and the day",
    "i know how i'm going to do it",
    "my affairs are in order now, i'm ready",
    "i made sure my cat will have a home after i'm gone",
    "ya escogi el dia y el lugar",
    "ya se como lo voy a hacer",
    "cuiden a mi perrita cuando ya no este",
    "ya escribi las cartas para mis hijos",
    # Thoughts that will not stop, a count asked about, waiting at the means, tired of living.
    "i cant stop thinking about dying, it's all i think about",
    "is 35 tylenol enough",
    "would car exhaust hurt",
    "soon they won't have to worry about me anymore",
    "i'm sitting by the train tracks again",
    "i keep looking at the beam in the garage",
    "ya me canse de vivir",
    "siento que lo mejor es que me muera",
    "tengo 16 y no creo llegar a los 17",
    "cuanto cloro tendria que tomar",
    "busque como ahorcarse",
    "tengo 40 pastillas de mi abuela contadas",
    "hoy me quise aventar a los carros",
    "me dan ganas de tomarme el veneno",
    "estoy en el puente viendo para abajo",
    "mi hermana dice que se va a ahorcar",
    "mi primo me dijo que se mata el viernes",
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
    # A boss or a teacher "will kill me" over a slip at work or school.
    "my manager will murder me when she sees this report",
    "my teacher is gonna kill me i forgot my project",
    "my supervisor is literally going to kill me",
    "work has me wanting to die lol",
    "la maestra me va a matar no hice la tarea",
    # Violence in play: video games and combat sports.
    "i got shot like ten times in call of duty",
    "my brother keeps killing me in minecraft",
    "got punched in the face at boxing practice, nose is fine",
    "i strangled him in the jiu jitsu class today lol",
    "nos mataron en el partido 5 a 0",
]
# The same words with a real threat, weapon or attack in them stay danger.
STILL_DANGER = [
    "my boss said he will kill me if i leave the farm",
    "mi jefe dice que me va a matar si me voy",
    "my husband shot at me in the parking lot of the game",
    "he choked me after the game",
    "he's outside with a gun",
    "i think my arm is broken he twisted it until it snapped. he's outside smoking now",
    "el esta afuera y dice que me va a matar",
]
# Locked in as a habit or punishment, kept from appointments: control, not an emergency now.
HABIT = [
    "my stepdad locks me in the basement every weekend",
    "she won't let me go to the doctor alone",
    "mi tia me encierra en el cuarto cuando sale a trabajar",
    "no me deja ir a la clinica sola",
]
# Locked in now, or kept from care for an injury: still an emergency.
LOCKED_NOW = [
    "he locked me in the bathroom and he's yelling outside the door",
    "i'm locked in the closet right now",
    "he broke my wrist and won't let me go to the hospital",
    "me tiene encerrada ahorita y no me deja salir",
]
# A day or a place chosen for a party is no plan.
NOT_A_PLAN = [
    "i chose the day and the time for the party",
    "we picked the date for the wedding",
    "no creo llegar a tiempo a la cita",
    "is 2 tylenol enough for a headache",
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
    "kidnaps" with exams, a day worked "like a mule", a surprise party, a boss who "will
    murder me" over a report, a kill in a video game or a punch at boxing: no danger
    label and no trafficking."""
    result = triage(text)
    assert not result.danger, result
    assert "trafficking" not in result.labels, result


@pytest.mark.parametrize("text", STILL_DANGER)
def test_a_real_threat_beside_those_words_is_still_an_emergency(text: str) -> None:
    """The idioms are narrow: a boss's threat tied to leaving, a shot fired at a game, a
    choke after one, a gun outside: still an emergency."""
    assert "emergency" in triage(text).labels, triage(text)


@pytest.mark.parametrize("text", HABIT)
def test_a_habit_of_locking_in_or_a_checkup_kept_from_is_abuse_not_emergency(text: str) -> None:
    """Locked in "every weekend" or "cuando sale", or not let to the doctor alone: abuse
    (control), not an emergency happening now."""
    result = triage(text)
    assert "abuse" in result.labels and "emergency" not in result.labels, result


@pytest.mark.parametrize("text", LOCKED_NOW)
def test_locked_in_now_or_kept_from_care_for_an_injury_is_an_emergency(text: str) -> None:
    """The habit filter is narrow: locked in now, or a broken wrist kept from the
    hospital, is still an emergency."""
    assert "emergency" in triage(text).labels, triage(text)


def test_a_past_attempt_dated_in_years_with_the_urges_back_is_suicide() -> None:
    """A date in years ("hace dos anos") marks the attempt as past, and the urges coming
    back keep it suicide (a past attempt alone would not be)."""
    result = triage("hace dos años me corte y otra vez me estan regresando esas ganas")
    assert "suicide" in result.labels and "past:suicide:returning" in result.signals, result


@pytest.mark.parametrize("text", NOT_A_PLAN)
def test_a_day_chosen_for_a_party_is_not_a_suicide_plan(text: str) -> None:
    """A plan is "picked the spot and the day"; a day and a time chosen for a party, a
    date for a wedding, being late for an appointment or two tylenol are not."""
    assert "suicide" not in triage(text).labels, triage(text)


def test_these_texts_are_not_trained_on() -> None:
    """They judge the rules on texts the model never saw."""
    from tools.train_triage import training_examples

    trained = {row["text"] for row in training_examples(REPO)}
    judged = SUICIDE + TRAFFICKING + EMERGENCY + PAST + CALM + STILL_DANGER + NOT_A_PLAN
    judged += HABIT + LOCKED_NOW
    assert not set(judged) & trained

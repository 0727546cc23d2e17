"""The safety plan (bot.safety_plan): localised headings, texts of at most 2 SMS segments
with long sections split, and rule 2's gate with its reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import safety_plan
from bot.hours import parse_hours
from bot.store.base import Texter
from flows import copy
from flows.sms_segments import segments

NOW = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)  # 10:00 in Chicago
HOURS = parse_hours("mon-fri 09:00-17:00 America/Chicago")


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_section_has_a_localised_heading(language: str) -> None:
    """Each section's heading is copy in both languages, and they differ by language."""
    for section in safety_plan.SECTIONS:
        assert safety_plan.heading(section, language)
    assert safety_plan.heading("pets", "en") != safety_plan.heading("pets", "es")


@pytest.mark.parametrize("language", ["en", "es"])
def test_texts_keep_order_and_fit_two_segments(language: str) -> None:
    """An opening line, then the filled sections in template order, each under its
    heading; a long section is split between words into texts of at most 2 segments,
    the later ones marked as continued; no word is lost."""
    long = " ".join(f"word{n}" for n in range(150))  # about 1000 characters
    plan = {"pets": "Leave the cat with Ana", "contacts": long, "code_word": "pineapple"}
    texts = safety_plan.texts(plan, language)
    assert texts[0] == copy.render("safety_plan_intro", language, {})
    assert all(segments(t) <= 2 for t in texts)
    contacts = safety_plan.heading("contacts", language)
    more = copy.render("safety_plan_continued", language, {})
    parts = [t for t in texts if t.startswith(contacts)]
    assert len(parts) >= 3 and all(f"({more})" in p for p in parts[1:])
    rebuilt = " ".join(p.split(": ", 1)[1] for p in parts)
    assert rebuilt == long
    headings = [t.split(":")[0] for t in texts[1:]]
    assert headings[0] == contacts
    assert headings[-2:] == [
        safety_plan.heading("code_word", language),
        safety_plan.heading("pets", language),
    ]


def test_a_word_too_long_for_one_text_is_cut() -> None:
    """A single 500-character word still goes out, in pieces of at most 2 segments."""
    texts = safety_plan.texts({"technology": "x" * 500}, "en")
    assert all(segments(t) <= 2 for t in texts)
    assert "".join(t.split(": ", 1)[1] for t in texts[1:]) == "x" * 500


def test_clean_drops_empty_sections_and_refuses_long_ones() -> None:
    """Blank sections are left out; unknown fields are ignored; over 1000 is an error."""
    assert safety_plan.clean({"pets": "  dog  ", "children": " ", "other": "x"}) == {"pets": "dog"}
    with pytest.raises(ValueError):
        safety_plan.clean({"place": "x" * 1001})


def texter(**fields: object) -> Texter:
    base: dict[str, object] = {"id": 1, "phone_hash": "h", "phone": "+15551230000"}
    return Texter(**(base | fields))  # type: ignore[arg-type]


def test_the_gate_says_why_it_refuses() -> None:
    """Only a texter who said YES, not opted out, outside their unsafe hours may be texted
    first; each refusal says which rule stopped it."""
    assert safety_plan.refusal(texter(safe_to_text=True), NOW, HOURS) is None
    assert "has not said" in str(safety_plan.refusal(texter(), NOW, HOURS))
    assert "said it is not safe" in str(safety_plan.refusal(texter(safe_to_text=False), NOW, HOURS))
    unsafe = texter(safe_to_text=True, unsafe_hours="09:00-12:00")
    assert "unsafe hours" in str(safety_plan.refusal(unsafe, NOW, HOURS))
    assert "opted out" in str(
        safety_plan.refusal(texter(safe_to_text=True, opted_out=True), NOW, HOURS)
    )

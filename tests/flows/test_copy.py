"""Texter-facing copy (flows/copy.py and flows/copy/*.toml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows import copy, keywords
from flows.intake import INTAKE

LANGS = ("en", "es")
REQUIRED = {
    "welcome",
    "opening_short",
    "danger_emergency",
    "danger_suicide",
    "media_only",
    "nudge",
    "queued",
    "queue_update",
    "after_hours",
    "help",
    "stopped",
    "started",
    "exited",
    "deleted",
    "confirm_delete",
    "not_deleted",
    "line_dv_hotline",
    "line_trafficking_hotline",
    "line_lifeline_988",
}
VERIFIED_NUMBERS = {"911", "988", "1-800-799-7233", "88788", "1-888-373-7888", "233733"}
FORBIDDEN = re.compile(r"violen|abus|traffick|\btrata\b", re.IGNORECASE)
QUESTIONS = {"need_question", "location_question"} | {
    i for i in copy.message_ids("en") if i.startswith("q_")
}
LINES = ("line_dv_hotline", "line_trafficking_hotline", "line_lifeline_988")


def params(language: str, named: bool = False) -> dict[str, object]:
    """Long but realistic standard params, as the engine passes them."""
    return {
        "org": "Northern Valley Family Support Center",  # a long org name
        "terms": "https://example.org/privacy-and-terms-of-service",
        "position": 123,
        "wait": 240,
        "hours": "Mon-Fri 9:00-17:00, Sat 10:00-14:00 (Central time)",
        "lines": " ".join(copy.render(line, language, {"named": named}) for line in LINES),
        "named": named,
    }


def test_both_languages_have_the_same_ids() -> None:
    """Every message exists in English and Spanish, none in only one."""
    assert copy.message_ids("en") == copy.message_ids("es")


def test_every_id_the_flow_or_engine_says_exists() -> None:
    """Every id the intake flow can say, and the engine's own ids, exist in both."""
    for language in LANGS:
        ids = copy.message_ids(language)
        assert INTAKE.message_ids <= ids, INTAKE.message_ids - ids
        assert ids >= REQUIRED, REQUIRED - ids


@pytest.mark.parametrize("language", LANGS)
def test_only_verified_numbers_appear(language: str) -> None:
    """No phone number other than 911, 988 and the two national hotlines (and their
    text short codes) appears anywhere in the copy, named variants included."""
    for message_id in copy.message_ids(language):
        text = copy.template(message_id, language)
        for run in re.findall(r"\d(?:[\d-]*\d)?", text):
            if len(run.replace("-", "")) >= 3:
                assert run in VERIFIED_NUMBERS, (message_id, run)


@pytest.mark.parametrize("language", LANGS)
def test_default_copy_does_not_name_the_services(language: str) -> None:
    """Rule 3: default variants never say violence, abuse or trafficking."""
    for message_id in copy.message_ids(language):
        if message_id.endswith(copy.NAMED_SUFFIX):
            continue
        text = copy.render(message_id, language, params(language))
        assert not FORBIDDEN.search(text), message_id


def test_forbidden_word_check_can_fail() -> None:
    """The discretion check catches the words it is meant to catch (so it is not vacuous)."""
    assert FORBIDDEN.search(copy.render("welcome", "en", params("en", named=True)))
    assert FORBIDDEN.search(copy.render("welcome", "es", params("es", named=True)))


@pytest.mark.parametrize("language", LANGS)
@pytest.mark.parametrize("named", [False, True])
def test_every_message_fits_a_few_sms(language: str, named: bool) -> None:
    """Each rendered message, with long params, is at most 480 characters."""
    for message_id in copy.message_ids(language):
        text = copy.render(message_id, language, params(language, named))
        assert 0 < len(text) <= 480, (message_id, len(text))


@pytest.mark.parametrize(("language", "skip"), [("en", "SKIP"), ("es", "SALTAR")])
def test_every_question_says_how_to_skip(language: str, skip: str) -> None:
    """Each screening, need and location question names the skip word, and that word
    is read as a skip."""
    assert keywords.answer(skip) == "skip"
    for message_id in QUESTIONS:
        assert skip in copy.template(message_id, language), message_id


def test_welcome_has_what_the_opening_needs() -> None:
    """The opening: org, 911, delete the thread, the YES/NO safety question, the other
    language's keyword, and the terms link only when one is set."""
    en = copy.render("welcome", "en", params("en"))
    assert en.startswith("Northern Valley Family Support Center")
    for part in ("911", "delete this thread", "YES", "NO", "ESPAÑOL", "example.org"):
        assert part in en
    es = copy.render("welcome", "es", params("es") | {"terms": ""})
    for part in ("911", "borrar", "SI", "NO", "ENGLISH"):
        assert part in es
    assert "Términos" not in es and "  " not in es


def test_danger_copy() -> None:
    """Emergency copy gives 911; suicide copy gives 988 (Spanish: text AYUDA to 988)."""
    assert "911" in copy.render("danger_emergency", "en", {})
    assert "911" in copy.render("danger_emergency", "es", {})
    assert "988" in copy.render("danger_suicide", "en", {})
    es = copy.render("danger_suicide", "es", {})
    assert "AYUDA al 988" in es


def test_after_hours_promise_is_only_in_the_safe_variant() -> None:
    """Only after_hours_safe promises a text when we open."""
    assert "We'll text" not in copy.render("after_hours", "en", params("en"))
    assert "We'll text" in copy.render("after_hours_safe", "en", params("en"))
    assert "Te escribiremos" not in copy.render("after_hours", "es", params("es"))


def test_named_variant_is_used_only_when_asked_and_present() -> None:
    """named=True picks X_named when it exists and falls back to X otherwise."""
    plain = copy.render("line_dv_hotline", "en", {})
    named = copy.render("line_dv_hotline", "en", {"named": True})
    assert plain != named and "Domestic Violence" in named
    assert copy.render("paused", "en", {"named": True}) == copy.render("paused", "en", {})


def test_missing_param_is_a_clear_error() -> None:
    """A template field with no param raises CopyError naming the param and the id."""
    with pytest.raises(copy.CopyError, match=r"queued.*'position'"):
        copy.render("queued", "en", {"wait": 3})
    with pytest.raises(copy.CopyError, match="terms"):
        copy.render("welcome", "en", {"org": "X"})


def test_unknown_id_or_language_is_an_error() -> None:
    """Unknown message ids and languages are refused."""
    with pytest.raises(copy.CopyError):
        copy.render("no_such_message", "en", {})
    with pytest.raises(copy.CopyError):
        copy.render("paused", "fr", {})
    with pytest.raises(copy.CopyError):
        copy.message_ids("fr")


def test_only_plain_fields_are_allowed() -> None:
    """Templates cannot reach into objects or use format specs."""
    assert copy.template_fields("Hi {org}, {wait}") == {"org", "wait"}
    for bad in ("{org.__class__}", "{org[0]}", "{wait:>9}", "{org!r}"):
        with pytest.raises(copy.CopyError):
            copy.template_fields(bad)


def test_a_malformed_copy_file_is_refused(tmp_path: Path) -> None:
    """load() rejects a file with a bad field or a non-string entry."""
    (tmp_path / "en.toml").write_text('ok = "fine"\n', encoding="utf-8")
    (tmp_path / "es.toml").write_text('bad = "{org.x}"\n', encoding="utf-8")
    with pytest.raises(copy.CopyError, match=r"es\.toml"):
        copy.load(tmp_path)
    (tmp_path / "es.toml").write_text("bad = 3\n", encoding="utf-8")
    with pytest.raises(copy.CopyError, match=r"es\.toml"):
        copy.load(tmp_path)

"""Texter-facing copy (flows/copy.py and flows/copy/*.toml)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.hours import parse_hours
from bot.settings import DEFAULT_NATIONAL_LINES
from flows import copy, keywords
from flows.intake import INTAKE
from flows.sms_segments import count, non_gsm7

LANGS = ("en", "es")
REQUIRED = {
    "welcome",
    "opening_short",
    "danger_emergency",
    "danger_suicide",
    "danger_emergency_new",
    "danger_suicide_new",
    "danger_after_hours",
    "danger_suicide_after_hours",
    "danger_check",
    "media_only",
    "nudge",
    "queued",
    "queue_update",
    "queued_unstaffed",
    "queue_update_unstaffed",
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
ALL_LINES = ("dv_hotline", "trafficking_hotline", "lifeline_988")
DANGER_NEW = ("danger_emergency_new", "danger_suicide_new")

# Realistic worst cases: a 30-character org name, a terms link, a long line and wait, two
# opening windows with a long zone name (weekdays only: see the Saturday test below).
ORG_LONG = "Northern Valley Family Support"
TERMS = "https://example.org/text-terms"
HOURS = "mon-thu 09:00-21:00; fri 09:00-17:00 America/Chicago"
# With all three national lines, these are allowed a third segment (hours and lines
# together); everything else fits 2 segments in every case, and these do with the default
# lines.
LONGER_WITH_ALL_LINES = {"after_hours", "after_hours_safe", "danger_after_hours"}


def joined_lines(language: str, names: tuple[str, ...], named: bool) -> str:
    """The {lines} param as bot/engine.py builds it: the configured lines, space-joined."""
    return " ".join(copy.render(f"line_{name}", language, {"named": named}) for name in names)


def params(
    language: str,
    named: bool = False,
    org: str = ORG_LONG,
    lines: tuple[str, ...] = ALL_LINES,
    hours: str = HOURS,
) -> dict[str, object]:
    """Long but realistic standard params, as the engine passes them."""
    return {
        "org": org,
        "terms": TERMS,
        "position": 99,
        "wait": 120,
        "hours": parse_hours(hours).describe(language),
        "lines": joined_lines(language, lines, named),
        "named": named,
        # bot.resources.as_text of a directory entry with a very long name
        "resource": "Northern Valley Family Emergency Shelter and Crisis Support Services "
        "of the Greater Metropolitan Region: 312-555-0101 (open 24 hours)",
    }


def renderings() -> Iterator[tuple[str, str, str, dict[str, object]]]:
    """Every id in both languages, rendered with each worst case: short and 30-character
    org, naming off and on, the default and all three national lines."""
    assert len(ORG_LONG) == 30
    for language in LANGS:
        for message_id in sorted(copy.message_ids(language)):
            for org in ("Haven", ORG_LONG):
                for named in (False, True):
                    for lines in (DEFAULT_NATIONAL_LINES, ALL_LINES):
                        p = params(language, named, org, lines)
                        yield language, message_id, copy.render(message_id, language, p), p


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


def test_every_text_fits_two_sms_segments() -> None:
    """Counted as the carrier bills them, every text in both languages is at most 2
    segments with the worst-case params (30-character org, terms link, number 99, 120 min,
    long hours, naming on or off), with the default national lines and with all three;
    only the after-hours texts may take a third, and only with all three lines."""
    over = []
    for language, message_id, text, p in renderings():
        limit = 2
        if message_id in LONGER_WITH_ALL_LINES and p["lines"] == joined_lines(
            language, ALL_LINES, p["named"] is True
        ):
            limit = 3
        result = count(text)
        if result.segments > limit:
            over.append((language, message_id, p["org"], p["named"], result))
    assert not over, over


def test_every_text_is_gsm7() -> None:
    """No text needs UCS-2, which would cut a segment from 153 characters to 67: the
    Spanish copy avoids á í ó ú, and no curly quote or emoji slips in."""
    for language, message_id, text, _p in renderings():
        assert not non_gsm7(text), (language, message_id, non_gsm7(text))


def test_spanish_hours_with_saturday_stay_gsm7() -> None:
    """The README's example hours, in Spanish, keep after_hours in GSM-7 and 2 segments."""
    hours = "mon-fri 09:00-17:00; sat 10:00-14:00 America/Chicago"
    text = copy.render("after_hours", "es", params("es", lines=DEFAULT_NATIONAL_LINES, hours=hours))
    assert count(text).encoding == "GSM-7" and count(text).segments <= 2


@pytest.mark.parametrize(("language", "skip"), [("en", "SKIP"), ("es", "SALTAR")])
def test_every_question_says_how_to_skip(language: str, skip: str) -> None:
    """Each screening, need and location question names the skip word, and that word
    is read as a skip."""
    assert keywords.answer(skip) == "skip"
    for message_id in QUESTIONS:
        assert skip in copy.template(message_id, language), message_id


def test_welcome_has_what_the_opening_needs() -> None:
    """The opening: org, confidentiality, 911, delete the thread, the YES/NO safety
    question, the other language's keyword, and the terms link only when one is set."""
    for named in (False, True):
        en = copy.render("welcome", "en", params("en", named))
        assert en.startswith(ORG_LONG)
        for part in ("confidential", "child", "911", "delete this thread", "safe", TERMS):
            assert part in en, (named, part)
        assert en.endswith("YES or NO.\nEspañol: responde ESPAÑOL")
        es = copy.render("welcome", "es", params("es", named) | {"terms": ""})
        for part in ("confidencial", "niño", "911", "seguro"):
            assert part in es, (named, part)
        assert re.search(r"borrar (este|el) chat", es)
        assert es.endswith("Responde SI o NO.\nEnglish: reply ENGLISH")
        assert "Términos" not in es and "  " not in es


@pytest.mark.parametrize("language", LANGS)
def test_need_menu_is_discreet_unless_naming_is_on(language: str) -> None:
    """The default need menu never says "sex" (or names abuse or trafficking); the named
    variant, used when the operator turns naming on, says it plainly."""
    sex = re.compile(r"\bsex", re.IGNORECASE)
    plain = copy.render("need_question", language, {})
    assert not sex.search(plain) and not FORBIDDEN.search(plain)
    assert ("dinero" if language == "es" else "money") in plain
    assert sex.search(copy.render("need_question", language, {"named": True}))


@pytest.mark.parametrize("language", LANGS)
def test_danger_texts_lead_with_the_emergency_line(language: str) -> None:
    """Emergency texts start with 911 and say it can be texted where available; suicide
    texts give 988 and 911; every danger text says an advocate will text or that the
    24/7 lines are open, and nothing comes before the emergency number but the opening."""
    p = params(language, lines=DEFAULT_NATIONAL_LINES)
    text_911 = "texto al 911" if language == "es" else "text 911"
    in_danger = (
        "Si corres peligro, llama al 911" if language == "es" else "If you're in danger, call 911"
    )
    advocate = "persona de apoyo" if language == "es" else "advocate"
    for message_id in ("danger_emergency", "danger_emergency_new", "danger_after_hours"):
        text = copy.render(message_id, language, p)
        assert text_911 in text, message_id
        opening = "" if message_id.endswith("_new") else in_danger
        assert text.startswith(opening) and in_danger in text, message_id
        assert text.index("911") < text.find(advocate) or advocate not in text, message_id
    for message_id in ("danger_suicide", "danger_suicide_new", "danger_suicide_after_hours"):
        text = copy.render(message_id, language, p)
        assert "988" in text and "911" in text, message_id
        if language == "es":
            assert "AYUDA al 988" in text, message_id
        else:
            assert "Call or text 988" in text, message_id
    for message_id in ("danger_emergency", "danger_suicide", *DANGER_NEW):
        text = copy.render(message_id, language, p)
        assert advocate in text, message_id
    lines = copy.render("danger_after_hours", language, p)
    assert joined_lines(language, DEFAULT_NATIONAL_LINES, False) in lines
    check = copy.render("danger_check", language, p)
    assert check.startswith("¿Corres peligro" if language == "es" else "Are you in danger")
    assert "911" in check


@pytest.mark.parametrize("language", LANGS)
def test_first_message_danger_texts_carry_the_opening(language: str) -> None:
    """A danger text that is also the first text of a conversation (or may be, after
    hours) names the org, says it is private, and says the thread can be deleted; the
    emergency line (911, or 988 for suicide) comes before all of that."""
    delete = "borrar este chat" if language == "es" else "delete this thread"
    for message_id in (*DANGER_NEW, "danger_after_hours", "danger_suicide_after_hours"):
        text = copy.render(message_id, language, params(language, org="Harbor House"))
        assert "Harbor House" in text and delete in text, message_id
    for message_id in DANGER_NEW:
        text = copy.render(message_id, language, params(language, org="Harbor House"))
        line = "988" if "suicide" in message_id else "911"
        assert text.index(line) < text.index("Harbor House"), message_id
        assert "privad" in text or "private" in text, message_id


@pytest.mark.parametrize("language", LANGS)
def test_unstaffed_waits_promise_no_minutes(language: str) -> None:
    """When no advocate is free, the wait texts give no position or minutes, but do give
    911, the national lines and that an advocate will reply here."""
    p = params(language, lines=DEFAULT_NATIONAL_LINES)
    for message_id in ("queued_unstaffed", "queue_update_unstaffed"):
        template = copy.template(message_id, language)
        assert not copy.template_fields(template) & {"position", "wait"}, message_id
        text = copy.render(message_id, language, p)
        assert "min" not in text.split("24/7")[0] and "911" in text, message_id
        assert str(p["lines"]) in text and "24/7" in text, message_id
        assert ("responder en este chat" if language == "es" else "reply here") in text


@pytest.mark.parametrize("language", LANGS)
def test_queue_texts_keep_position_and_wait(language: str) -> None:
    """queued and queue_update still tell the texter their place and the minutes."""
    for message_id in ("queued", "queue_update"):
        assert copy.template_fields(copy.template(message_id, language)) >= {"position", "wait"}
        text = copy.render(message_id, language, params(language))
        assert "99" in text and "120 min" in text and "911" in text


def test_after_hours_promise_is_only_in_the_safe_variant() -> None:
    """Only after_hours_safe promises a text when we open."""
    assert "We'll text" not in copy.render("after_hours", "en", params("en"))
    assert "We'll text" in copy.render("after_hours_safe", "en", params("en"))
    assert "Te escribimos" not in copy.render("after_hours", "es", params("es"))
    assert "Te escribimos" in copy.render("after_hours_safe", "es", params("es"))


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


def test_fields_of_says_which_params_a_message_may_use() -> None:
    """fields_of (the engine computes a place in line only for texts that show it) covers
    a message and its named variant, and is empty for an unknown id."""
    for language in LANGS:
        assert {"position", "wait"} <= copy.fields_of("queued", language)
        assert not copy.fields_of("danger_emergency", language) & {"position", "wait"}
        assert copy.fields_of("welcome", language) >= {"org"}
        assert copy.fields_of("no_such_message", language) == frozenset()

"""The safety plan an advocate fills in with the texter (issue 8, part 3), and the short
series of texts it is sent as.

The headings are localised copy (flows/copy, ids `safety_plan_*`); what goes under them is
what the advocate types. Sending is texting first, so rule 2 gates it: only after the
texter said it is safe to text, never in their unsafe hours (`refusal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.engine import may_text_first
from bot.hours import Hours, in_unsafe_hours
from bot.store.base import Texter
from flows import copy
from flows.sms_segments import segments

SECTIONS = ("contacts", "code_word", "place", "documents", "children", "pets", "technology")
MAX_SECTION = 1000  # characters an advocate may write under one heading
MAX_SEGMENTS = 2  # per text (DESIGN.md: every text fits 2 SMS segments)


def heading(section: str, language: str) -> str:
    return copy.render(f"safety_plan_{section}", language, {})


def clean(form: Mapping[str, str]) -> dict[str, str]:
    """The plan's sections from a form, stripped; empty ones left out."""
    plan: dict[str, str] = {}
    for section in SECTIONS:
        text = form.get(section, "").strip()
        if len(text) > MAX_SECTION:
            raise ValueError(f"{section} is longer than {MAX_SECTION} characters")
        if text:
            plan[section] = text
    return plan


def _fits(text: str) -> bool:
    return segments(text) <= MAX_SEGMENTS


def _pieces(head: str, more: str, body: str) -> list[str]:
    """`head: body` in as few texts as fit 2 segments each, split between words (inside a
    word only when one word alone is too long); later texts start `more: `."""
    texts: list[str] = []
    prefix, current = f"{head}: ", ""
    for word in body.split():
        candidate = f"{current} {word}" if current else word
        if _fits(prefix + candidate):
            current = candidate
            continue
        if current:
            texts.append(prefix + current)
            prefix, current = f"{more}: ", ""
        while not _fits(prefix + word):  # one word longer than a text: cut it
            cut = len(word)
            while cut > 1 and not _fits(prefix + word[:cut]):
                cut -= 1
            texts.append(prefix + word[:cut])
            prefix, word = f"{more}: ", word[cut:]
        current = word
    if current:
        texts.append(prefix + current)
    return texts


def texts(plan: Mapping[str, str], language: str) -> list[str]:
    """The plan as texts in the texter's language: a short opening line, then each filled
    section under its heading, in template order; none is over 2 SMS segments."""
    out = [copy.render("safety_plan_intro", language, {})]
    for section in SECTIONS:
        body = plan.get(section, "").strip()
        if body:
            head = heading(section, language)
            more = f"{head} ({copy.render('safety_plan_continued', language, {})})"
            out += _pieces(head, more, body)
    return out


def refusal(texter: Texter, now: datetime, hours: Hours) -> str | None:
    """Why the plan may not be texted now (rule 2), or None when it may."""
    if may_text_first(texter, now, hours):
        return None
    if texter.opted_out:
        return "Not sent: the texter has opted out (they must text START first)."
    if texter.safe_to_text is False:
        return "Not sent: the texter said it is not safe to text."
    if texter.safe_to_text is not True:
        return "Not sent: the texter has not said it is safe to text."
    if in_unsafe_hours(texter.unsafe_hours, now, hours.zone):
        return "Not sent: it is inside the texter's unsafe hours."
    return "Not sent: it is not safe to text them now."

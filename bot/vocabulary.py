"""Small shared vocabularies, each defined once: roles, languages, E.164 numbers, masking,
the role-play number range, and the clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

ROLES: tuple[str, ...] = ("advocate", "supervisor", "admin")
# Roles that hold conversations and text texters (admins watch but do not text).
TEXTING_ROLES = frozenset({"advocate", "supervisor"})
LANGUAGES: tuple[str, ...] = ("en", "es")

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")

# Role-play texters (the dashboard's training page) use the fictional 202-555-0100..0199.
ROLE_PLAY_PREFIX = "+120255501"


def is_e164(number: str) -> bool:
    return bool(E164.match(number))


def is_role_play(phone: str) -> bool:
    """A fictional training number (555-01xx), never a real texter."""
    return len(phone) == 12 and phone.startswith(ROLE_PLAY_PREFIX)


def mask_number(phone: str) -> str:
    """ "…42": the last two digits only, all staff ever see of a number."""
    digits = [c for c in phone if c.isdigit()]
    return "…" + "".join(digits[-2:])


def utcnow() -> datetime:
    return datetime.now(UTC)

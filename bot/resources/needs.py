"""The needs a texter can be helped with, and how a directory service is tagged with them.

A service's needs are the first of these that gives any (documented in the README):
1. a `needs` column in services.csv (a Haven extension): our words, separated by `;` or `,`;
2. its HSDS taxonomy terms and attributes (attributes.csv → taxonomy_terms.csv): each term's
   name, code and description, and the attribute's value and label, read with the keyword
   list below;
3. the keyword list read over the service's name, alternate name and description.
Keywords are English and Spanish, matched as whole words (a trailing `*` is a prefix),
case- and accent-insensitive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

NEEDS = ("shelter", "legal", "housing", "financial", "health", "immigration", "youth", "hotline")

KEYWORDS: dict[str, tuple[str, ...]] = {
    "shelter": (
        "shelter*",
        "safe house",
        "safehouse",
        "emergency housing",
        "refugio*",
        "albergue*",
        "casa segura",
    ),
    "legal": (
        "legal",
        "lawyer*",
        "attorney*",
        "court",
        "courts",
        "courthouse",
        "protective order*",
        "order of protection",
        "orders of protection",
        "restraining order*",
        "abogad*",
        "orden de proteccion",
        "ordenes de proteccion",
        "asesoria legal",
        "juridic*",
    ),
    "housing": (
        "housing",
        "rent",
        "rental",
        "eviction*",
        "rehousing",
        "transitional living",
        "vivienda*",
        "alquiler*",
        "renta",
        "desalojo*",
    ),
    "financial": (
        "financial",
        "finance*",
        "money",
        "cash assistance",
        "public benefits",
        "utility assistance",
        "financier*",
        "dinero",
        "economic*",
        "ayuda economica",
    ),
    "health": (
        "health",
        "healthcare",
        "medical",
        "clinic*",
        "counseling",
        "counselling",
        "therapy",
        "hospital",
        "hospitals",
        "nurse",
        "nurses",
        "salud",
        "medic*",
        "clinica*",
        "terapia",
    ),
    "immigration": (
        "immigra*",
        "immigrant*",
        "visa*",
        "asylum",
        "refugee*",
        "inmigra*",
        "migrante*",
        "asilo",
    ),
    "youth": (
        "youth",
        "teen*",
        "young people",
        "young adults",
        "adolescen*",
        "runaway*",
        "juvenil*",
        "joven",
        "jovenes",
        "menores",
    ),
    "hotline": (
        "hotline*",
        "helpline*",
        "crisis line*",
        "crisis text line",
        "warmline*",
        "linea de ayuda",
        "linea de crisis",
    ),
}


def fold(text: str) -> str:
    """Lower case without accents: `Asesoría` and `asesoria` read alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _pattern(words: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for word in words:
        prefix = word.endswith("*")
        body = r"\s+".join(re.escape(w) for w in word.rstrip("*").split())
        parts.append(body + (r"\w*" if prefix else r"\b"))
    return re.compile(r"\b(?:" + "|".join(parts) + ")")


_PATTERNS = {need: _pattern(words) for need, words in KEYWORDS.items()}


def needs_in(texts: Iterable[str]) -> list[str]:
    """The needs whose keywords occur in any of `texts`, in NEEDS order."""
    folded = fold(" \n ".join(t for t in texts if t))
    return [need for need in NEEDS if _PATTERNS[need].search(folded)]


def parse_needs(value: str) -> list[str]:
    """A `needs` cell (`shelter; hotline`) as NEEDS words in NEEDS order; ValueError names
    an unknown word."""
    words = {w.strip().lower() for w in re.split(r"[;,]", value) if w.strip()}
    unknown = sorted(words - set(NEEDS))
    if unknown:
        raise ValueError(f"unknown need {unknown[0]!r} (known: {', '.join(NEEDS)})")
    return [need for need in NEEDS if need in words]

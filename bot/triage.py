"""Danger and need detection for one message (DESIGN.md section 5).

First cut: the triage issue replaces the detection; the interface below is fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LABELS = ("emergency", "suicide", "trafficking", "abuse")


@dataclass(frozen=True)
class Triage:
    labels: frozenset[str] = field(default_factory=frozenset)
    priority: int = 4  # 1 emergency/suicide, 2 trafficking, 3 abuse, 4 other
    language: str = "en"  # "en" | "es"
    signals: tuple[str, ...] = ()  # short ids of what fired, e.g. "emergency:weapon"

    @property
    def danger(self) -> bool:
        return "emergency" in self.labels or "suicide" in self.labels

    def as_json(self) -> dict[str, object]:
        return {
            "labels": sorted(self.labels),
            "priority": self.priority,
            "language": self.language,
        }


_ES = re.compile(r"\b(hola|ayuda|estoy|tengo|mi|me|el|ella|por favor|pero|que|no puedo)\b", re.I)
_RULES = {
    "emergency": re.compile(r"\b(knife|gun|hitting me|punching|choking|cuchillo|pistola)\b", re.I),
    "suicide": re.compile(r"\b(kill myself|kms|suicid\w*|matarme)\b", re.I),
    "trafficking": re.compile(r"\b(passport|pasaporte|debt|deuda)\b", re.I),
    "abuse": re.compile(r"\b(hits me|hurts me|me pega|controls)\b", re.I),
}


def detect_language(text: str) -> str:
    return "es" if len(_ES.findall(text)) >= 2 else "en"


def priority_for(labels: frozenset[str]) -> int:
    if labels & {"emergency", "suicide"}:
        return 1
    if "trafficking" in labels:
        return 2
    if "abuse" in labels:
        return 3
    return 4


def triage(text: str, language: str | None = None) -> Triage:
    lang = language or detect_language(text)
    labels = frozenset(name for name, rule in _RULES.items() if rule.search(text))
    signals = tuple(sorted(f"{name}:keyword" for name in labels))
    return Triage(labels, priority_for(labels), lang, signals)

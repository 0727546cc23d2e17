"""What a triage says: the labels, which of them are danger, the priority they give, and
the frozen Triage result that engine, queue and dashboard read.

No logic beyond that vocabulary, so the model, the matcher and the callers can all share it
without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LABELS = ("emergency", "suicide", "trafficking", "abuse")  # also the model's column order
DANGER = frozenset({"emergency", "suicide"})  # the labels that put 911 / 988 in the reply


def priority_for(labels: frozenset[str]) -> int:
    """1 emergency or suicide, 2 trafficking, 3 abuse, 4 anything else."""
    if labels & DANGER:
        return 1
    if "trafficking" in labels:
        return 2
    if "abuse" in labels:
        return 3
    return 4


@dataclass(frozen=True)
class Triage:
    labels: frozenset[str] = field(default_factory=frozenset)
    priority: int = 4  # 1 emergency/suicide, 2 trafficking, 3 abuse, 4 other
    language: str = "en"  # "en" | "es"
    signals: tuple[str, ...] = ()  # short ids of what fired, e.g. "emergency:weapon"
    # Close to danger but under it (the model's emergency/suicide vote near its bar, or a
    # threat held back by "if"): the engine asks once "Are you in danger right now?".
    # Always False when a danger label is given.
    near_danger: bool = False

    @property
    def danger(self) -> bool:
        return bool(DANGER & self.labels)

    def as_json(self) -> dict[str, object]:
        return {
            "labels": sorted(self.labels),
            "priority": self.priority,
            "language": self.language,
        }

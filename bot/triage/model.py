"""The learned second opinion: one logistic regression per label over word and letter
n-grams, read in plain Python from a weights file (bot/lexicon/model.json.gz).

The rules in bot/lexicon read negation, tense and idioms; they miss phrasings nobody wrote a
pattern for ("exhausted of life tbh"). This model has seen two thousand labelled texts and
generalises across spelling and wording, but reads no grammar, so bot.triage.pipeline lets
it add a label the rules missed, never remove one (see there for its vetoes).

Inference is a dictionary look-up per n-gram, well under a millisecond; the weights load on
first use (`get_model()`). This module knows nothing of the rules, so training
(tools/train_triage.py, a development tool outside the shipped package) can use it freely.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from bot.triage.verdict import LABELS

MODEL_PATH = Path(__file__).parent.parent / "lexicon" / "model.json.gz"
# Per label, chosen on the cross-writer runs (python -m tools.train_triage --cross: train
# without one writer's set, score triage on it): suicide and abuse bars lowered where that
# bought recall for little false alarm; emergency kept high (its false alarms cost most).
THRESHOLDS = (0.6, 0.4, 0.5, 0.5)
CHAR_SIZES = (3, 4, 5)


class ModelError(ValueError):
    """The weights file is missing or malformed."""


def features(words: Sequence[str], folded: str) -> dict[str, float]:
    """Binary n-gram features, L2-normalised: normalised words (SMS spelling expanded,
    typos repaired) and their pairs, and 3-5 letter grams of the folded text."""
    found = _named(words)
    found.update("c:" + gram for gram in _grams(folded))
    value = 1.0 / math.sqrt(len(found)) if found else 0.0
    return dict.fromkeys(found, value)


def _named(words: Sequence[str]) -> set[str]:
    """The word and word-pair features ("w:..." and "b:...")."""
    found = {"w:" + w for w in words}
    found.update("b:" + a + "_" + b for a, b in pairwise(words))
    return found


def _grams(folded: str) -> set[str]:
    """The 3-5 letter grams of the folded text, spaces collapsed, without their "c:"."""
    padded = " " + " ".join(folded.split()) + " "
    end = len(padded) + 1
    return {padded[i : i + n] for n in CHAR_SIZES for i in range(end - n)}


@dataclass(frozen=True)
class Model:
    bias: tuple[float, ...]  # per label, in LABELS order
    weights: dict[str, tuple[float, ...]]  # feature -> per-label weight
    thresholds: tuple[float, ...] = THRESHOLDS
    # Per label, the words that support it ("pills", "matarme", "knife"): words seen mostly
    # in texts with that label (tools/train_triage.py picks them). bot.triage.pipeline
    # lets the model add a danger label only where one of its words is present, so a
    # vote carried by letter grams of function words ("how long will it take") is no 988.
    # Empty: no such check (a weights file from before cues).
    cues: dict[str, frozenset[str]] = field(default_factory=dict)
    # Letter-gram rows keyed without their "c:", so the hot path builds no string per gram
    # (the same row tuples as `weights`, shared).
    _by_gram: dict[str, tuple[float, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grams = {k[2:]: row for k, row in self.weights.items() if k[:2] == "c:"}
        object.__setattr__(self, "_by_gram", grams)

    def probabilities(self, feats: dict[str, float]) -> dict[str, float]:
        # Every feature has the same value (binary, L2-normalised), so each label's score
        # is its bias plus that value times the sum of the present features' weights.
        value = next(iter(feats.values()), 0.0)
        return self._squash(value, list(filter(None, map(self.weights.get, feats))))

    def probabilities_of(self, words: Sequence[str], folded: str) -> dict[str, float]:
        """`probabilities(features(words, folded))` without building the features: the
        triage hot path (the same sums, up to the order of addition, which a set never
        fixed anyway)."""
        named = _named(words)
        grams = _grams(folded)
        count = len(named) + len(grams)
        value = 1.0 / math.sqrt(count) if count else 0.0
        rows = list(filter(None, map(self.weights.get, named)))
        rows += filter(None, map(self._by_gram.get, grams))
        return self._squash(value, rows)

    def _squash(self, value: float, rows: list[tuple[float, ...]]) -> dict[str, float]:
        # One dictionary probe per feature gives all its labels' weights; zip(*rows) turns
        # them into one column per label in C, each summed on sum()'s float fast path.
        sums = [sum(column) for column in zip(*rows, strict=True)] or [0.0] * len(LABELS)
        out = {}
        for label, bias, total in zip(LABELS, self.bias, sums, strict=True):
            score = bias + value * total
            out[label] = 1.0 / (1.0 + math.exp(-score))
        return out

    @property
    def bars(self) -> tuple[tuple[str, float], ...]:
        """(label, threshold) pairs in LABELS order."""
        return tuple(zip(LABELS, self.thresholds, strict=True))

    def labels(self, feats: dict[str, float]) -> set[str]:
        probabilities = self.probabilities(feats)
        return {
            lab
            for lab, bar in zip(LABELS, self.thresholds, strict=True)
            if probabilities[lab] >= bar
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": list(LABELS),
            "thresholds": list(self.thresholds),
            "bias": [round(b, 5) for b in self.bias],
            "weights": {k: [round(w, 5) for w in v] for k, v in sorted(self.weights.items())},
            "cues": {label: sorted(words) for label, words in sorted(self.cues.items())},
        }


def load_model(path: Path = MODEL_PATH) -> Model:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path.name}: {exc}") from exc
    if not isinstance(data, dict) or data.get("labels") != list(LABELS):
        raise ModelError(f"{path.name}: labels must be {list(LABELS)}")
    try:
        bias = tuple(float(b) for b in data["bias"])
        weights = {str(k): tuple(map(float, v)) for k, v in data["weights"].items()}
        thresholds = tuple(float(t) for t in data["thresholds"])
        cues = {str(k): frozenset(map(str, v)) for k, v in data.get("cues", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path.name}: malformed ({exc})") from exc
    if len(bias) != len(LABELS) or any(len(v) != len(LABELS) for v in weights.values()):
        raise ModelError(f"{path.name}: every row needs {len(LABELS)} weights")
    if len(thresholds) != len(LABELS) or not all(0.0 < t < 1.0 for t in thresholds):
        raise ModelError(f"{path.name}: one threshold per label, each between 0 and 1")
    if not set(cues) <= set(LABELS):
        raise ModelError(f"{path.name}: cues only for {list(LABELS)}")
    return Model(bias, weights, thresholds, cues)


@cache
def get_model() -> Model | None:
    """The model triage consults, loaded from MODEL_PATH on first use; None only when no
    weights file exists yet (before the first training)."""
    return load_model() if MODEL_PATH.exists() else None

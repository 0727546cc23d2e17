"""The learned second opinion: one logistic regression per label over word and letter
n-grams, read in plain Python from a weights file (bot/lexicon/model.json.gz).

The rules in bot/lexicon read negation, tense and idioms; they miss phrasings nobody wrote a
pattern for ("exhausted of life tbh"). This model has seen thousands of labelled texts and
generalises across spelling and wording, but reads no grammar, so bot.triage.pipeline lets
it add a label the rules missed, never remove one (see there for its vetoes).

Inference is a dictionary look-up per n-gram and one sum, tens of microseconds; the weights
load on first use (`get_model()`). Each feature's four weights are held as one packed int
(see `pack`), not a tuple of four floats: a third of the memory (issue 11: the server must
stay under 200 MB), and one C-level sum() over the present features adds all labels at once.
This module knows nothing of the rules, so training (tools/train_triage.py, a development
tool outside the shipped package) can use it freely.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from pathlib import Path

from bot.triage.verdict import LABELS

MODEL_PATH = Path(__file__).parent.parent / "lexicon" / "model.json.gz"
# Per label, chosen on the cross-writer runs (python -m tools.train_triage --cross: train
# without one writer's set, score triage on it). Trafficking 0.5 -> 0.45 bought +0.3 points
# of recall for +0.1 of false alarms over seven writers. Suicide stays 0.4: 0.35 bought
# +0.4 / +0.2 but read "how many nights can i stay" and a dosage question as suicide.
# Emergency stays high (0.55: +0.5 / +0.3, its false alarms already over 3 %), abuse too
# (its false alarms are far over 5 %).
THRESHOLDS = (0.6, 0.4, 0.45, 0.5)
CHAR_SIZES = (3, 4, 5)
FORMAT = 2  # the weights file's layout (see Model.to_json)
# Weights are whole multiples of SCALE (the file always kept five decimals), so sums of
# them are exact integers. FIELD bits per label in a packed row hold sums up to 2**47
# units: a hundred million features weighing 10 each, far beyond any message.
SCALE = 1e-5
FIELD = 48
_HALF = 1 << (FIELD - 1)
_MASK = (1 << FIELD) - 1


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


def pack(units: Sequence[int]) -> int:
    """One int holding a feature's weight for every label, in SCALE units, label k in bits
    FIELD*k upwards (signed fields: a negative one borrows from the next). Adding packed
    rows adds every label's weights at once; `unpack` takes the sums apart again."""
    total = 0
    for unit in reversed(units):
        total = (total << FIELD) + unit
    return total


def unpack(total: int) -> list[int]:
    """The per-label sums (SCALE units) in a sum of packed rows."""
    out = []
    for _ in LABELS:
        low = ((total + _HALF) & _MASK) - _HALF
        out.append(low)
        total = (total - low) >> FIELD
    return out


def to_units(weight: float) -> int:
    return round(weight / SCALE)


@dataclass(frozen=True)
class Weights:
    """Every feature's packed row (see `pack`): word and word-pair features under their
    names ("w:pills", "b:the_bridge"), letter grams without their "c:" so the hot path
    builds no string per gram. Strings stay in Python dicts (look-ups at C speed); each row
    is one int object instead of a tuple and four floats."""

    named: dict[str, int]
    grams: dict[str, int]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, Sequence[float]]]) -> Weights:
        """From (feature, per-label float weights), rounded to SCALE; all-zero rows drop."""
        named: dict[str, int] = {}
        grams: dict[str, int] = {}
        for name, row in rows:
            packed = pack([to_units(w) for w in row])
            if packed:
                if name[:2] == "c:":
                    grams[name[2:]] = packed
                else:
                    named[name] = packed
        return cls(named, grams)

    def __len__(self) -> int:
        return len(self.named) + len(self.grams)

    def get(self, name: str) -> int | None:
        """The packed row of a feature by its full name ("c:" grams included)."""
        return self.grams.get(name[2:]) if name[:2] == "c:" else self.named.get(name)

    def rows(self) -> Iterator[tuple[str, list[int]]]:
        """(full feature name, per-label weights in SCALE units), sorted by name."""
        every = [*self.named.items(), *(("c:" + g, p) for g, p in self.grams.items())]
        for name, packed in sorted(every):
            yield name, unpack(packed)


@dataclass(frozen=True)
class Model:
    bias: tuple[float, ...]  # per label, in LABELS order
    weights: Weights
    thresholds: tuple[float, ...] = THRESHOLDS
    # Per label, the words that support it ("pills", "matarme", "knife"): words seen mostly
    # in texts with that label (tools/train_triage.py picks them). bot.triage.pipeline
    # lets the model add a danger label only where one of its words is present, so a
    # vote carried by letter grams of function words ("how long will it take") is no 988.
    # Empty: no such check (a weights file from before cues).
    cues: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_weights(
        cls,
        bias: Sequence[float],
        weights: Mapping[str, Sequence[float]],
        thresholds: tuple[float, ...] = THRESHOLDS,
        cues: dict[str, frozenset[str]] | None = None,
    ) -> Model:
        """A model from per-feature float weights (training's output), rounded to SCALE as
        the weights file keeps them, so a trained model reads as its saved file will."""
        return cls(tuple(bias), Weights.from_rows(weights.items()), thresholds, cues or {})

    def probabilities(self, feats: dict[str, float]) -> dict[str, float]:
        # Every feature has the same value (binary, L2-normalised), so each label's score
        # is its bias plus that value times the sum of the present features' weights.
        value = next(iter(feats.values()), 0.0)
        return self._squash(value, sum(filter(None, map(self.weights.get, feats))))

    def probabilities_of(self, words: Sequence[str], folded: str) -> dict[str, float]:
        """`probabilities(features(words, folded))` without building the features: the
        triage hot path."""
        named = _named(words)
        grams = _grams(folded)
        count = len(named) + len(grams)
        value = 1.0 / math.sqrt(count) if count else 0.0
        # One sum of packed ints adds every label's weights at once, exactly.
        total = sum(filter(None, map(self.weights.named.get, named)))
        total += sum(filter(None, map(self.weights.grams.get, grams)))
        return self._squash(value, total)

    def _squash(self, value: float, total: int) -> dict[str, float]:
        out = {}
        for label, bias, units in zip(LABELS, self.bias, unpack(total), strict=True):
            score = bias + value * (units * SCALE)
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

    def lines(self) -> Iterator[str]:
        """The weights file, one JSON value a line: a header (labels, thresholds, bias,
        scale, cues), then one [feature, weight, ...] row a feature, sorted, its weights in
        SCALE units in LABELS order. Loading reads a line at a time and keeps the names it
        parses as its keys: it never holds the whole text nor a list per feature, which is
        what made the old single-object file peak at twice the loaded model."""
        header = {
            "format": FORMAT,
            "labels": list(LABELS),
            "thresholds": list(self.thresholds),
            "bias": [round(b, 5) for b in self.bias],
            "scale": SCALE,
            "cues": {label: sorted(words) for label, words in sorted(self.cues.items())},
        }
        yield json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n"
        for name, row in self.weights.rows():
            yield json.dumps([name, *row], ensure_ascii=False, separators=(",", ":")) + "\n"


def _read(handle: Iterator[str]) -> Model:
    header = json.loads(next(handle, "null"))
    if not isinstance(header, dict) or header.get("labels") != list(LABELS):
        raise ModelError(f"labels must be {list(LABELS)}")
    if header.get("format") != FORMAT or header.get("scale") != SCALE:
        raise ValueError(f"format {FORMAT} with scale {SCALE} expected")
    bias = tuple(float(b) for b in header["bias"])
    thresholds = tuple(float(t) for t in header["thresholds"])
    cues = {str(k): frozenset(map(str, v)) for k, v in header.get("cues", {}).items()}
    width = len(LABELS)
    named: dict[str, int] = {}
    grams: dict[str, int] = {}
    loads = json.loads
    for line in handle:
        name, *row = loads(line)
        if type(name) is not str or len(row) != width or any(type(u) is not int for u in row):
            raise ValueError(f"every row needs a name and {width} whole weights")
        if name[:2] == "c:":
            grams[name[2:]] = pack(row)
        else:
            named[name] = pack(row)
    if len(bias) != width:
        raise ModelError(f"one bias per label, {width}")
    if len(thresholds) != width or not all(0.0 < t < 1.0 for t in thresholds):
        raise ModelError("one threshold per label, each between 0 and 1")
    if not set(cues) <= set(LABELS):
        raise ModelError(f"cues only for {list(LABELS)}")
    return Model(bias, Weights(named, grams), thresholds, cues)


def load_model(path: Path = MODEL_PATH) -> Model:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return _read(handle)
    except ModelError as exc:
        raise ModelError(f"{path.name}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path.name}: malformed ({exc})") from exc


@cache
def get_model() -> Model | None:
    """The model triage consults, loaded from MODEL_PATH on first use; None only when no
    weights file exists yet (before the first training)."""
    return load_model() if MODEL_PATH.exists() else None

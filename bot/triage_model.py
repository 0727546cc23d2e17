"""A learned second opinion for triage: one logistic regression per label over word and
character n-grams, trained on our labelled examples.

The rules in bot/lexicon read negation, tense and idioms; they miss phrasings nobody wrote a
pattern for ("exhausted of life tbh"). This model has seen two thousand labelled texts and
generalises across spelling and wording, but reads no grammar. So triage() lets it add a
label the rules missed, never remove one, and never where the rules saw that label negated,
in the past, hypothetical, or (for danger) inside an idiom.

Inference is plain Python over a weights file (bot/lexicon/model.json.gz): a dictionary
look-up per n-gram, well under a millisecond. Training needs scikit-learn, a development
tool only: `pip install scikit-learn && python -m bot.triage_model train`.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

LABELS = ("emergency", "suicide", "trafficking", "abuse")
MODEL_PATH = Path(__file__).with_name("lexicon") / "model.json.gz"
# Per label, chosen by 5-fold cross-validation on our examples and one blind set: where a
# higher bar kept recall it was taken (fewer false alarms), else recall won.
THRESHOLDS = (0.6, 0.5, 0.5, 0.6)
C = 30.0  # weak regularisation, solved to convergence: fits our examples, generalised best
CHAR_SIZES = (3, 4, 5)


class ModelError(ValueError):
    """The weights file is missing or malformed."""


def features(words: Sequence[str], folded: str) -> dict[str, float]:
    """Binary n-gram features, L2-normalised: normalised words (SMS spelling expanded,
    typos repaired) and their pairs, and 3-5 letter grams of the folded text."""
    found: set[str] = {"w:" + w for w in words}
    found.update("b:" + a + "_" + b for a, b in pairwise(words))
    padded = " " + " ".join(folded.split()) + " "
    for n in CHAR_SIZES:
        found.update("c:" + padded[i : i + n] for i in range(len(padded) - n + 1))
    value = 1.0 / math.sqrt(len(found)) if found else 0.0
    return dict.fromkeys(found, value)


@dataclass(frozen=True)
class Model:
    bias: tuple[float, ...]  # per label, in LABELS order
    weights: dict[str, tuple[float, ...]]  # feature -> per-label weight
    thresholds: tuple[float, ...] = THRESHOLDS

    def probabilities(self, feats: dict[str, float]) -> dict[str, float]:
        # Every feature has the same value (binary, L2-normalised), so each label's score
        # is its bias plus that value times the sum of the present features' weights.
        get = self.weights.get
        rows = [row for row in map(get, feats) if row is not None]
        value = next(iter(feats.values()), 0.0)
        sums = [math.fsum(col) for col in zip(*rows, strict=True)] if rows else [0.0] * len(LABELS)
        scores = [b + value * s for b, s in zip(self.bias, sums, strict=True)]
        return {label: 1.0 / (1.0 + math.exp(-s)) for label, s in zip(LABELS, scores, strict=True)}

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
        weights = {str(k): tuple(float(w) for w in v) for k, v in data["weights"].items()}
        thresholds = tuple(float(t) for t in data["thresholds"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path.name}: malformed ({exc})") from exc
    if len(bias) != len(LABELS) or any(len(v) != len(LABELS) for v in weights.values()):
        raise ModelError(f"{path.name}: every row needs {len(LABELS)} weights")
    if len(thresholds) != len(LABELS) or not all(0.0 < t < 1.0 for t in thresholds):
        raise ModelError(f"{path.name}: one threshold per label, each between 0 and 1")
    return Model(bias, weights, thresholds)


# --- training (development only) -------------------------------------------------------------


def example_features(text: str) -> dict[str, float]:
    from bot.triage import feature_input  # the very same inputs triage() gives the model

    return features(*feature_input(text))


def fit(examples: Iterable[dict[str, Any]], c: float = C) -> Model:
    """One balanced logistic regression per label (scikit-learn, imported only here)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    rows = list(examples)
    vectorizer = DictVectorizer()
    matrix = vectorizer.fit_transform([example_features(r["text"]) for r in rows])
    names = vectorizer.get_feature_names_out()
    coefs, bias = [], []
    for label in LABELS:
        target = [label in r["labels"] for r in rows]
        # A tight tolerance: lbfgs's default stops early and leaves examples unfitted.
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=20000, tol=1e-8)
        clf.fit(matrix, target)
        coefs.append(clf.coef_[0])
        bias.append(float(clf.intercept_[0]))
    weights = {
        str(name): tuple(float(col[i]) for col in coefs)
        for i, name in enumerate(names)
        if any(abs(col[i]) >= 1e-4 for col in coefs)
    }
    return Model(tuple(bias), weights)


def training_examples(repo: Path) -> list[dict[str, Any]]:
    """Our examples plus the shared ones (../shared beside the repository), as JSON rows."""
    paths = [repo / "tests" / "triage_examples.jsonl"]
    shared = repo.parent / "shared" / "triage" / "examples.jsonl"
    if shared.is_file():
        paths.append(shared)
    rows = []
    for path in paths:
        rows += [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["train"]:
        print("usage: python -m bot.triage_model train", file=sys.stderr)
        return 2
    repo = Path(__file__).resolve().parent.parent
    rows = training_examples(repo)
    # Features come from bot.triage, which loads the current model on import: train from a
    # clean slate so an old or broken file cannot stand in the way (git keeps the old one).
    MODEL_PATH.unlink(missing_ok=True)
    model = fit(rows)
    with gzip.open(MODEL_PATH, "wt", encoding="utf-8", compresslevel=9) as handle:
        json.dump(model.to_json(), handle, separators=(",", ":"))
    print(f"trained on {len(rows)} examples, {len(model.weights)} features -> {MODEL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

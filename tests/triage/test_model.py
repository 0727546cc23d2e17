"""Issue 11 (memory): the model's weights are held packed, one int per feature, and read
exactly as the per-label float weights they stand for; the weights file round-trips and
loading it costs a few tens of megabytes, not the old sixty."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.triage.model import SCALE, Model, features, load_model, pack, unpack
from bot.triage.pipeline import feature_input
from bot.triage.verdict import LABELS
from tools.train_triage import save

REPO = Path(__file__).resolve().parents[2]
UNIT = st.integers(min_value=-(10**7), max_value=10**7)  # weights up to 100 either way
ROW = st.lists(UNIT, min_size=len(LABELS), max_size=len(LABELS))


@given(st.lists(ROW, max_size=300))
def test_a_sum_of_packed_rows_unpacks_to_each_labels_sum(rows: list[list[int]]) -> None:
    """Adding packed rows adds every label's weights, signs and all: unpacking the sum
    gives each label's own sum, whatever mix of positive and negative weights."""
    expected = [sum(row[k] for row in rows) for k in range(len(LABELS))]
    assert unpack(sum(map(pack, rows))) == expected


def _naive(model_weights: dict[str, list[float]], bias: list[float], text: str) -> list[float]:
    """Logistic regression written out by hand: bias plus feature value times weights."""
    feats = features(*feature_input(text))
    out = []
    for k, b in enumerate(bias):
        score = b + sum(v * model_weights.get(f, [0.0] * len(LABELS))[k] for f, v in feats.items())
        out.append(1.0 / (1.0 + math.exp(-score)))
    return out


def test_a_saved_model_loads_and_scores_as_its_float_weights(tmp_path: Path) -> None:
    """A model built from float weights is saved, loaded and scored: its probabilities are
    the hand-written logistic regression's over the same weights rounded to SCALE, on both
    the hot path and the feature-dict path, and the rounding is all that changed."""
    weights = {
        "w:pills": [0.5, 3.25, 0.0, -0.125],
        "b:the_bridge": [0.0, 2.0, 0.0, 0.0],
        "c:kni": [2.5, -0.3, 0.0, 0.1],
        "c: he": [0.1, 0.1, 0.1, 0.1],
        "w:quiet": [-1.000004, 0.0, 0.0, 0.0],  # rounds to -1.0
    }
    bias = [-2.0, -1.5, -3.0, -2.5]
    model = Model.from_weights(bias, weights, cues={"suicide": frozenset({"pills"})})
    path = tmp_path / "model.json.gz"
    save(model, path)
    loaded = load_model(path)
    assert loaded.cues == {"suicide": frozenset({"pills"})}
    rounded = {k: [round(w / SCALE) * SCALE for w in v] for k, v in weights.items()}
    for text in ["he has a knife and the pills", "quiet day near the bridge", "ok thanks"]:
        expected = _naive(rounded, bias, text)
        for got in (
            loaded.probabilities_of(*feature_input(text)),
            loaded.probabilities(features(*feature_input(text))),
        ):
            for label, want in zip(LABELS, expected, strict=True):
                assert abs(got[label] - want) < 1e-12, (text, label, got[label], want)
    assert dict(loaded.weights.rows())["w:quiet"] == [-100000, 0, 0, 0]


def test_loading_the_shipped_model_costs_little_memory() -> None:
    """In a fresh interpreter, loading the shipped weights adds under 30 MB of resident
    memory (the tuple-per-feature model added about 58 MB; issue 11 caps the server at
    200 MB), measured from /proc/self/statm around get_model()."""
    script = """
import os
from bot.triage.model import get_model
def resident():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = resident()
assert get_model() is not None
print((resident() - before) / 1e6)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 30.0, done.stdout

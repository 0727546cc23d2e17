"""Retrain triage's learned second opinion (bot/lexicon/model.json.gz) from our labelled
examples: `pip install -e '.[train]' && python -m tools.train_triage`.

One balanced logistic regression per label over the very features triage() gives the model
(bot.triage.feature_input, then bot.triage.model.features). Training reads
tests/triage_examples.jsonl, every tests/triage/data/*.jsonl (sets written by independent
writers) and, when the repository sits beside ../shared, the shared examples too; never
tests/triage_held_out.jsonl, which guards generalisation.

`python -m tools.train_triage --cross` estimates how triage holds on a writer it never
saw: for each independent set, train on everything else, run the whole of triage (rules
and that model) over the set, and print recall and false-alarm rate per label.
scikit-learn is imported only here: a development tool, never needed at run time.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bot.triage.model import MODEL_PATH, Model, features
from bot.triage.pipeline import feature_input
from bot.triage.verdict import DANGER, LABELS

# Weak regularisation, solved to convergence: fits our examples; on the cross-writer runs
# it generalised as well as C=30 with fewer false alarms (issue 9).
C = 100.0
# A cue word for a danger label: in at least CUE_LEAST of its texts, and that label in at
# least CUE_SHARE of the texts with the word (see cue_words).
CUE_LEAST = 3
CUE_SHARE = 0.4
REPO = Path(__file__).resolve().parent.parent


def example_features(text: str) -> dict[str, float]:
    return features(*feature_input(text))  # the very same inputs triage() gives the model


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
    return Model.from_weights(bias, weights, cues=cue_words(rows))


def cue_words(
    rows: Sequence[dict[str, Any]], least: int = CUE_LEAST, share: float = CUE_SHARE
) -> dict[str, frozenset[str]]:
    """Per danger label, the normalised words found in at least `least` of its texts and
    with that label in at least `share` of all texts that have them (add-one smoothed):
    "pills", "bridge", "matarme", "cuchillo"; never "it", "long", "here" or "tarda"."""
    texts: dict[str, int] = {}
    labelled: dict[str, dict[str, int]] = {label: {} for label in DANGER}
    for row in rows:
        present = set(feature_input(row["text"])[0])
        for word in present:
            texts[word] = texts.get(word, 0) + 1
            for label in DANGER & set(row["labels"]):
                labelled[label][word] = labelled[label].get(word, 0) + 1
    return {
        label: frozenset(
            w for w, n in counts.items() if n >= least and (n + 1) / (texts[w] + 2) >= share
        )
        for label, counts in sorted(labelled.items())
    }


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def writer_sets(repo: Path = REPO) -> list[Path]:
    """The sets independent writers gave us for training (tests/triage/data/*.jsonl)."""
    return sorted((repo / "tests" / "triage" / "data").glob("*.jsonl"))


def base_examples(repo: Path = REPO) -> list[dict[str, Any]]:
    """Our own examples, the everyday hard negatives (waiting, thanks, greetings, logistics,
    intake answers: texts with no label that the model had read as suicide) and the shared
    ones (../shared beside the repository)."""
    rows = _rows(repo / "tests" / "triage_examples.jsonl")
    rows += _rows(repo / "tests" / "triage" / "everyday_negatives.jsonl")
    shared = repo.parent / "shared" / "triage" / "examples.jsonl"
    if shared.is_file():
        rows += _rows(shared)
    return rows


def training_examples(repo: Path = REPO) -> list[dict[str, Any]]:
    """Everything the model learns from: our examples, the shared ones and the writers'
    sets, as JSON rows (never tests/triage_held_out.jsonl)."""
    rows = base_examples(repo)
    for path in writer_sets(repo):
        rows += _rows(path)
    return rows


def cross_writer(c: float = C) -> str:
    """For each writer's set: train on every other example, score all of triage on it."""
    from bot.triage.cli import evaluate, format_report, read_examples
    from bot.triage.pipeline import read

    out = []
    sets = writer_sets()
    for held in sets:
        rows = base_examples() + [r for p in sets if p != held for r in _rows(p)]
        model = fit(rows, c)
        report = evaluate(read_examples(held), partial(read, model=model))
        out.append(f"== trained on {len(rows)} (not {held.name}), scored on {held.name}")
        out.append(format_report(report, show_errors=False))
    return "\n".join(out)


def guarded_texts(repo: Path = REPO) -> set[str]:
    """Texts training must never see: the held-out and blind sets', and the everyday texts
    tests/triage/test_everyday.py judges generalisation with. Read only to keep them out of
    a new writer's set (add_writer_set prints counts, never a text)."""
    from tests.triage.test_everyday import EVERYDAY

    paths = [repo / "tests" / "triage_held_out.jsonl"]
    paths += sorted((repo / "tests" / "triage" / "blind").glob("*.jsonl"))
    blind = {row["text"] for path in paths if path.is_file() for row in _rows(path)}
    return blind | set(EVERYDAY)


def add_writer_set(source: Path, target: Path, repo: Path = REPO) -> dict[str, int]:
    """Copy an independent writer's JSONL into tests/triage/data: each row checked (text,
    labels and allow drawn from LABELS; "spanglish" or a missing lang becomes the detected
    language), and a text dropped when it repeats one already trained on, one earlier in
    the set, or one in a held-out or blind set. Returns the counts."""
    from bot.triage.normalise import detect_language

    trained = {row["text"] for row in training_examples(repo)}
    if target.exists():
        trained -= {row["text"] for row in _rows(target)}
    guarded = guarded_texts(repo)
    counts = {"kept": 0, "invalid": 0, "trained": 0, "repeated": 0, "guarded": 0}
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line in source.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, labels, allow = row["text"], row["labels"], row.get("allow", [])
            valid = isinstance(text, str) and text.strip() != ""
            valid = valid and set(labels) <= set(LABELS) and set(allow) <= set(LABELS)
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            counts["invalid"] += 1
            continue
        lang = row.get("lang")
        lang = lang if lang in ("en", "es") else detect_language(text)
        why = (
            "guarded"
            if text in guarded
            else "trained"
            if text in trained
            else "repeated"
            if text in seen
            else "kept"
        )
        counts[why] += 1
        if why == "kept":
            seen.add(text)
            kept.append({"text": text, "lang": lang, "labels": labels, "allow": allow})
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), "utf-8")
    return counts


def save(model: Model, path: Path = MODEL_PATH) -> None:
    """Write the weights beside the old file, then swap: a failed write keeps the old one."""
    partial = path.with_name(path.name + ".partial")
    # mtime=0: the same model gives the same bytes, so retraining to no change shows no diff.
    with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.writelines(line.encode("utf-8") for line in model.lines())
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--cross"]:
        print(cross_writer())
        return 0
    if len(args) == 3 and args[0] == "--add":
        print(add_writer_set(Path(args[1]), Path(args[2])))
        return 0
    if args not in ([], ["train"]):  # "train" as the old `python -m bot.triage_model train`
        usage = "usage: python -m tools.train_triage [--cross | --add SOURCE TARGET]"
        print(usage, file=sys.stderr)
        return 2
    rows = training_examples()
    # Features never consult the current model (it loads lazily, and only triage() asks),
    # so an old or broken weights file cannot stand in the way of training a new one.
    model = fit(rows)
    save(model)
    print(f"trained on {len(rows)} examples, {len(model.weights)} features -> {MODEL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

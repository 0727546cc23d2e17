"""`python -m bot triage`: triage messages from stdin, or score a labelled JSONL file.

No arguments: one message per line on stdin, one JSON object per line on stdout,
{"labels": [...sorted], "priority": 1..4, "language": "en"|"es"}. A blank line still gets
its object (no labels, priority 4), so output line N always answers input line N.

`--eval FILE`: FILE holds one {"text", "lang", "labels", "allow"} object per line (the
format of shared/triage/examples.jsonl). Prints recall, precision and false alarms per
label and exits 0; a malformed file is an error (exit 2) and nothing is scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bot.triage.pipeline import triage, warm
from bot.triage.verdict import DANGER, LABELS, Triage
from bot.vocabulary import LANGUAGES


class ExamplesError(ValueError):
    """A labelled-examples file is malformed."""


@dataclass(frozen=True)
class Example:
    text: str
    lang: str | None
    labels: frozenset[str]
    allow: frozenset[str]


@dataclass
class LabelScore:
    expected: int = 0  # examples whose labels include it
    found: int = 0  # of those, how many got it
    predicted: int = 0  # examples that got it
    false_alarms: int = 0  # got it though neither labels nor allow have it
    negatives: int = 0  # examples where neither labels nor allow have it

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.negatives if self.negatives else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return (self.predicted - self.false_alarms) / self.predicted if self.predicted else 1.0


@dataclass
class Report:
    scores: dict[str, LabelScore] = field(default_factory=lambda: {k: LabelScore() for k in LABELS})
    misses: list[tuple[Example, Triage]] = field(default_factory=list)  # a label not found
    alarms: list[tuple[Example, Triage]] = field(default_factory=list)  # an unwanted label
    seconds: float = 0.0
    count: int = 0
    calm: int = 0  # examples with no danger label nor danger allowed
    near_danger: int = 0  # of those, how many were flagged near_danger

    @property
    def near_danger_rate(self) -> float:
        return self.near_danger / self.calm if self.calm else 0.0


def read_examples(path: Path) -> list[Example]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExamplesError(f"{path}: {exc}") from exc
    examples = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            examples.append(_example(line, f"{path.name}:{number}"))
    return examples


def _example(line: str, where: str) -> Example:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ExamplesError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
        raise ExamplesError(f'{where}: needs an object with a "text" string')
    lang = raw.get("lang")
    if lang is not None and lang not in LANGUAGES:
        raise ExamplesError(f"{where}: lang must be one of {LANGUAGES}")
    sets = []
    for key in ("labels", "allow"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not set(value) <= set(LABELS):
            raise ExamplesError(f"{where}: {key} must be a list drawn from {LABELS}")
        sets.append(frozenset(value))
    if "labels" not in raw:
        raise ExamplesError(f'{where}: "labels" is required')
    return Example(raw["text"], lang, sets[0], sets[1])


def evaluate(examples: Sequence[Example], classify: Callable[[str], Triage] = triage) -> Report:
    """Triage each example (language detected, as in production) and score it. The time
    is per message as `serve` sees it: everything loaded and compiled first, as serve does.
    `classify` is triage itself unless the training tool scores a candidate model."""
    warm()
    report = Report(count=len(examples))
    for example in examples:
        start = time.perf_counter()
        result = classify(example.text)
        report.seconds += time.perf_counter() - start
        if not (example.labels | example.allow) & DANGER:
            report.calm += 1
            report.near_danger += result.near_danger
        missed = alarmed = False
        for label, score in report.scores.items():
            got = label in result.labels
            if label in example.labels:
                score.expected += 1
                score.found += got
                missed |= not got
            if label not in example.labels | example.allow:
                score.negatives += 1
            if got:
                score.predicted += 1
                if label not in example.labels | example.allow:
                    score.false_alarms += 1
                    alarmed = True
        if missed:
            report.misses.append((example, result))
        if alarmed:
            report.alarms.append((example, result))
    return report


def format_report(report: Report, show_errors: bool = True) -> str:
    rows = [f"{'label':<12} {'recall':>8} {'precision':>10} {'false alarms':>13} {'support':>8}"]
    for label, s in report.scores.items():
        rows.append(
            f"{label:<12} {s.recall:>8.1%} {s.precision:>10.1%} {s.false_alarms:>13} "
            f"{s.expected:>8}"
        )
    mean_ms = 1000 * report.seconds / report.count if report.count else 0.0
    rows.append(f"messages: {report.count}  mean time: {mean_ms:.3f} ms/message")
    rates = "  ".join(f"{k} {s.false_alarm_rate:.1%}" for k, s in report.scores.items())
    rows.append(f"false-alarm rate: {rates}")
    rows.append(
        f"near danger: {report.near_danger} of {report.calm} messages without danger "
        f"({report.near_danger_rate:.1%})"
    )
    if show_errors:
        # Message text appears only here, on an operator's explicit request for a file
        # they already hold; it is never logged.
        for title, items in (("missed", report.misses), ("false alarm", report.alarms)):
            for example, result in items:
                want = ",".join(sorted(example.labels)) or "-"
                got = ",".join(sorted(result.labels)) or "-"
                rows.append(f"{title}: want {want} got {got}: {example.text}")
    return "\n".join(rows) + "\n"


def run(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot triage",
        description="Triage one message per stdin line, or score a labelled JSONL file.",
    )
    parser.add_argument("--eval", metavar="FILE", type=Path, help="score a labelled JSONL file")
    parser.add_argument(
        "--quiet", action="store_true", help="with --eval, print the table only, no errors"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return int(exc.code or 0)
    if args.eval is not None:
        try:
            examples = read_examples(args.eval)
        except ExamplesError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        stdout.write(format_report(evaluate(examples), show_errors=not args.quiet))
        return 0
    for line in stdin:
        stdout.write(json.dumps(triage(line.rstrip("\r\n")).as_json()) + "\n")
    stdout.flush()
    return 0


def main() -> int:  # pragma: no cover - thin wrapper for `python -m bot.triage.cli`
    return run(sys.argv[1:], sys.stdin, sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

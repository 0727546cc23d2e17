"""Issue 11 (triage speed): the faster triage reads every message exactly as the code
before it did. tests/triage/data/expected_outputs.jsonl.gz holds what that code returned
(labels, priority, language, signals, near_danger) for every labelled text we have, for
pairs of them sent as one longer message, and for the benchmark's 160-character messages.

When the lexicon or the model is deliberately changed, the outputs change with it; write
the fixture again from the code you trust with
`python -m tests.triage.test_speed_identical --write` and review its diff of outcomes
(`--diff` lists the texts whose reading would change, before writing).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.triage_bench import long_messages
from bot.triage import Triage, triage

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "triage" / "data" / "expected_outputs.jsonl.gz"


def _shared_examples() -> Path | None:
    for parent in REPO.parents:
        path = parent / "shared" / "triage" / "examples.jsonl"
        if path.is_file():
            return path
    return None


def _sources() -> list[Path]:
    tests = REPO / "tests"
    paths = [tests / "triage_examples.jsonl"]
    paths += sorted((tests / "triage" / "data").glob("*.jsonl"))
    paths.append(tests / "triage_held_out.jsonl")
    paths += sorted((tests / "triage" / "blind").glob("*.jsonl"))
    shared = _shared_examples()
    if shared is not None:
        paths.append(shared)
    return paths


def _texts() -> list[str]:
    """Every labelled text once, then neighbours joined as one message (longer texts, two
    clauses, a line break between long ones), then 160-character messages as timed."""
    single: list[str] = []
    for path in _sources():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                single.append(json.loads(line)["text"])
    single = list(dict.fromkeys(single))
    joined = [
        a + (". " if i % 3 == 0 else "\n" if i % 3 == 1 else " ") + b
        for i, (a, b) in enumerate(zip(single[::2], single[1::2], strict=False))
    ]
    return list(dict.fromkeys(single + joined + long_messages(single)))


def _row(text: str, result: Triage) -> dict[str, Any]:
    return {
        "text": text,
        "labels": sorted(result.labels),
        "priority": result.priority,
        "language": result.language,
        "signals": list(result.signals),
        "near_danger": result.near_danger,
    }


def _expected() -> list[dict[str, Any]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_fixture() -> int:
    rows = [_row(text, triage(text)) for text in _texts()]
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    # mtime=0: the same outputs give the same bytes, so an unchanged fixture shows no diff.
    with open(FIXTURE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(body.encode("utf-8"))
    return len(rows)


def _differences() -> list[str]:
    problems = []
    for row in _expected():
        got = _row(row["text"], triage(row["text"]))
        if got != row:
            changed = {k: (row[k], got[k]) for k in row if row[k] != got[k]}
            problems.append(f"{row['text']!r}: {changed}")
    return problems


def test_fixture_covers_every_labelled_text() -> None:
    """The fixture was written from today's labelled files: every text in them (the shared
    examples too, when present) has a recorded reading, so none escapes the comparison."""
    recorded = {row["text"] for row in _expected()}
    missing = [t for t in _texts() if t not in recorded]
    assert len(recorded) >= 4000
    assert not missing, f"{len(missing)} texts without a recorded reading, e.g. {missing[:3]}"


def test_triage_reads_every_text_exactly_as_before() -> None:
    """triage(text) gives the very labels, priority, language, signals and near_danger the
    code before the speed work gave, for every recorded text."""
    problems = _differences()
    assert not problems, f"{len(problems)} readings changed:\n" + "\n".join(problems[:20])


def test_a_changed_reading_is_caught() -> None:
    """The comparison is not vacuous: a recorded row with one signal altered differs."""
    row = next(r for r in _expected() if r["signals"])
    assert _row(row["text"], triage(row["text"])) == row
    altered = dict(row, signals=[*row["signals"], "made:up"])
    assert _row(row["text"], triage(row["text"])) != altered


if __name__ == "__main__":  # pragma: no cover - a maintainer's command, not a test
    if "--diff" in sys.argv:
        print("\n".join(_differences()) or "no reading changed")
    elif "--write" in sys.argv:
        print(f"wrote {write_fixture()} readings to {FIXTURE}")
    else:
        pytest.main([__file__, "-q"])

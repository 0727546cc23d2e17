"""`python -m bot triage` (DESIGN.md section 9) through bot.triage.cli.run, with real
stdin/stdout text streams."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from bot.triage.cli import run

SHARED = Path(__file__).resolve().parents[3] / "shared" / "triage" / "examples.jsonl"


def _run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = run(argv, io.StringIO(stdin), out)
    return code, out.getvalue()


def test_one_json_object_per_line_with_exact_keys() -> None:
    """Each stdin line gives one JSON line with exactly labels (sorted), priority, language;
    a blank line still gets its (empty) answer so output line N answers input line N."""
    code, out = _run([], "he has a knife\n\nquiero morirme\nwhat time do you close\n")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 4
    assert all(set(obj) == {"labels", "priority", "language"} for obj in lines)
    assert lines[0]["priority"] == 1 and "emergency" in lines[0]["labels"]
    assert lines[0]["labels"] == sorted(lines[0]["labels"])
    assert lines[1] == {"labels": [], "priority": 4, "language": "en"}
    assert lines[2] == {"labels": ["suicide"], "priority": 1, "language": "es"}
    assert lines[3] == {"labels": [], "priority": 4, "language": "en"}


def test_crlf_input_is_handled() -> None:
    """Windows line endings do not leak into the triaged text."""
    _, out = _run([], "hola\r\n")
    assert json.loads(out) == {"labels": [], "priority": 4, "language": "es"}


def test_eval_prints_per_label_scores(tmp_path: Path) -> None:
    """--eval prints recall, precision and false alarms for every label and exits 0, even
    when the scores are poor; the misses and false alarms are listed."""
    data = tmp_path / "ex.jsonl"
    rows = [
        {"text": "he is choking me", "lang": "en", "labels": ["emergency"], "allow": ["abuse"]},
        {"text": "ok", "lang": "en", "labels": ["trafficking"], "allow": []},
        {"text": "my wife hits me", "lang": "en", "labels": [], "allow": []},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    code, out = _run(["--eval", str(data)])
    assert code == 0
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:5]}
    assert table["emergency"] == ["100.0%", "100.0%", "0", "1"]
    assert table["trafficking"] == ["0.0%", "100.0%", "0", "1"]
    assert table["abuse"][2] == "1"  # "my wife hits me" labelled nothing: one false alarm
    assert "missed: want trafficking got -: ok" in out
    assert "false alarm: want - got abuse: my wife hits me" in out
    code, quiet = _run(["--eval", str(data), "--quiet"])
    assert code == 0 and "missed" not in quiet and "emergency" in quiet


def test_eval_on_the_shared_file() -> None:
    """The shared examples score through the CLI (the file must be beside the repo)."""
    assert SHARED.is_file(), f"missing {SHARED}"
    code, out = _run(["--eval", str(SHARED), "--quiet"])
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["emergency", "100.0%"]


def test_eval_rejects_a_malformed_file(tmp_path: Path, capsys: object) -> None:
    """A bad line is a clear error naming file and line, exit 2, and nothing is printed to
    stdout; a missing file is the same kind of error."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "labels": ["danger"]}\n', encoding="utf-8")
    code, out = _run(["--eval", str(bad)])
    assert code == 2 and out == ""
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "bad.jsonl:1" in err and "labels" in err
    code, out = _run(["--eval", str(tmp_path / "nope.jsonl")])
    assert code == 2 and out == ""


def test_bad_arguments_exit_nonzero() -> None:
    """An unknown option is a usage error, not a silent run."""
    code, out = _run(["--nope"])
    assert code == 2 and out == ""


def test_module_entry_point_runs() -> None:
    """`python -m bot.triage.cli` works as a real process over pipes."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot.triage.cli"],
        input="kms\n",
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    assert json.loads(proc.stdout)["labels"] == ["suicide"]

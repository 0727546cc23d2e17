"""The command line as an operator uses it: real subprocesses in an empty folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(
    args: list[str],
    cwd: Path,
    stdin: str = "",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HAVEN_", "TWILIO_"))}
    environ.pop("DATABASE_URL", None)
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def test_chat_runs_an_english_intake_to_the_queue(tmp_path: Path) -> None:
    """`python -m bot chat` in an empty folder: SQLite and a key are created, intake ends
    queued with a position, and the store counts it."""
    script = "hi\nyes\n1\nskip\nno\nskip\nskip\nskip\nskip\n90210\n"
    result = run(["chat"], tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "YES" in result.stdout
    assert (tmp_path / "haven.db").exists() and (tmp_path / ".haven-secret").exists()
    stats = run(["stats"], tmp_path)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["queued"] == 1 and counts["messages_in"] >= 5
    for digits in ("5555550123", "90210"):
        assert digits not in stats.stdout


def test_chat_runs_a_spanish_intake_to_the_queue(tmp_path: Path) -> None:
    """The same in Spanish from the first message, skipping with SALTAR/skip; with no
    advocate signed in, the queue text says so honestly instead of promising minutes."""
    script = "hola, necesito ayuda\nsi\n1\nsaltar\nno\nsaltar\nsaltar\nsaltar\nsaltar\nskip\n"
    result = run(["chat", "--from", "+15555550999"], tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "¿Es seguro para ti escribir ahora?" in result.stdout
    assert "Ahora no hay nadie libre" in result.stdout and "911" in result.stdout
    assert " min." not in result.stdout
    counts = json.loads(run(["stats"], tmp_path).stdout)
    assert counts["queued"] == 1


def test_triage_command_speaks_json_lines(tmp_path: Path) -> None:
    """`triage` reads one message per line and writes one JSON object per line."""
    result = run(["triage"], tmp_path, stdin="he has a gun\nthanks\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    assert lines[0]["priority"] == 1 and "emergency" in lines[0]["labels"]
    assert set(lines[1]) == {"labels", "priority", "language"}


def test_flow_diagram_is_mermaid(tmp_path: Path) -> None:
    """`flow-diagram` prints mermaid text naming the intake states."""
    result = run(["flow-diagram"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "stateDiagram" in result.stdout and "safety_check" in result.stdout


def test_migrate_then_stats_on_an_empty_database(tmp_path: Path) -> None:
    """`migrate` applies the schema once; a second run applies nothing."""
    first = json.loads(run(["migrate"], tmp_path).stdout)
    second = json.loads(run(["migrate"], tmp_path).stdout)
    assert first["applied"] and second["applied"] == []
    assert json.loads(run(["stats"], tmp_path).stdout)["conversations"] == 0


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    """A short secret key stops the command with a message naming the variable."""
    result = run(["stats"], tmp_path, env={"HAVEN_SECRET_KEY": "short"})
    assert result.returncode == 2
    assert "HAVEN_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("env", [{"HAVEN_ENV": "production"}])
def test_production_refuses_to_start_without_a_key(tmp_path: Path, env: dict[str, str]) -> None:
    """Production with no HAVEN_SECRET_KEY refuses to serve."""
    result = run(["serve"], tmp_path, env=env)
    assert result.returncode == 2 and "HAVEN_SECRET_KEY" in result.stderr

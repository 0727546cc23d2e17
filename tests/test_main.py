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


def _users(tmp_path: Path) -> list[dict[str, object]]:
    listed = run(["users", "list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "argon2" not in listed.stdout and "hash" not in listed.stdout
    return [json.loads(line) for line in listed.stdout.splitlines()]


def _in_store(tmp_path: Path, name: str, password: str) -> tuple[bool, list[str]]:
    """Whether the password signs this name in, and the audit log's actions, newest first
    (the store the commands wrote, opened in-process)."""
    import asyncio

    from bot.crypto import Crypto
    from bot.dashboard.accounts import authenticate
    from bot.settings import Settings
    from bot.store import open_store

    async def check() -> tuple[bool, list[str]]:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'haven.db'}",
            secret_key=(tmp_path / ".haven-secret").read_text().strip(),
        )
        store = open_store(settings, Crypto(settings.secret_key))
        await store.open()
        try:
            works = await authenticate(store, name, password) is not None
            async with store.transaction() as tx:
                return works, [a.action for a in await tx.list_audit()]
        finally:
            await store.close()

    return asyncio.run(check())


def test_users_list_disable_set_password_and_set_role(tmp_path: Path) -> None:
    """The account lifecycle from the command line: `users list` prints JSON lines (name,
    role, active, presence; never a hash); set-role, set-password (from stdin) and disable
    change the account, and each is in the audit log; an unknown name or role is a clear
    error (exit 2) that changes nothing."""
    for name, role in (("ana", "advocate"), ("sue", "supervisor")):
        added = run(
            ["users", "add", name, "--role", role, "--password-stdin"],
            tmp_path,
            stdin="first password 1\n",
        )
        assert added.returncode == 0, added.stderr
    assert _users(tmp_path) == [
        {"name": "ana", "role": "advocate", "active": True, "presence": "offline"},
        {"name": "sue", "role": "supervisor", "active": True, "presence": "offline"},
    ]
    assert run(["users", "set-role", "ana", "supervisor"], tmp_path).returncode == 0
    bad_role = run(["users", "set-role", "ana", "king"], tmp_path)
    assert bad_role.returncode == 2 and "role" in bad_role.stderr
    changed = run(
        ["users", "set-password", "ana", "--password-stdin"], tmp_path, stdin="second password 2\n"
    )
    assert changed.returncode == 0, changed.stderr
    short = run(["users", "set-password", "ana", "--password-stdin"], tmp_path, stdin="short\n")
    assert short.returncode == 2 and "at least" in short.stderr
    assert _in_store(tmp_path, "ana", "second password 2")[0]
    assert not _in_store(tmp_path, "ana", "first password 1")[0]
    assert run(["users", "disable", "sue"], tmp_path).returncode == 0
    unknown = run(["users", "disable", "nobody"], tmp_path)
    assert unknown.returncode == 2 and "nobody" in unknown.stderr
    assert [(u["name"], u["role"], u["active"]) for u in _users(tmp_path)] == [
        ("ana", "supervisor", True),
        ("sue", "supervisor", False),
    ]
    works, actions = _in_store(tmp_path, "sue", "first password 1")
    assert not works
    assert actions == ["user_disable", "user_password", "user_role"]

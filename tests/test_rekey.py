"""A changed HAVEN_SECRET_KEY over existing data is refused at start-up, and `rekey` moves
everything from the previous keys to the new one, resumably, so conversations carry on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import StartupError, preflight
from bot.crypto import Crypto
from bot.rekey import KeyRefused, rekey
from bot.settings import Settings
from bot.store import Message, Store, open_store
from tests.helpers import free_port, one_clear_line, serve

KEY_A = "the-old-secret-key-aaaaaaaaaaaaaaaaaaaaaaaa"
KEY_B = "the-new-secret-key-bbbbbbbbbbbbbbbbbbbbbbbb"
PHONE = "+15551239876"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def settings_for(tmp_path: Path, key: str, previous: tuple[str, ...] = ()) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'haven.db'}",
        secret_key=key,
        previous_secret_keys=previous,
        port=free_port(),
    )


async def _opened(settings: Settings) -> Store:
    store = open_store(settings, Crypto(settings.secret_key))
    await store.open()
    await store.migrate()
    return store


async def write_under_key_a(tmp_path: Path, texters: int = 1) -> None:
    """What a running Haven leaves: texters, a conversation with private answers and a
    location, messages, a note, an outbox item and a saved reply, all under key A, and
    start-up's key check."""
    settings = settings_for(tmp_path, KEY_A)
    await preflight(settings)  # the first start records which key the data is under
    crypto = Crypto(KEY_A)
    store = await _opened(settings)
    try:
        for i in range(texters):
            phone = PHONE if i == 0 else f"+1555000{i:04d}"
            async with store.transaction(lock_key=crypto.lookup_hash(phone)) as tx:
                texter = await tx.create_texter(crypto.lookup_hash(phone), phone, "en", NOW)
                texter.unsafe_hours = "18:00-08:00"
                await tx.save_texter(texter)
                conv = await tx.create_conversation(texter.id, "en", NOW)
                conv.location = "90210"
                conv.answers = {"weapon": "yes"}
                await tx.save_conversation(conv)
                await tx.add_message(Message(conv.id, "in", f"he took my phone {i}", "texter"))
                out = await tx.add_message(
                    Message(conv.id, "out", "we are here", "haven", status="queued")
                )
                assert out.id is not None
                await tx.enqueue_outbound(out.id, phone, NOW)
                await tx.add_note(conv.id, 1, f"called back {i}", NOW)
                await tx.save_reply(f"SMreply{i}", "<Response/>", NOW)
    finally:
        await store.close()


async def read_all_under(tmp_path: Path, key: str) -> dict[str, object]:
    """Everything readable back under `key`, through the store's ordinary reads."""
    crypto = Crypto(key)
    store = await _opened(settings_for(tmp_path, key))
    try:
        async with store.transaction() as tx:
            texter = await tx.get_texter_by_hash(crypto.lookup_hash(PHONE))
            assert texter is not None, "the returning texter is not found by the new hash"
            conv = await tx.get_open_conversation(texter.id)
            assert conv is not None
            return {
                "texter_id": texter.id,
                "phone": texter.phone,
                "hours": texter.unsafe_hours,
                "location": conv.location,
                "answers": conv.answers,
                "bodies": [m.body for m in await tx.list_messages(conv.id)],
                "notes": [n.body for n in await tx.list_notes(conv.id)],
                "reply": await tx.get_reply("SMreply0"),
            }
    finally:
        await store.close()


async def test_start_up_with_another_key_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    """Data written under key A; start-up under key B refuses (rather than serving 500s and
    treating returning texters as new), naming HAVEN_SECRET_KEY and the way out."""
    await write_under_key_a(tmp_path)
    with pytest.raises(StartupError, match=r"HAVEN_SECRET_KEY.*rekey"):
        await preflight(settings_for(tmp_path, KEY_B))


async def test_a_database_from_before_the_key_check_is_judged_by_its_data(
    tmp_path: Path,
) -> None:
    """A database with data but no key check yet (written before this release) is tried
    against a sample: key B cannot read it and is refused; key A can and is recorded."""
    await write_under_key_a(tmp_path)
    store = await _opened(settings_for(tmp_path, KEY_A))
    async with store.transaction() as tx:
        await tx.set_key_check(None, NOW)
    await store.close()
    with pytest.raises(StartupError, match="HAVEN_SECRET_KEY"):
        await preflight(settings_for(tmp_path, KEY_B))
    await preflight(settings_for(tmp_path, KEY_A))


async def test_rekey_moves_everything_and_the_texter_is_recognised(tmp_path: Path) -> None:
    """After `rekey` from A to B, start-up under B works; the returning texter is found by
    the new keyed hash (same texter, same conversation) and every protected field reads."""
    await write_under_key_a(tmp_path)
    before = await read_all_under(tmp_path, KEY_A)
    report = await rekey(settings_for(tmp_path, KEY_B, (KEY_A,)))
    assert report["complete"] is True and report["rows_changed"] > 0
    await preflight(settings_for(tmp_path, KEY_B))
    after = await read_all_under(tmp_path, KEY_B)
    assert after == before
    assert after["bodies"] == ["he took my phone 0", "we are here"]
    store = await _opened(settings_for(tmp_path, KEY_B))
    async with store.transaction() as tx:
        assert [item.to for item in await tx.claim_outbox(NOW)] == [PHONE]
    await store.close()
    with pytest.raises(StartupError):
        await preflight(settings_for(tmp_path, KEY_A))  # the old key no longer opens it


async def test_an_interrupted_rekey_resumes(tmp_path: Path) -> None:
    """A rekey stopped after 7 rows leaves start-up under B refused (not finished); run again
    it finishes without touching the rows already moved, and everything reads under B."""
    await write_under_key_a(tmp_path, texters=5)
    settings = settings_for(tmp_path, KEY_B, (KEY_A,))
    first = await rekey(settings, batch=3, stop_after=7)
    assert first["complete"] is False and first["rows_changed"] == 7
    with pytest.raises(StartupError, match="rekey"):
        await preflight(settings_for(tmp_path, KEY_B))
    second = await rekey(settings, batch=3)
    assert second["complete"] is True
    assert second["rows_changed"] == second["rows_seen"] - 7  # moved rows were left alone
    await preflight(settings_for(tmp_path, KEY_B))
    assert (await read_all_under(tmp_path, KEY_B))["location"] == "90210"
    third = await rekey(settings)
    assert third["rows_changed"] == 0 and third["complete"] is True


async def test_rekey_refuses_rows_no_key_can_read(tmp_path: Path) -> None:
    """Without the old key in HAVEN_PREVIOUS_SECRET_KEYS nothing is changed and the error
    says which key is missing."""
    await write_under_key_a(tmp_path)
    with pytest.raises(KeyRefused, match="HAVEN_PREVIOUS_SECRET_KEYS"):
        await rekey(settings_for(tmp_path, KEY_B, ()))
    assert (await read_all_under(tmp_path, KEY_A))["location"] == "90210"


async def test_serve_and_rekey_as_an_operator_runs_them(tmp_path: Path) -> None:
    """The real commands: `serve` under key B exits at once with one clear line; `rekey`
    with HAVEN_PREVIOUS_SECRET_KEYS prints a JSON summary; then `serve` gets past the check
    (it fails only on the port we hold busy, which proves the key check passed)."""
    await write_under_key_a(tmp_path)
    code, stderr, seconds = serve(tmp_path, {"HAVEN_SECRET_KEY": KEY_B})
    assert code != 0 and seconds < 10
    assert "rekey" in one_clear_line(stderr)
    code, _, _ = serve(
        tmp_path,
        {"HAVEN_SECRET_KEY": KEY_B, "HAVEN_PREVIOUS_SECRET_KEYS": KEY_A},
        ("rekey",),
    )
    assert code == 0
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        code, stderr, _ = serve(tmp_path, {"HAVEN_SECRET_KEY": KEY_B, "PORT": port})
    assert "port is in use" in one_clear_line(stderr)


def test_rekey_summary_is_json(tmp_path: Path) -> None:
    """`rekey` on an empty database says so in JSON and succeeds."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "bot", "rekey"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "HAVEN_SECRET_KEY": KEY_B, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["complete"] is True

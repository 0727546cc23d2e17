"""The low-severity findings of issue 10: odd bytes at the webhooks, unbounded callback
fields, file modes, /metrics, audit retention and what a quick exit leaves behind."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.crypto import Crypto
from bot.keys import STORE
from bot.settings import Settings
from bot.store import open_store
from tests.helpers import TEST_SECRET, SignedPost, new_sid, sign

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def stored(client: TestClient) -> dict[str, int]:
    async with client.app[STORE].transaction() as tx:
        return await tx.stats()


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded; charset=no-such-charset", b"Body=hi"),
        ("application/x-www-form-urlencoded; charset=utf-8", b"Body=%FF%FE%FD&From=%C3"),
        ("application/x-www-form-urlencoded", b"Body=\xff\xfe\xfd"),
        ("multipart/form-data; boundary=x", b"--x\r\nnot a part\r\n"),
    ],
)
async def test_undecodable_forms_get_400_before_anything_else(
    client: TestClient, path: str, content_type: str, body: bytes
) -> None:
    """Bytes that are not text in the declared charset, or an unknown charset, are refused
    with 400 (not an unauthenticated 500), and nothing is stored."""
    before = await stored(client)
    response = await client.post(
        path, data=body, headers={"Content-Type": content_type, "X-Twilio-Signature": "x"}
    )
    assert response.status == 400
    assert await stored(client) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"MessageSid": "SM" + "1" * 200, "MessageStatus": "delivered"},
        {"MessageSid": new_sid(), "MessageStatus": "failed", "ErrorCode": "3" * 5000},
        {"MessageSid": new_sid(), "MessageStatus": "failed", "ErrorCode": "30007; drop table"},
    ],
)
async def test_status_callback_fields_are_bounded_and_not_logged_in_full(
    signed_post: SignedPost, fields: dict[str, str]
) -> None:
    """An over-long SID or an error code that is not a short number is refused with 400,
    and no log line carries it."""
    with structlog.testing.capture_logs() as logs:
        response = await signed_post("/twilio/status", fields)
    assert response.status == 400
    for value in fields.values():
        if len(value) > 40:
            assert value not in json.dumps(logs, default=str)


async def test_a_normal_status_callback_still_works(signed_post: SignedPost) -> None:
    """The bounds leave Twilio's real callbacks alone (a 5-digit error code)."""
    fields = {"MessageSid": new_sid(), "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert (await signed_post("/twilio/status", fields)).status == 200


async def test_the_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    """haven.db, haven.db-wal and haven.db-shm are created readable by the owner only."""
    path = tmp_path / "haven.db"
    store = open_store(Settings(database_url=f"sqlite:///{path}"), Crypto(TEST_SECRET))
    await store.open()
    try:
        await store.migrate()
        async with store.transaction() as tx:
            await tx.audit(None, "login", None, "", NOW)
        files = [tmp_path / name for name in ("haven.db", "haven.db-wal", "haven.db-shm")]
        modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in files}
        assert modes == dict.fromkeys(modes, 0o600), modes
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer wrong-token", 401), ("Bearer metrics-token-123", 200)],
)
async def test_metrics_can_require_a_bearer_token(
    aiohttp_client: Any, settings: Settings, header: str | None, status: int
) -> None:
    """With HAVEN_METRICS_TOKEN set, /metrics answers only to that bearer token."""
    client = await aiohttp_client(
        create_app(settings.with_(metrics_token="metrics-token-123"), run_background=False)
    )
    headers = {"Authorization": header} if header else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status == status
    if status == 200:
        assert "haven_" in await response.text()


async def test_metrics_are_open_without_a_token(client: TestClient) -> None:
    """Unset (the default), /metrics stays open for a local scraper."""
    assert (await client.get("/metrics")).status == 200


def test_metrics_token_and_audit_retention_come_from_the_environment() -> None:
    """HAVEN_METRICS_TOKEN and HAVEN_AUDIT_RETENTION_DAYS (default 365) are read."""
    settings = Settings.from_env({"HAVEN_METRICS_TOKEN": "tok", "HAVEN_AUDIT_RETENTION_DAYS": "30"})
    assert (settings.metrics_token, settings.audit_retention_days) == ("tok", 30)
    assert Settings.from_env({}).audit_retention_days == 365


async def test_audit_rows_are_purged_after_their_retention(client: TestClient) -> None:
    """purge_audit_before removes audit rows older than the cutoff and keeps newer ones."""
    async with client.app[STORE].transaction() as tx:
        await tx.audit(None, "login", None, "old", NOW - timedelta(days=400))
        await tx.audit(None, "login", None, "new", NOW - timedelta(days=10))
        removed = await tx.purge_audit_before(NOW - timedelta(days=365))
        left = [a.detail for a in await tx.list_audit()]
    assert removed == 1 and left == ["new"]


async def test_quick_exit_leaves_no_labels_or_team_behind(client: TestClient) -> None:
    """After purge_conversation (EXIT) the row says only that a conversation existed and
    ended: no labels, no raised priority, no team or disposition, even if the conversation
    is saved again afterwards with them."""
    crypto = Crypto(TEST_SECRET)
    async with client.app[STORE].transaction() as tx:
        texter = await tx.create_texter(
            crypto.lookup_hash("+15551230077"), "+15551230077", "es", NOW
        )
        conv = await tx.create_conversation(texter.id, "es", NOW)
        conv.labels, conv.priority, conv.team = ["trafficking", "emergency"], 1, "trafficking"
        conv.disposition = "referred"
        await tx.save_conversation(conv)
        await tx.purge_conversation(conv.id)
        await tx.save_conversation(conv)  # the engine saves the ended state after a purge
        after = await tx.get_conversation(conv.id)
    assert after.labels == [] and after.priority == 4
    assert (after.team, after.disposition, after.signals, after.location) == (None, None, [], None)


async def test_unsigned_undecodable_post_is_400_even_with_signatures_required(
    client: TestClient,
) -> None:
    """The decode check comes before the signature check: no 500 either way."""
    params = {"MessageSid": new_sid(), "From": "+15551230002", "Body": "hi"}
    response = await client.post(
        "/twilio/sms",
        data=b"Body=%FF",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign("/twilio/sms", params),
        },
    )
    assert response.status == 400

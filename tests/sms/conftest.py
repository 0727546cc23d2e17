"""Fixtures for the SMS transport tests: a running fake Twilio and settings pointing at it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.sms.sender import TwilioSender
from bot.store import Store
from tests.helpers import OUTBOX_SECRET, open_outbox_store
from tests.sms.fake_twilio import FakeTwilio


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
def twilio_settings(fake_twilio: FakeTwilio) -> Settings:
    return Settings(
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_from_number="+15005550006",
        twilio_api_base=fake_twilio.base_url,
        public_url="https://haven.example.org",
    )


@pytest.fixture
def closed_port_url() -> str:
    """A local URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def store_settings(twilio_settings: Settings, tmp_path: Path) -> Settings:
    return twilio_settings.with_(
        database_url=f"sqlite:///{tmp_path / 'haven.db'}", secret_key=OUTBOX_SECRET
    )


@pytest.fixture
async def outbox_store(store_settings: Settings) -> AsyncIterator[Store]:
    """A SQLite store keyed like the texts below (the root `store` fixture's backends are
    the store suite's; the outbox's PostgreSQL races are in test_postgres_processes)."""
    store = await open_outbox_store(store_settings)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def twilio(store_settings: Settings) -> AsyncIterator[TwilioSender]:
    sender = TwilioSender(store_settings)
    try:
        yield sender
    finally:
        await sender.close()

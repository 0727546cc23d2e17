"""Fixtures for the SMS transport tests: a running fake Twilio and settings pointing at it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from bot.settings import Settings
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

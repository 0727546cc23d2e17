"""Shared fixtures: the real app on a temporary SQLite file, and a Twilio-signed client."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.settings import Settings

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
AUTH_TOKEN = "test-auth-token-12345"
PUBLIC_URL = "https://haven.example.org"

SignedPost = Callable[..., Awaitable[Any]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'haven.db'}",
        secret_key=TEST_SECRET,
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        org_name="Harbor House",
        secret_file=tmp_path / ".haven-secret",
        tick_seconds=0.05,
    )


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient:
    client: TestClient = await aiohttp_client(app)
    return client


def sign(path: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature exactly as Twilio computes it."""
    return str(RequestValidator(token).compute_signature(PUBLIC_URL + path, dict(params)))


_sids = itertools.count(1)


def new_sid() -> str:
    return f"SM{next(_sids):032d}"


@pytest.fixture
def signed_post(client: TestClient) -> SignedPost:
    async def post(path: str, params: Mapping[str, str], signature: str | None = None) -> Any:
        headers = {"X-Twilio-Signature": signature if signature is not None else sign(path, params)}
        return await client.post(path, data=dict(params), headers=headers)

    return post


@pytest.fixture
def text(signed_post: SignedPost) -> Callable[..., Awaitable[list[str]]]:
    """Send one SMS from a texter through the signed webhook; return Haven's reply texts."""
    import xml.etree.ElementTree as ET

    async def send(
        body: str, number: str = "+15551230001", sid: str | None = None, **extra: str
    ) -> list[str]:
        params = {
            "MessageSid": sid or new_sid(),
            "AccountSid": "AC" + "0" * 32,
            "From": number,
            "To": "+15559990000",
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        response = await signed_post("/twilio/sms", params)
        assert response.status == 200, await response.text()
        assert response.content_type == "text/xml"
        root = ET.fromstring(await response.text())
        assert root.tag == "Response"
        return [m.text or "" for m in root.findall("Message")]

    return send

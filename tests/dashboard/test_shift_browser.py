"""A whole shift in a real browser (Playwright driving Debian's Chromium) against the real
app on a real port: a texter texts in through the signed webhook, an advocate takes the
conversation and replies, the texter's answer appears live, the advocate transfers it, a
second advocate accepts and closes it, and a supervisor watches. Screenshots of the queue,
a conversation and the supervisor view are saved under test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.dashboard.accounts import add_user_cli
from bot.engine import utcnow
from bot.keys import ENGINE, STORE
from bot.settings import Settings

from ..conftest import AUTH_TOKEN
from .conftest import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TEXTER = "+15551230042"
TEXTER_IN_DANGER = "+15551230077"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[tuple[TestClient, Settings]]:
    """The real app served on a real port; public_url is that address, so webhook
    signatures are computed exactly as Twilio would for it."""
    port = free_port()
    settings = settings.with_(public_url=f"http://127.0.0.1:{port}", port=port)
    server = TestServer(create_app(settings), host="127.0.0.1", port=port)
    client = TestClient(server)
    await client.start_server()
    yield client, settings
    await client.close()


async def texter_says(
    client: TestClient, settings: Settings, body: str, n: int, number: str = TEXTER
) -> None:
    params = {
        "MessageSid": f"SM{n:032d}",
        "AccountSid": "AC" + "0" * 32,
        "From": number,
        "To": "+15559990000",
        "Body": body,
        "NumMedia": "0",
    }
    url = settings.public_url + "/twilio/sms"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    response = await client.post(
        "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status == 200, await response.text()


async def test_a_whole_shift_in_a_real_browser(live: tuple[TestClient, Settings]) -> None:
    """Texter → queue → advocate takes, replies → texter's answer shows within a second →
    transfer → second advocate accepts and closes; supervisor view and screenshots."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install it: see .ci/run)")
        pytest.skip("chromium is not installed")
    from playwright.async_api import async_playwright, expect

    client, settings = live
    store = client.server.app[STORE]
    await add_user_cli(store, "ana", "advocate", PASSWORD)
    await add_user_cli(store, "ben", "advocate", PASSWORD)
    await add_user_cli(store, "sue", "supervisor", PASSWORD)
    base = settings.public_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:

            async def signed_in(name: str):  # type: ignore[no-untyped-def]
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                page.on(
                    "console",
                    lambda m: problems.append(f"{name}: {m.text}") if m.type == "error" else None,
                )
                page.on("pageerror", lambda e: problems.append(f"{name}: {e}"))
                await page.goto(base + "/login")
                await page.get_by_label("Name").fill(name)
                await page.get_by_label("Password").fill(PASSWORD)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_url(base + "/dashboard/queue")
                await expect(page.locator("#live")).to_have_text("live")
                return page

            ana = await signed_in("ana")
            ben = await signed_in("ben")
            await ben.get_by_label("Presence").select_option("available")
            await ben.get_by_role("button", name="Save").click()

            # The texter texts in; the queue on Ana's open screen shows them, live.
            await texter_says(client, settings, "hi", 1)
            await texter_says(client, settings, "my boyfriend hurt me, I need a person", 2)
            await texter_says(client, settings, "AGENT", 3)
            row = ana.locator("table.queue tbody tr").first
            await expect(row).to_contain_text("…42", timeout=5000)
            assert TEXTER not in await ana.content()
            await ana.screenshot(path=str(SHOTS / "queue.png"), full_page=True)

            # Ana takes this one and replies.
            await row.get_by_role("button", name="Take").click()
            await ana.wait_for_url(base + "/dashboard/conversations/*")
            await ana.get_by_label("Reply").fill("Hi, I'm Ana. Are you safe right now?")
            await ana.get_by_role("button", name="Send").click()
            transcript = ana.locator("#transcript")
            await expect(transcript).to_contain_text("Are you safe right now?")

            # The texter answers; it is on Ana's screen within a second of the webhook.
            await texter_says(client, settings, "yes he left for work", 4)
            await expect(transcript).to_contain_text("yes he left for work", timeout=1000)
            await ana.get_by_label("Add a note (advocates only, never texted)").fill(
                "safe until 5pm"
            )
            await ana.get_by_role("button", name="Save note").click()
            await expect(ana.locator("ul.notes")).to_contain_text("safe until 5pm")
            await ana.screenshot(path=str(SHOTS / "conversation.png"), full_page=True)

            # Ana transfers it to Ben, who sees the offer live and accepts.
            await ana.locator("#transfer-to").select_option(label="ben (available)")
            await ana.get_by_role("button", name="Transfer").click()
            await ana.wait_for_url(base + "/dashboard/queue")
            offer = ben.locator("section.offers")
            await expect(offer).to_contain_text("…42", timeout=5000)
            await offer.get_by_role("button", name="Accept").click()
            await ben.wait_for_url(base + "/dashboard/conversations/*")
            await expect(ben.locator("#transcript")).to_contain_text("yes he left for work")

            # The supervisor watches every conversation and the shift's charts.
            sue = await signed_in("sue")
            await sue.goto(base + "/dashboard/supervisor")
            await expect(sue.locator("table.all")).to_contain_text("ben")
            await expect(sue.locator("body")).to_have_attribute("data-charts-ready", "1")
            await expect(sue.locator("#chart-queue canvas")).to_have_count(1)
            await sue.screenshot(path=str(SHOTS / "supervisor.png"), full_page=True)

            # Ben closes it with a disposition.
            await ben.get_by_label("Disposition").select_option("referred")
            await ben.get_by_role("button", name="Close conversation").click()
            await ben.wait_for_url(base + "/dashboard/queue")
            await expect(sue.locator("table.all")).to_contain_text("closed", timeout=5000)

            # A second texter in danger: on the queue within a second, with 911 in the
            # reply; unclaimed past a minute, the alarm shows on every advocate's screen
            # and stays after a reload; "Take next" gives Ben that texter first.
            await texter_says(client, settings, "hi", 5, TEXTER_IN_DANGER)
            await texter_says(
                client, settings, "he has a knife and hes in the house", 6, TEXTER_IN_DANGER
            )
            danger_row = ben.locator("table.queue tbody tr").first
            await expect(danger_row).to_contain_text("P1", timeout=1000)
            await expect(danger_row).to_contain_text("knife")
            engine = client.server.app[ENGINE]
            assert await engine.check_alarms(utcnow() + timedelta(seconds=61))
            for page in (ana, ben):
                await expect(page.locator("#alarms .alarm")).to_contain_text(
                    "Priority-1 texter waiting unclaimed", timeout=1000
                )
            await ben.screenshot(path=str(SHOTS / "queue-alarm.png"), full_page=True)
            await ben.get_by_role("button", name="Take next").click()
            await ben.wait_for_url(base + "/dashboard/conversations/*")
            await expect(ben.locator("#transcript")).to_contain_text("knife")
        finally:
            await browser.close()

    async with store.transaction() as tx:
        closed = await tx.list_conversations(states=["closed"])
        audit = await tx.list_audit(conversation_id=closed[0].id if closed else None)
    assert [c.disposition for c in closed] == ["referred"]
    async with store.transaction() as tx:
        (taken,) = await tx.list_conversations(states=["with_advocate"])
    assert taken.priority == 1
    assert {"claim", "view", "reply", "close"} <= {a.action for a in audit}
    assert not problems, problems  # CSP violations and script errors show up here
    for name in ("queue", "conversation", "supervisor", "queue-alarm"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    await asyncio.sleep(0)

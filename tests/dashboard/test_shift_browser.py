"""A whole shift in a real browser (Playwright driving Debian's Chromium) against the real
app on a real port: a texter texts in through the signed webhook, an advocate takes the
conversation and replies, the texter's answer appears live, the advocate transfers it, a
second advocate accepts and closes it, and a supervisor watches. Screenshots of the queue,
a conversation and the supervisor view are saved under test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import os
import re
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
from bot.keys import ENGINE, SETTINGS, STORE
from bot.resources.hsds import read_package
from bot.settings import Settings
from bot.store.base import Store
from tests.helpers import PASSWORD

from ..conftest import AUTH_TOKEN

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
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hsds-sample"
SHELTER = "Safe Harbor Emergency Shelter"
TEXTER = "+15551230042"
TEXTER_IN_DANGER = "+15551230077"
AGING_EVERY = 2  # seconds: a P3 who waits reaches the P2 ceiling within one step
LAPTOP = {"width": 1366, "height": 768}
OLD_VIEW = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(settings: Settings) -> TestClient:
    """The real app served on a real port; public_url is that address, so webhook
    signatures are computed exactly as Twilio would for it."""
    port = free_port()
    settings = settings.with_(public_url=f"http://127.0.0.1:{port}", port=port)
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1", port=port))
    await client.start_server()
    return client


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[tuple[TestClient, Settings]]:
    client = await serve(settings)
    yield client, client.server.app[SETTINGS]
    await client.close()


@pytest.fixture
async def aging_live(settings: Settings) -> AsyncIterator[tuple[TestClient, Settings]]:
    """The same, with waiting texters aging one level every AGING_EVERY seconds."""
    client = await serve(settings.with_(aging_every=AGING_EVERY))
    yield client, client.server.app[SETTINGS]
    await client.close()


async def open_signed_in(  # type: ignore[no-untyped-def]
    browser, base: str, name: str, viewport: dict[str, int], problems: list[str]
):
    """A new browser window signed in as `name`, its script errors collected in
    `problems`, with the live indicator on."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport=viewport)
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


async def queued_ids(store: Store) -> list[int]:
    async with store.transaction() as tx:
        return [c.id for c in await tx.list_conversations(states=["queued"])]


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
    async with store.transaction() as tx:  # the README's sample directory
        await tx.replace_resources(read_package(SAMPLE).sites, utcnow())
    base = settings.public_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:

            async def signed_in(name: str):  # type: ignore[no-untyped-def]
                return await open_signed_in(browser, base, name, OLD_VIEW, problems)

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
            # They gave ZIP 60601 (stored as the intake's location question stores it).
            (waiting,) = await queued_ids(store)
            async with store.locked_conversation(waiting) as (tx, conv):
                conv.location = "60601"
                await tx.save_conversation(conv)
            await ana.screenshot(path=str(SHOTS / "queue.png"), full_page=True)

            # Ana takes this one and replies.
            await row.get_by_role("button", name="Take").click()
            await ana.wait_for_url(base + "/dashboard/conversations/*")
            await ana.get_by_label("Reply").fill("Hi, I'm Ana. Are you safe right now?")
            await ana.get_by_role("button", name="Send").click()
            transcript = ana.locator("#transcript")
            await expect(transcript).to_contain_text("Are you safe right now?")

            # A local resource, searched from the texter's ZIP and inserted in one click.
            await expect(ana.locator("#resource-zip")).to_have_value("60601")
            await ana.locator("#resource-search").click()
            shelter = ana.locator("#resource-results li.resource", has_text=SHELTER)
            await expect(shelter).to_contain_text("24 h", timeout=5000)
            await shelter.get_by_role("button", name="Insert").click()
            await expect(ana.get_by_label("Reply")).to_have_value(
                re.compile(SHELTER + ": 312-555-0101")
            )
            await expect(ana.locator("#referrals")).to_contain_text(SHELTER)
            await ana.get_by_role("button", name="Send").click()
            await expect(transcript).to_contain_text(SHELTER + ": 312-555-0101")

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
    assert {"referral"} <= {a.action for a in audit}
    async with store.transaction() as tx:
        referrals = await tx.list_referrals(closed[0].id)
    assert [r.name for r in referrals if r.user_id is not None] == [SHELTER]
    assert not problems, problems  # CSP violations and script errors show up here
    for name in ("queue", "conversation", "supervisor", "queue-alarm"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    await asyncio.sleep(0)


def chromium_or_skip() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install it: see .ci/run)")
        pytest.skip("chromium is not installed")
    return CHROMIUM


# The newest message is wholly inside the transcript's visible area.
LAST_SHOWN = """() => {
  const t = document.getElementById("transcript");
  const items = t.querySelectorAll("li.msg");
  const box = t.getBoundingClientRect();
  const r = items[items.length - 1].getBoundingClientRect();
  return r.bottom <= box.bottom + 1 && r.top >= box.top - 1;
}"""


async def test_risk_order_live_transcript_alarms_and_small_screens(
    aging_live: tuple[TestClient, Settings],
) -> None:
    """Three texters (P1 danger words; P2 trafficking words; P3 custody worry that ages to
    P2): "Take next" gives P1, then the trafficking texter, then the aged one; the unclaimed
    alarm shows on two screens and leaves the other when one takes the texter; a new danger
    message scrolls into view, and scrolled up a marker appears instead; the queue and
    supervisor views fit a phone and the reply box stays on a laptop screen."""
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright, expect

    client, settings = aging_live
    store = client.server.app[STORE]
    for name, role in (("ana", "advocate"), ("ben", "advocate"), ("sue", "supervisor")):
        await add_user_cli(store, name, role, PASSWORD)
    base = settings.public_url
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    sent = iter(range(100, 1000))

    async def says(number: str, *bodies: str) -> None:
        for body in bodies:
            await texter_says(client, settings, body, next(sent), number)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=ARGS)
        try:

            async def signed_in(name: str, viewport: dict[str, int]):  # type: ignore[no-untyped-def]
                return await open_signed_in(browser, base, name, viewport, problems)

            ana = await signed_in("ana", LAPTOP)
            ben = await signed_in("ben", LAPTOP)
            # A trafficking screen-in: menu item 2, not under 18, not free to leave.
            await says("+15551230051", "hi", "yes", "2", "no", "no", "skip", "skip", "skip")
            await says(
                "+15551230052",
                "my ex says he will take the kids if i leave, how does custody work",
                "AGENT",
            )
            await says("+15551230053", "hi", "he has a gun and says he will kill me tonight")
            await asyncio.sleep(AGING_EVERY * 3)  # aging has run several steps
            await ana.reload()
            rows = ana.locator("table.queue tbody tr")
            await expect(rows).to_have_count(3)
            await expect(rows.nth(0)).to_contain_text("P1")
            await expect(rows.nth(1)).to_contain_text("P2 · screening answer")
            await expect(rows.nth(1)).to_contain_text("trafficking")
            await expect(rows.nth(2)).to_contain_text("take the kids")
            await expect(rows.nth(2)).to_contain_text("P2 · waited (aging)")
            await expect(rows.nth(0).get_by_role("button", name="Take ")).to_be_visible()

            # Phone: the queue and the supervisor's list fit 390 px, "Take" in reach.
            sue = await signed_in("sue", PHONE)
            await expect(sue.locator("table.queue tbody tr")).to_have_count(3)
            await expect(sue.locator("table.queue .take").first).to_be_in_viewport()
            await sue.screenshot(path=str(SHOTS / "queue-390.png"), full_page=True)
            assert await sue.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            await sue.goto(base + "/dashboard/supervisor")
            await expect(sue.locator("table.all tbody tr").first).to_contain_text("P1")
            await sue.screenshot(path=str(SHOTS / "supervisor-390.png"), full_page=True)
            assert await sue.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            # The P1 texter waits unclaimed past a minute: both advocates see the alarm.
            engine = client.server.app[ENGINE]
            assert await engine.check_alarms(utcnow() + timedelta(seconds=61))
            for page in (ana, ben):
                await expect(page.locator("#alarms .alarm.p1_unclaimed")).to_have_count(1)
            await expect(ben).to_have_title(re.compile(r"^\(\d\) "))
            await ana.screenshot(path=str(SHOTS / "queue-1366.png"))

            # Ana takes next: the P1 texter; the alarm leaves Ben's screen too.
            await ana.get_by_role("button", name="Take next").click()
            await ana.wait_for_url(base + "/dashboard/conversations/*")
            transcript = ana.locator("#transcript")
            await expect(transcript).to_contain_text("gun")
            await expect(ben.locator("#alarms .alarm.p1_unclaimed")).to_have_count(0, timeout=5000)
            await expect(ana.locator("#reply-form")).to_be_in_viewport()

            # A long conversation: new messages scroll into view while Ana is at the bottom.
            for i in range(12):
                await says("+15551230053", f"message {i} about what happened")
            last = transcript.locator("li.msg").last
            await expect(last).to_contain_text("message 11")
            await ana.wait_for_function(LAST_SHOWN, timeout=5000)
            await says("+15551230053", "he is at the door with the gun")
            await expect(transcript.locator("li.msg").last).to_contain_text("at the door")
            await ana.wait_for_function(LAST_SHOWN, timeout=5000)
            # Reading back up: a new message does not move the view; a marker offers it.
            await transcript.evaluate("el => { el.scrollTop = 0; }")
            marker = ana.get_by_role("button", name="New message ↓")
            await expect(marker).to_be_hidden()
            await says("+15551230053", "he is breaking the door")
            await expect(transcript.locator("li.msg").last).to_contain_text("breaking")
            await expect(marker).to_be_visible()
            assert not await ana.evaluate(LAST_SHOWN)
            await marker.click()
            await ana.wait_for_function(LAST_SHOWN, timeout=5000)
            await expect(marker).to_be_hidden()
            await ana.screenshot(path=str(SHOTS / "conversation-1366.png"))

            # Then the trafficking texter, then the one who aged.
            for expected in ("Are you free to leave", "custody"):
                await ana.goto(base + "/dashboard/queue")
                await ana.get_by_role("button", name="Take next").click()
                await ana.wait_for_url(base + "/dashboard/conversations/*")
                await expect(ana.locator("#transcript")).to_contain_text(expected)
        finally:
            await browser.close()

    assert not problems, problems
    for name in ("queue-390", "supervisor-390", "queue-1366", "conversation-1366"):
        assert (SHOTS / f"{name}.png").stat().st_size > 5_000

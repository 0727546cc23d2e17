"""Help beyond the queue through the real HTTP endpoints (issue 8): local resources from
the texter's ZIP with a referral recorded once, the screening tools prefilled from the
texter's own answers and raising priority, and the safety plan texted only when rule 2
allows — in English and Spanish."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot import safety_plan
from bot.dashboard.views import common
from bot.keys import ENGINE, SETTINGS, STORE
from bot.resources.hsds import read_package
from bot.store.base import Conversation, User
from bot.vocabulary import utcnow
from tests.helpers import MakeUser, sign_in

Text = Callable[..., Awaitable[list[str]]]
JSON = {"Accept": "application/json"}
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hsds-sample"


async def held(
    client: TestClient, make_user: MakeUser, text: Text, *says: str, number: str
) -> tuple[int, str, User]:
    """A texter says `says` through the signed webhook (ending in the queue); an advocate
    signs in and takes them. Returns the conversation id, a CSRF token and the advocate."""
    for body in says:
        await text(body, number=number)
    ana = await make_user("ana")
    token = await sign_in(client, "ana")
    taken = await client.post("/dashboard/take-next", data={"_csrf": token}, allow_redirects=False)
    assert taken.status == 303, await taken.text()
    cid = int(taken.headers["Location"].rsplit("/", 1)[1])
    return cid, token, ana


async def load(client: TestClient, cid: int) -> Conversation:
    async with client.server.app[STORE].transaction() as tx:
        return await tx.get_conversation(cid)


def post(client: TestClient, path: str, token: str, **data: str) -> Awaitable[object]:
    return client.post(path, data=data, headers={**JSON, "X-CSRF-Token": token})


def stored_bytes(client: TestClient) -> bytes:
    """Every byte of the SQLite database on disk (with its write-ahead log)."""
    path = Path(client.server.app[SETTINGS].database_url.removeprefix("sqlite://"))
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def directory(client: TestClient) -> None:
    async with client.server.app[STORE].transaction() as tx:
        await tx.replace_resources(read_package(SAMPLE).sites, utcnow())


# -- resources -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("says", "words"),
    [
        (("hi", "YES", "4", "60601"), "open 24 hours"),
        (("hola", "SI", "4", "60601"), "abierto 24 horas"),
    ],
)
async def test_resource_search_from_the_texters_zip_and_one_referral(
    client: TestClient, make_user: MakeUser, text: Text, says: tuple[str, ...], words: str
) -> None:
    """The page prefills the texter's ZIP; the search lists services nearest first with
    miles, phone and 24 h; Insert's line is in the texter's language; recording the
    referral twice keeps one, shown on the page and counted in stats."""
    await directory(client)
    cid, token, ana = await held(client, make_user, text, *says, "AGENT", number="+15551230100")
    async with client.server.app[STORE].transaction() as tx:
        counted = (await tx.stats())["referrals"]  # Haven may have given one itself
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert 'id="resource-zip" value="60601"' in page
    fragment = await client.get(f"/dashboard/conversations/{cid}/resources?zip=60601&need=shelter")
    html = await fragment.text()
    assert fragment.status == 200
    assert html.index("Safe Harbor Emergency Shelter") < html.index("Westside Overnight Beds")
    assert "312-555-0101" in html and " mi<" in html and "24 h" in html
    assert re.search(r'data-text="Safe Harbor Emergency Shelter: 312-555-0101 \(' + words, html)
    found = await (
        await client.get(f"/dashboard/conversations/{cid}/resources", headers=JSON)
    ).json()
    shelter = next(r for r in found["results"] if r["name"] == "Safe Harbor Emergency Shelter")
    assert found["results"][0]["miles"] <= shelter["miles"] and words in shelter["text"]

    first = await post(client, f"/dashboard/conversations/{cid}/referrals", token,
                       service_id=shelter["service_id"])  # fmt: skip
    again = await post(client, f"/dashboard/conversations/{cid}/referrals", token,
                       service_id=shelter["service_id"])  # fmt: skip
    assert (await first.json())["new"] is True  # type: ignore[attr-defined]
    assert (await again.json())["new"] is False  # type: ignore[attr-defined]
    async with client.server.app[STORE].transaction() as tx:
        given = await tx.list_referrals(cid)
        stats = await tx.stats()
    assert [r.name for r in given if r.user_id == ana.id] == ["Safe Harbor Emergency Shelter"]
    assert stats["referrals"] == counted + 1
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    referrals = page[page.index('id="referrals"') :]
    assert "Safe Harbor Emergency Shelter" in referrals[: referrals.index("</section>")]


async def test_unknown_zip_and_strangers(
    client: TestClient, second_client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """An unknown ZIP says so; a colleague who does not hold the conversation can neither
    search from it nor record a referral on it."""
    await directory(client)
    cid, _token, _ana = await held(client, make_user, text, "hi", "AGENT", number="+15551230101")
    html = await (await client.get(f"/dashboard/conversations/{cid}/resources?zip=00000")).text()
    assert "Unknown ZIP" in html
    bad = await client.get(f"/dashboard/conversations/{cid}/resources?zip=00000", headers=JSON)
    assert bad.status == 400 and (await bad.json())["error"] == "Unknown ZIP"
    await make_user("ben")
    other = await sign_in(second_client, "ben")
    assert (await second_client.get(f"/dashboard/conversations/{cid}/resources")).status == 403
    refused = await post(second_client, f"/dashboard/conversations/{cid}/referrals", other,
                         service_id="svc-1")  # fmt: skip
    assert refused.status == 403  # type: ignore[attr-defined]


# -- screening tools -------------------------------------------------------------------
async def test_lethality_screen_prefilled_and_a_screen_in_raises_priority(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """The texter's answers by text prefill the Lethality Screen; four yes among items
    4-11 screen in: P2 with basis "screening", the signal and the basis on the page; a
    later negative screen never lowers it; the answers are not stored in the clear."""
    says = ("hi", "YES", "1", "no", "no", "no", "no", "SKIP")
    cid, token, _ana = await held(client, make_user, text, *says, number="+15551230102")
    before = await load(client, cid)
    assert before.priority > 2 and before.answers["weapon"] == "no"
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert re.search(r'name="l1" value="no" checked', page)
    assert not re.search(r'name="l4" value="\w+" checked', page)

    answers = {f"l{n}": "no" for n in range(1, 12)} | {"l4": "yes", "l6": "yes",
                                                          "l7": "yes", "l11": "yes"}  # fmt: skip
    saved = await post(client, f"/dashboard/conversations/{cid}/screens", token,
                       kind="lethality", **answers)  # fmt: skip
    data = await saved.json()  # type: ignore[attr-defined]
    assert data["screened_in"] is True and data["priority"] == 2
    after = await load(client, cid)
    assert after.priority == 2 and after.flow["priority_basis"] == "screening"
    assert "screen:lethality" in after.signals
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert "Lethality Screen: yes to 4 of items 4-11 (items 4, 6, 7 and 11)" in page
    assert "P2 · screening answer" in page

    none = {f"l{n}": "no" for n in range(1, 12)}
    await post(client, f"/dashboard/conversations/{cid}/screens", token, kind="lethality", **none)
    assert (await load(client, cid)).priority == 2
    async with client.server.app[STORE].transaction() as tx:
        assert [s.data["screened_in"] for s in await tx.list_screens(cid)] == [True, False]
        audit = {a.action for a in await tx.list_audit(conversation_id=cid)}
    assert "screen" in audit
    raw = stored_bytes(client)
    assert b"yes to 4 of items" not in raw


async def test_trafficking_screen_adult_and_youth(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """A texter under 18 gets the youth indicators, prefilled from their answers; a yes to
    commercial sex makes them P1 with the trafficking label."""
    says = ("hi", "YES", "1", "no", "no", "no", "yes", "no", "no", "no", "SKIP")
    cid, token, _ana = await held(client, make_user, text, *says, number="+15551230103")
    conv = await load(client, cid)
    assert conv.answers["under_18"] == "yes" and conv.priority > 1
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert 'id="screen-trafficking_youth"' in page
    assert re.search(r'name="y1" value="no" checked', page)
    saved = await post(client, f"/dashboard/conversations/{cid}/screens", token,
                       kind="trafficking_youth", y1="yes", y3="no")  # fmt: skip
    assert (await saved.json())["priority"] == 1  # type: ignore[attr-defined]
    conv = await load(client, cid)
    assert conv.priority == 1 and "trafficking" in conv.labels
    bad = await post(client, f"/dashboard/conversations/{cid}/screens", token,
                     kind="trafficking_youth", y1="perhaps")  # fmt: skip
    assert bad.status == 400  # type: ignore[attr-defined]


# -- the safety plan -------------------------------------------------------------------
PLAN = {
    "contacts": "Ana at work, 312-555-0100",
    "code_word": "pineapple",
    "place": "Sister's flat on Oak St",
    "pets": "Neighbour keeps the dog",
}


@pytest.mark.parametrize(
    ("says", "language"),
    [(("hi", "YES", "AGENT"), "en"), (("hola", "SI", "AGENT"), "es")],
)
async def test_safety_plan_saved_and_texted_when_safe(
    client: TestClient, make_user: MakeUser, text: Text, says: tuple[str, ...], language: str
) -> None:
    """Saved encrypted, shown back in the form with the texter's headings; sent as the
    plan's texts (≤ 2 segments each, in the texter's language) through the advocate's
    path: stored as the advocate's messages and queued for delivery once each."""
    cid, token, ana = await held(client, make_user, text, *says, number="+15551230104")
    saved = await post(client, f"/dashboard/conversations/{cid}/safety-plan", token, **PLAN)
    assert (await saved.json())["sections"] == 4  # type: ignore[attr-defined]
    page = await (await client.get(f"/dashboard/conversations/{cid}")).text()
    assert "pineapple</textarea>" in page
    assert safety_plan.heading("code_word", language) in page
    raw = stored_bytes(client)
    assert b"pineapple" not in raw

    sent = await post(client, f"/dashboard/conversations/{cid}/safety-plan/send", token)
    assert sent.status == 200, await sent.text()  # type: ignore[attr-defined]
    expected = safety_plan.texts(PLAN, language)
    async with client.server.app[STORE].transaction() as tx:
        messages = await tx.list_messages(cid)
        plan = await tx.get_safety_plan(cid)
    mine = [m.body for m in messages if m.author == f"advocate:{ana.id}"]
    assert mine == expected
    assert safety_plan.heading("pets", language) + ": Neighbour keeps the dog" in mine
    assert plan is not None and plan.sent_at is not None


@pytest.mark.parametrize(
    ("says", "reason"),
    [
        (("hi", "AGENT"), "has not said it is safe"),
        (("hola", "NO", "AGENT"), "said it is not safe"),
    ],
)
async def test_safety_plan_refused_when_not_safe_to_text(
    client: TestClient, make_user: MakeUser, text: Text, says: tuple[str, ...], reason: str
) -> None:
    """Rule 2: a texter who never said YES, or said NO, gets nothing: 409 with the reason,
    and no message is stored or queued; a form post gets the reason as a flash."""
    cid, token, _ana = await held(client, make_user, text, *says, number="+15551230105")
    await post(client, f"/dashboard/conversations/{cid}/safety-plan", token, **PLAN)
    async with client.server.app[STORE].transaction() as tx:
        before = len(await tx.list_messages(cid))
    refused = await post(client, f"/dashboard/conversations/{cid}/safety-plan/send", token)
    assert refused.status == 409  # type: ignore[attr-defined]
    assert reason in (await refused.json())["error"]  # type: ignore[attr-defined]
    form = await client.post(f"/dashboard/conversations/{cid}/safety-plan/send",
                             data={"_csrf": token})  # fmt: skip
    assert reason in await form.text()
    async with client.server.app[STORE].transaction() as tx:
        assert len(await tx.list_messages(cid)) == before


async def test_safety_plan_never_in_unsafe_hours(
    client: TestClient, make_user: MakeUser, text: Text, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A texter who said YES but whose unsafe hours cover now is refused (409); once the
    dashboard's clock is past them, the plan goes out."""
    cid, token, _ana = await held(client, make_user, text, "hi", "YES", "AGENT",
                                  number="+15551230106")  # fmt: skip
    now = utcnow()
    async with client.server.app[STORE].transaction() as tx:
        texter = await tx.get_texter((await tx.get_conversation(cid)).texter_id)
        zone = client.server.app[ENGINE].hours.zone
        local = now.astimezone(zone)
        start, end = local - timedelta(minutes=30), local + timedelta(minutes=30)
        texter.unsafe_hours = f"{start:%H:%M}-{end:%H:%M}"
        await tx.save_texter(texter)
    await post(client, f"/dashboard/conversations/{cid}/safety-plan", token, **PLAN)
    refused = await post(client, f"/dashboard/conversations/{cid}/safety-plan/send", token)
    assert refused.status == 409  # type: ignore[attr-defined]
    assert "unsafe hours" in (await refused.json())["error"]  # type: ignore[attr-defined]
    monkeypatch.setattr(common, "utcnow", lambda: now + timedelta(hours=2))
    monkeypatch.setattr("bot.dashboard.views.tools.utcnow", lambda: now + timedelta(hours=2))
    sent = await post(client, f"/dashboard/conversations/{cid}/safety-plan/send", token)
    assert sent.status == 200  # type: ignore[attr-defined]


async def test_quick_exit_purges_screens_and_plan(
    client: TestClient, make_user: MakeUser, text: Text
) -> None:
    """Quick exit leaves nothing of what the advocate recorded with the texter."""
    cid, token, _ana = await held(client, make_user, text, "hi", "YES", "AGENT",
                                  number="+15551230107")  # fmt: skip
    await post(client, f"/dashboard/conversations/{cid}/safety-plan", token, **PLAN)
    await post(client, f"/dashboard/conversations/{cid}/screens", token, kind="lethality",
               l2="yes")  # fmt: skip
    async with client.server.app[STORE].transaction() as tx:
        assert await tx.get_safety_plan(cid) and await tx.list_screens(cid)
        await tx.purge_conversation(cid)
        assert await tx.get_safety_plan(cid) is None and await tx.list_screens(cid) == []

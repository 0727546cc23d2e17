"""Hypothesis fuzzing of the real app (create_app through the `client` fixture): Twilio's
webhooks, signed and unsigned, with arbitrary form fields and bodies, and every
state-changing dashboard form with arbitrary values, signed in with a valid CSRF token.
The property everywhere: never a 5xx, and a 4xx leaves everything stored unchanged."""

from __future__ import annotations

import sqlite3
import string
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.dashboard.accounts import add_user_cli
from bot.keys import STORE
from bot.settings import Settings
from bot.sms.statuses import CALLBACK_STATUSES
from tests.helpers import PASSWORD, csrf_of, new_sid, sign, sign_in

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values: ordinary text, any printable Unicode (incl. NUL, RTL, emoji), huge, and near-empty.
_VALUES = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=200),
    st.sampled_from(["", " ", "\x00", "\u202e", "😀" * 3, "%ff", "a=b&c", "0", "-1", "1e309"]),
    st.integers(min_value=1_000, max_value=200_000).map(lambda n: "x" * n),
)
_NAMES = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=20)
# Bytes that are not a form in its declared charset, and charsets that are odd or unknown.
_CHARSETS = st.sampled_from(["utf-8", "latin-1", "utf-16", "shift_jis", "bogus-charset", "", "x"])


# A refused sign-in (401) is counted by the login throttle, by design: its state is not
# "something stored" for the 4xx-changes-nothing check.
THROTTLE_TABLES = ("login_attempts", "login_locks")


def _dump(settings_: Settings) -> list[tuple[str, list[tuple[object, ...]]]]:
    """Every row of every table but the login throttle's, read through a separate
    connection (committed data)."""
    path = Path(settings_.database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = []
        for t in tables:
            if t in THROTTLE_TABLES:
                continue
            rows = list(db.execute(f'SELECT * FROM "{t}"'))
            if t == "sqlite_sequence":  # the throttle's AUTOINCREMENT counter moves too
                rows = [r for r in rows if r[0] not in THROTTLE_TABLES]
            dump.append((t, sorted(rows, key=repr)))
        return dump


def _inbound(**overrides: str) -> dict[str, str]:
    return {
        "MessageSid": new_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": "+15551230001",
        "To": "+15559990000",
        "Body": "hi",
        "NumMedia": "0",
        **overrides,
    }


_WEBHOOK_FIELDS = st.dictionaries(
    st.one_of(
        st.sampled_from(
            [
                "MessageSid",
                "SmsSid",
                "From",
                "To",
                "Body",
                "MessageStatus",
                "SmsStatus",
                "ErrorCode",
                "NumMedia",
                "AccountSid",
                "FromCountry",
            ]
        ),
        st.text(max_size=30),
    ),
    _VALUES,
    max_size=8,
)


async def _check(
    client: TestClient,
    settings_: Settings,
    path: str,
    *,
    data: bytes | str | Mapping[str, str] | FormData,
    headers: Mapping[str, str],
) -> int:
    if isinstance(data, Mapping):
        # Encoded here, as Twilio and browsers encode: aiohttp's client refuses some names.
        data = urlencode(data).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    before = _dump(settings_)
    response = await client.post(path, data=data, headers=dict(headers), allow_redirects=False)
    body = await response.text(errors="replace")
    assert response.status < 500, (path, response.status, body[:300])
    if 400 <= response.status < 500:
        assert _dump(settings_) == before, (path, response.status, body[:300])
    return response.status


async def _check_signed(
    client: TestClient, settings_: Settings, path: str, params: dict[str, str]
) -> int:
    headers = {"X-Twilio-Signature": sign(path, params)}
    return await _check(client, settings_, path, data=params, headers=headers)


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
@FUZZ
@given(fields=_WEBHOOK_FIELDS, signed=st.booleans(), based=st.booleans())
async def test_webhooks_with_arbitrary_fields(
    client: TestClient,
    settings: Settings,
    path: str,
    fields: dict[str, str],
    signed: bool,
    based: bool,
) -> None:
    """Signed or unsigned, from a plausible message with fields replaced or from nothing at
    all, any form fields (text, huge, odd Unicode) give no 5xx; a refusal stores nothing,
    and an unsigned request is always refused."""
    params = {**(_inbound() if based else {}), **fields}
    headers = {"X-Twilio-Signature": sign(path, params) if signed else "bogus"}
    status = await _check(client, settings, path, data=params, headers=headers)
    if not signed:
        assert status in (403, 413)  # refused: bad signature, or too large to read


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
@FUZZ
@given(raw=st.binary(max_size=2_000), charset=_CHARSETS, form=st.booleans())
async def test_webhooks_with_arbitrary_bytes(
    client: TestClient, settings: Settings, path: str, raw: bytes, charset: str, form: bool
) -> None:
    """Arbitrary bytes under any declared charset, as a form or not, signed over the bytes
    read as Latin-1 (so the signature may well match): never a 5xx, a refusal stores
    nothing."""
    kind = "application/x-www-form-urlencoded" if form else "text/plain"
    content_type = f"{kind}; charset={charset}" if charset else kind
    try:
        pairs = dict(p.split("=", 1) for p in raw.decode("latin-1").split("&") if "=" in p)
    except ValueError:
        pairs = {}
    headers = {"Content-Type": content_type, "X-Twilio-Signature": sign(path, pairs)}
    await _check(client, settings, path, data=raw, headers=headers)


_NUMBERS = st.from_regex(r"\+1555[0-9]{7}", fullmatch=True)


@FUZZ
@given(body=_VALUES, number=st.one_of(_NUMBERS, _NUMBERS, _VALUES))
async def test_signed_inbound_with_any_body_and_number(
    client: TestClient, settings: Settings, body: str, number: str
) -> None:
    """A signed message with any body, from a real-looking number or any From at all:
    either answered (200) or refused with nothing stored, never a 5xx."""
    params = _inbound(Body=body, From=number)
    await _check_signed(client, settings, "/twilio/sms", params)


@FUZZ
@given(
    sid=st.one_of(st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True), _VALUES),
    status=st.one_of(st.sampled_from(sorted(CALLBACK_STATUSES)), _VALUES),
    error=st.one_of(st.from_regex(r"[0-9]{0,8}", fullmatch=True), _VALUES),
)
async def test_signed_status_with_any_fields(
    client: TestClient, settings: Settings, sid: str, status: str, error: str
) -> None:
    """A signed delivery status with any SID, status and error code: never a 5xx, and a
    refused one changes nothing."""
    params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": error}
    await _check_signed(client, settings, "/twilio/status", params)


# -- the dashboard ------------------------------------------------------------------------
def _app(client: TestClient) -> web.Application:
    assert client.app is not None
    return client.app


def _post_routes(client: TestClient) -> list[str]:
    """Every state-changing dashboard form (POST), logout aside (it ends the session)."""
    paths = []
    for route in _app(client).router.routes():
        info = route.resource.canonical if route.resource else ""
        if route.method == "POST" and info.startswith(("/dashboard", "/login")):
            paths.append(info)
    return sorted(paths)


_FORM_FIELDS = st.dictionaries(
    st.one_of(
        st.sampled_from(
            [
                "body",
                "note",
                "to",
                "disposition",
                "program",
                "service_id",
                "kind",
                "presence",
                "capacity",
                "name",
                "password",
                "steps",
                "contacts",
            ]
        ),
        _NAMES,
    ),
    _VALUES,
    max_size=6,
)
_CIDS = st.one_of(st.just("1"), st.just("2"), _VALUES.filter(lambda v: len(v) < 100))


async def _signed_in(client: TestClient, settings_: Settings) -> str:
    """A supervisor signed in (once per test), and one texter's conversation (id 1)."""
    store = _app(client)[STORE]
    if not [r for t, rows in _dump(settings_) if t == "users" for r in rows]:
        await add_user_cli(store, "sam", "supervisor", PASSWORD, ())
        params = _inbound(Body="hi")
        await client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": sign("/twilio/sms", params)}
        )
        return await sign_in(client, "sam")
    page = await client.get("/dashboard/queue", headers={"Accept": "text/html"})
    return csrf_of(await page.text())


async def test_dashboard_forms_are_all_fuzzed(client: TestClient) -> None:
    """The fuzz below covers every POST route the app has (a new form is fuzzed too)."""
    routes = _post_routes(client)
    assert len(routes) >= 20, routes
    assert "/login" in routes and "/dashboard/conversations/{cid}/reply" in routes


@settings(FUZZ, max_examples=80)  # about four tries for each of the ~22 forms
@given(data=st.data(), fields=_FORM_FIELDS, cid=_CIDS, multipart=st.booleans())
async def test_dashboard_forms_with_arbitrary_values(
    client: TestClient,
    settings: Settings,
    data: st.DataObject,
    fields: dict[str, str],
    cid: str,
    multipart: bool,
) -> None:
    """Any dashboard form, signed in as a supervisor with a valid CSRF token, with any
    field values (text, huge, odd Unicode, or a file upload) and any conversation id:
    never a 5xx, and a 4xx changes nothing stored."""
    token = await _signed_in(client, settings)
    route = data.draw(st.sampled_from(_post_routes(client)), label="route")
    path = route.replace("{cid}", quote(cid, safe=""))
    form: FormData | dict[str, str]
    if multipart:
        form = FormData()
        form.add_field("_csrf", token)
        for name, value in fields.items():
            form.add_field(name, value.encode(), filename="f.bin")
    else:
        form = {**fields, "_csrf": token}
    await _check(client, settings, path, data=form, headers={})


# Found by this suite: the CSRF middleware reads the form with aiohttp's request.post(),
# which raises UnicodeDecodeError on bytes that are not text in the declared charset.


async def test_undecodable_form_before_sign_in_is_a_400(client: TestClient) -> None:
    """With no session, a login form with one byte that is not UTF-8 is a 400, not a 500."""
    response = await client.post(
        "/login",
        data=b"_csrf=x&name=\x80",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert response.status == 400


@FUZZ
@example(raw=b"\x80", charset="utf-8")  # the case found: always tried first
@given(raw=st.binary(max_size=500), charset=_CHARSETS)
async def test_dashboard_form_with_undecodable_bytes(
    client: TestClient, settings: Settings, raw: bytes, charset: str
) -> None:
    """A form whose bytes are not text in its declared charset, with a valid CSRF token in
    front, posted to a note: never a 5xx, a 4xx stores nothing."""
    token = await _signed_in(client, settings)
    body = urlencode({"_csrf": token}).encode() + b"&body=" + raw
    content_type = "application/x-www-form-urlencoded" + (f"; charset={charset}" if charset else "")
    await _check(
        client,
        settings,
        "/dashboard/conversations/1/notes",
        data=body,
        headers={"Content-Type": content_type},
    )

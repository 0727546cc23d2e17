"""bot.sms.webhook's own signature check and TwiML writer give exactly what the twilio SDK
gives (issue 11: both were rewritten without the SDK's machinery, for speed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.sms.webhook import signature_valid, status_callback_url, twiml

# Unicode of every kind Twilio may send (emoji, accents, RTL, control characters), but
# no lone surrogates: a form decoded strictly as UTF-8 (bot.sms.handlers.read_form)
# cannot hold one.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NAMES = st.sampled_from(["Body", "From", "To", "MessageSid", "NumMedia", "Body2", "b", ""])
PAIRS = st.lists(st.tuples(st.one_of(NAMES, TEXT), TEXT), max_size=12)
URLS = st.sampled_from(
    [
        "https://haven.example.org/twilio/sms",
        "https://haven.example.org:443/twilio/sms",
        "https://haven.example.org:8443/twilio/sms",
        "http://127.0.0.1:8080/twilio/status?ref=abcdefghijklmnop",
        "http://localhost/twilio/sms?a=1&a=2&b=%C3%A9",
        "https://user@haven.example.org/twilio/sms;x?y=z#frag",
    ]
)
TOKENS = st.sampled_from(["12345678901234567890123456789012", "tök", "x"])


def sdk_signature(token: str, url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def as_form(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """What read_form makes of a body with these pairs: repeated names, the last wins."""
    return dict(parse_qsl(urlencode(pairs), keep_blank_values=True))


@settings(max_examples=600, deadline=None)
@given(TOKENS, URLS, PAIRS, st.data())
@example("tok", "https://haven.example.org/twilio/sms", [("Body", "a"), ("Body", "b")], None)
@example("tok", "https://haven.example.org/twilio/sms", [], None)
def test_the_signature_check_agrees_with_the_sdk(
    token: str, url: str, pairs: list[tuple[str, str]], data: st.DataObject | None
) -> None:
    """For generated requests (repeated names, unicode names and values, URLs with and
    without ports, queries, empty forms) and signatures that are right (for the URL with
    or without its port), wrong by one character, for other fields, empty or not ASCII,
    signature_valid says exactly what RequestValidator.validate says."""
    params = as_form(pairs)
    right = sdk_signature(token, url, params)
    other_port = url.replace(":443/", "/") if ":443/" in url else url
    candidates = [
        right,
        sdk_signature(token, other_port, params),
        right[:-2] + ("A" if right[-2] != "A" else "B") + right[-1],
        sdk_signature(token, url, {**params, "Extra": "1"}),
        sdk_signature(token + "x", url, params),
        "",
        "é" * len(right),
        right + " ",
    ]
    if data is not None:
        candidates.append(data.draw(TEXT))
    for signature in candidates:
        expected = bool(RequestValidator(token).validate(url, dict(params), signature))
        assert signature_valid(token, url, params, signature) is expected, signature


def test_a_signature_for_the_url_with_its_default_port_is_accepted() -> None:
    """Twilio signs with or without the default port; both pass, as with the SDK (a
    check that this test's own generator reaches the port branch)."""
    params = {"Body": "hi", "From": "+15551230001"}
    with_port = "https://haven.example.org:443/twilio/sms"
    digest = hmac.new(
        b"tok", (with_port + "Bodyhi" + "From+15551230001").encode(), hashlib.sha1
    ).digest()
    signature = base64.b64encode(digest).decode()
    assert signature_valid("tok", "https://haven.example.org/twilio/sms", params, signature)
    assert RequestValidator("tok").validate(
        "https://haven.example.org/twilio/sms", params, signature
    )


def sdk_twiml(texts: list[str], refs: list[str], public_url: str) -> str:
    response = MessagingResponse()
    for index, text in enumerate(texts):
        if refs:
            response.message(text, action=status_callback_url(public_url, refs[index]))
        else:
            response.message(text)
    return str(response)


ANY_TEXT = st.text(max_size=60)  # lone surrogates included: the SDK writes references
REFS = st.text(st.sampled_from("abcXYZ019_-"), min_size=16, max_size=20)
PUBLIC_URLS = st.sampled_from(
    ["https://haven.example.org", 'http://h/a?b="c"&d=<e>\t\r\n', "https://é.example/"]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(ANY_TEXT, max_size=4), st.booleans(), st.data())
@example(["a & <b> \"c\" 'd'", "", "911 ☎ é\u0000\ud800"], True, None)
def test_twiml_is_byte_for_byte_the_sdks(
    texts: list[str], with_refs: bool, data: st.DataObject | None
) -> None:
    """For generated replies (markup characters, quotes, empty texts, control characters,
    emoji, lone surrogates) with and without action URLs (quotes, tabs and newlines in
    them), twiml() returns exactly the string MessagingResponse renders."""
    refs: list[str] = []
    public_url = "https://haven.example.org"
    if with_refs:
        refs = [data.draw(REFS) if data else "r" * 16 for _ in texts]
        public_url = data.draw(PUBLIC_URLS) if data else 'http://h/a?b="c"&d=<e>\t\r\n'
    assert twiml(texts, refs, public_url) == sdk_twiml(texts, refs, public_url)

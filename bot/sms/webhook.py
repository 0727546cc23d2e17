"""Twilio's side of the wire: parse an inbound webhook, check its signature, answer in TwiML.

Transport never decides what to say: it hands an InboundSms to the engine and wraps the
texts the engine returns.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

from twilio.request_validator import add_port, remove_port

MAX_BODY = 1600  # Twilio's own limit for one message
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")  # texters' numbers, as Twilio sends them


class BadRequest(ValueError):
    """The webhook is signed but malformed (e.g. no From): 400, nothing stored."""


@dataclass(frozen=True)
class InboundSms:
    message_sid: str
    from_: str
    to: str
    body: str
    num_media: int = 0
    media_types: tuple[str, ...] = ()


def parse_inbound(form: Mapping[str, str]) -> InboundSms:
    """Build an InboundSms from Twilio's form fields; unknown fields are ignored."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid:
        raise BadRequest("MessageSid is required")
    if len(sid) > 64:
        raise BadRequest("MessageSid is too long")
    if not _E164.match(sender):
        raise BadRequest("From must be an E.164 phone number (+15551234567)")
    body = form.get("Body") or ""
    if len(body) > MAX_BODY:
        raise BadRequest(f"Body is longer than {MAX_BODY} characters")
    try:
        num_media = int(form.get("NumMedia") or 0)
    except ValueError:
        raise BadRequest("NumMedia must be a whole number") from None
    if not 0 <= num_media <= 10:
        raise BadRequest("NumMedia must be between 0 and 10")
    media_types = tuple(
        (form.get(f"MediaContentType{i}") or "application/octet-stream")[:100]
        for i in range(num_media)
    )
    return InboundSms(sid, sender, (form.get("To") or "").strip(), body, num_media, media_types)


def signature_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Check X-Twilio-Signature exactly as Twilio computes it: the same answer as the SDK's
    `RequestValidator(auth_token).validate(url, dict(params), signature)` for every input
    (tests/sms/test_webhook_equivalence.py), without its per-call costs (two sorts and an
    exception per field, a character-by-character compare). The signed string is the URL
    followed by each field's name and value, names sorted; the URL is tried as given
    without a port and with the scheme's default port, as the SDK does."""
    if not signature:
        return False
    params = dict(params)  # one value per name, as the SDK is given it
    fields = "".join([name + params[name] for name in sorted(params)])
    given = signature.encode("utf-8", "surrogatepass")
    key = auth_token.encode("utf-8")
    for uri in _uri_forms(url):
        mac = hmac.new(key, (uri + fields).encode("utf-8"), hashlib.sha1)
        if hmac.compare_digest(base64.b64encode(mac.digest()), given):
            return True
    return False


@functools.lru_cache(maxsize=64)
def _uri_forms(url: str) -> tuple[str, str]:
    """The URL without its port and with the default one, by the SDK's own functions (a
    handful of distinct URLs reach us: the webhook's, and status callbacks)."""
    parsed = urlparse(url)
    return remove_port(parsed), add_port(parsed)


STATUS_PATH = "/twilio/status"
# Haven's reference for a TwiML reply, in its callback URL: random, URL-safe (bot.engine).
REPLY_REF = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def status_callback_url(public_url: str, reply_ref: str | None = None) -> str:
    """Where Twilio reports on a message Haven sent: the outbox's StatusCallback and, with
    the reply's reference, a TwiML <Message>'s action (the same absolute URL, which Twilio
    signs with its query)."""
    url = public_url.rstrip("/") + STATUS_PATH
    return url if reply_ref is None else f"{url}?ref={reply_ref}"


_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _text(value: str) -> str:
    """Character data escaped as ElementTree (the SDK's serialiser) escapes it."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _attribute(value: str) -> str:
    """An attribute value escaped as ElementTree escapes it."""
    value = _text(value)
    for raw, escaped in (('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;")):
        if raw in value:
            value = value.replace(raw, escaped)
    return value


def twiml(texts: Sequence[str], refs: Sequence[str] = (), public_url: str = "") -> str:
    """A TwiML response with one <Message> per text; an empty <Response/> for none. With
    `refs` (one per text), each <Message> gets an action: Twilio posts that message's SID
    there, so Haven can redact it at Twilio when it erases the conversation.

    Byte for byte what the SDK's MessagingResponse renders (tests/sms/
    test_webhook_equivalence.py), written directly: the SDK builds an ElementTree and
    serialises it through an encoder for every reply."""
    if refs and len(refs) != len(texts):
        raise ValueError("one reference per text")
    if not texts:
        return _XML_DECLARATION + "<Response />"
    parts = [_XML_DECLARATION, "<Response>"]
    for index, text in enumerate(texts):
        opening = "<Message"
        if refs:
            opening += f' action="{_attribute(status_callback_url(public_url, refs[index]))}"'
        parts.append(f"{opening}>{_text(text)}</Message>" if text else f"{opening} />")
    parts.append("</Response>")
    xml = "".join(parts)
    # The SDK encodes to UTF-8 with character references for what cannot be encoded (lone
    # surrogates), then decodes: the same here, for the rare text that needs it.
    return xml if xml.isascii() else xml.encode("utf-8", "xmlcharrefreplace").decode("utf-8")

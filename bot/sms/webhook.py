"""Twilio's side of the wire: parse an inbound webhook, check its signature, answer in TwiML.

Transport never decides what to say: it hands an InboundSms to the engine and wraps the
texts the engine returns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

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
    """Check X-Twilio-Signature exactly as Twilio computes it (the SDK's validator)."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


STATUS_PATH = "/twilio/status"
# Haven's reference for a TwiML reply, in its callback URL: random, URL-safe (bot.engine).
REPLY_REF = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def status_callback_url(public_url: str, reply_ref: str | None = None) -> str:
    """Where Twilio reports on a message Haven sent: the outbox's StatusCallback and, with
    the reply's reference, a TwiML <Message>'s action (the same absolute URL, which Twilio
    signs with its query)."""
    url = public_url.rstrip("/") + STATUS_PATH
    return url if reply_ref is None else f"{url}?ref={reply_ref}"


def twiml(texts: Sequence[str], refs: Sequence[str] = (), public_url: str = "") -> str:
    """A TwiML response with one <Message> per text; an empty <Response/> for none. With
    `refs` (one per text), each <Message> gets an action: Twilio posts that message's SID
    there, so Haven can redact it at Twilio when it erases the conversation."""
    if refs and len(refs) != len(texts):
        raise ValueError("one reference per text")
    response = MessagingResponse()
    for index, text in enumerate(texts):
        if refs:
            response.message(text, action=status_callback_url(public_url, refs[index]))
        else:
            response.message(text)
    return str(response)

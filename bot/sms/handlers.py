"""HTTP handlers for Twilio's webhooks: check the signature, parse, hand to the engine."""

from __future__ import annotations

import codecs
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

import structlog
from aiohttp import web

from bot import metrics
from bot.engine import utcnow
from bot.events import Event
from bot.keys import ENGINE, EVENTS, SETTINGS, STORE
from bot.logs import get_logger
from bot.sms.statuses import CALLBACK_STATUSES, INBOUND_STATUSES
from bot.sms.webhook import REPLY_REF, BadRequest, parse_inbound, signature_valid, twiml

log = get_logger("haven.sms")

TWIML = "text/xml"
_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
_ERROR_CODE = re.compile(r"^[0-9]{0,8}$")
Handler = Callable[[web.Request, Mapping[str, str]], Awaitable[web.StreamResponse]]


def signed(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Refuse (403, nothing changed) unless X-Twilio-Signature is valid for our public URL.
    Unsigned requests pass only when no auth token is configured outside production."""

    async def check(request: web.Request) -> web.StreamResponse:
        settings = request.app[SETTINGS]
        params = await read_form(request)
        if settings.twilio_auth_token or settings.production:
            url = settings.public_url + request.path_qs
            if not signature_valid(
                settings.twilio_auth_token, url, params, request.headers.get("X-Twilio-Signature")
            ):
                metrics.WEBHOOK_REJECTED.labels("signature").inc()
                log.warning("webhook_signature_rejected", path=request.path)
                raise web.HTTPForbidden(text="invalid signature")
        return await handler(request, params)

    return check


FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 200  # Twilio sends a few dozen


async def read_form(request: web.Request) -> dict[str, str]:
    """Twilio's form fields, decoded strictly. Anything that is not a form in a known
    charset, or whose bytes are not text in it, is a 400 before any other check (never an
    unauthenticated 500). Repeated fields: the last wins, as in the signature check."""
    if request.content_type != FORM:
        metrics.WEBHOOK_REJECTED.labels("malformed").inc()
        raise web.HTTPBadRequest(text="expected an application/x-www-form-urlencoded form")
    charset = request.charset or "utf-8"
    try:
        codecs.lookup(charset)
        text = (await request.read()).decode(charset)
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding=charset, errors="strict",
            max_num_fields=MAX_FIELDS,
        )  # fmt: skip
    except (LookupError, UnicodeError, ValueError):
        metrics.WEBHOOK_REJECTED.labels("malformed").inc()
        raise web.HTTPBadRequest(text="the form is not readable text") from None
    return dict(pairs)


@signed
async def inbound_sms(request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
    try:
        sms = parse_inbound(params)
    except BadRequest as exc:
        metrics.WEBHOOK_REJECTED.labels("malformed").inc()
        log.warning("webhook_malformed", reason=str(exc))
        raise web.HTTPBadRequest(text=str(exc)) from None
    outcome = await request.app[ENGINE].handle_inbound(sms)
    # On the request's one log line (bot.app.request_context), not a line of its own.
    structlog.contextvars.bind_contextvars(
        conversation_id=outcome.conversation_id,
        replies=len(outcome.texts),
        duplicate=outcome.duplicate,
    )
    body = twiml(outcome.texts, outcome.refs, request.app[SETTINGS].public_url)
    return web.Response(text=body, content_type=TWIML)


@signed
async def delivery_status(request: web.Request, params: Mapping[str, str]) -> web.StreamResponse:
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not _SID.match(sid) or status not in CALLBACK_STATUSES:
        raise web.HTTPBadRequest(text="MessageSid and a known MessageStatus are required")
    if not _ERROR_CODE.match(params.get("ErrorCode") or ""):
        # Bounded before it is stored or logged: Twilio's codes are short numbers.
        raise web.HTTPBadRequest(text="ErrorCode must be a number")
    if status in INBOUND_STATUSES:
        # Twilio reports our own inbound messages this way: nothing of ours to update.
        return web.Response(text=twiml([]), content_type=TWIML)
    ref = request.query.get("ref")
    if ref is not None:
        return await _reply_callback(request, ref, sid)
    error_code = (params.get("ErrorCode") or "").strip() or None
    async with request.app[STORE].transaction() as tx:
        message = await tx.record_status(sid, status, error_code, utcnow())
    if message is not None:
        request.app[EVENTS].publish(
            Event(
                "status",
                {
                    "conversation_id": message.conversation_id,
                    "message_id": message.id,
                    "status": message.status,
                },
            )
        )
    log.info("delivery_status", known=message is not None, status=status, error_code=error_code)
    return web.Response(text=twiml([]), content_type=TWIML)


async def _reply_callback(request: web.Request, ref: str, sid: str) -> web.StreamResponse:
    """A TwiML reply's <Message action>: Twilio's SID for the reply Haven referenced `ref`.
    Recorded on the stored message, so erasing the conversation redacts it at Twilio; if
    the message is gone already (or was never stored: the reply to EXIT or DELETE), the
    SID is redacted at once, through the outbox."""
    if not REPLY_REF.match(ref):
        raise web.HTTPBadRequest(text="ref is not a reply reference")
    async with request.app[STORE].transaction() as tx:
        outcome = await tx.record_reply_sid(ref, sid)
    if outcome == "erased":
        request.app[ENGINE].wake_outbox()
    log.info("reply_callback", outcome=outcome)
    return web.Response(text=twiml([]), content_type=TWIML)

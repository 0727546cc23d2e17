"""Outbound SMS senders: Twilio through its SDK's async client, or the console with no account.

A sender makes one attempt and says how it went: a provider message SID, or a SendError that
is transient (Twilio did not take it: worth retrying later), permanent (resending the same
request gets the same answer) or uncertain (the request may have reached Twilio but no answer
came: a timeout, a connection dropped after sending; resending could double the text).
Retrying, backoff and "sent once" live in bot.sms.outbox, not here.

Rule 4: nothing here logs a phone number or a message body. Twilio's error *messages* often
quote the number, so only the numeric code and HTTP status ever leave this module.
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from typing import Protocol, TextIO

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.settings import Settings
from bot.vocabulary import mask_number

# Twilio error codes that no retry can fix (https://www.twilio.com/docs/api/errors).
# Any other 4xx but 429 is treated as permanent too; these are the ones worth naming.
PERMANENT_CODES: dict[str, str] = {
    "20003": "authentication failed",
    "21211": "invalid 'To' number",
    "21408": "region not enabled for SMS",
    "21602": "body required",
    "21606": "'From' number cannot send SMS",
    "21610": "recipient opted out (STOP)",
    "21612": "'To' number not reachable by SMS",
    "21614": "'To' number is not a mobile number",
    "21617": "body too long",
}


class SendError(Exception):
    """One attempt to send failed. `permanent` says whether retrying can help; `uncertain`
    that Twilio may have accepted it (never resend); `code` is the Twilio error code (e.g.
    "21610"), or "http_<status>", "network", "timeout" or "disconnected"."""

    def __init__(
        self,
        permanent: bool,
        code: str | None,
        status: int | None = None,
        *,
        uncertain: bool = False,
    ) -> None:
        kind = "uncertain" if uncertain else "permanent" if permanent else "transient"
        # Deliberately no provider message text: it can contain the phone number.
        super().__init__(f"{kind} send error code={code} http_status={status}")
        self.permanent = permanent
        self.uncertain = uncertain
        self.code = code
        self.status = status


class Sender(Protocol):
    async def send(
        self, to: str, body: str, status_callback: str | None, from_number: str | None = None
    ) -> str:
        """Send one SMS; return the provider message SID. Raises SendError. `from_number`:
        the program's own number the texter wrote to (None: the configured sender)."""
        ...

    async def redact(self, sid: str) -> None:
        """Blank the body the provider keeps for message `sid` (erasure). Done also when
        the provider has no such message. Raises SendError."""
        ...

    async def close(self) -> None: ...


class ConsoleSender:
    """DESIGN section 9: with no Twilio account, outbound texts are printed to the developer's
    terminal (not the log) and kept in memory for `python -m bot chat` and the dashboard."""

    def __init__(self, stream: TextIO | None = None, keep: int = 200) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._stream = stream
        self._keep = keep
        self.sent: list[tuple[str, str]] = []

    async def send(
        self, to: str, body: str, status_callback: str | None, from_number: str | None = None
    ) -> str:
        # Looked up at send time so a redirected sys.stdout (tests, `chat`) is honoured.
        stream = self._stream if self._stream is not None else sys.stdout
        print(f"[to texter {mask_number(to)}] {body}", file=stream, flush=True)
        self.sent.append((to, body))
        if len(self.sent) > self._keep:
            del self.sent[: len(self.sent) - self._keep]
        return f"SMconsole{uuid.uuid4().hex}"

    async def redact(self, sid: str) -> None:
        return None  # nothing left the machine

    async def close(self) -> None:
        return None


def classify(exc: BaseException) -> SendError:
    """Map whatever one Twilio attempt raised to a SendError (transient or permanent)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status) if exc.status is not None else None
        code = str(exc.code) if exc.code is not None else f"http_{status}"
        # 429 and 5xx say "not now"; other 4xx say "never, for this request".
        transient = status is None or status == 429 or status >= 500
        return SendError(not transient, code, status)
    if isinstance(exc, asyncio.TimeoutError):
        # The request may have been sent and accepted; only its answer is missing.
        return SendError(False, "timeout", uncertain=True)
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return SendError(False, "network")  # never connected: nothing reached Twilio
    if isinstance(exc, aiohttp.ClientError | OSError):
        # Connected, then lost (reset, server disconnected, a cut-off answer): unknown.
        return SendError(False, "disconnected", uncertain=True)
    # Anything else (e.g. an unparsable 2xx body) means we cannot know whether Twilio
    # accepted it; permanent, so the outbox shows it failed rather than risking a double.
    return SendError(True, "unknown")


class TwilioSender:
    """Twilio's REST API through the SDK's aiohttp-based client.

    The SDK client (and its aiohttp session) is built on first use, so this object can be
    made outside a running event loop (e.g. in create_app) and closed in cleanup.
    """

    def __init__(self, settings: Settings, timeout: float | None = None) -> None:
        if not settings.twilio_enabled:
            raise ValueError("TwilioSender needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            raise ValueError(
                "TwilioSender needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"
            )
        self._settings = settings
        self._timeout = settings.twilio_timeout if timeout is None else timeout
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    def _get_client(self) -> Client:
        if self._client is None:
            s = self._settings
            # No SDK-level retries (max_retries=None): the outbox owns retrying and backoff.
            self._http = AsyncTwilioHttpClient()
            client = Client(
                s.twilio_account_sid,
                s.twilio_auth_token,
                http_client=self._http,
                environment={},  # settings are the only source; never os.environ
            )
            if s.twilio_api_base:
                # The SDK builds every Messages URL from this domain's base_url
                # (twilio.base.domain.Domain.absolute_url); tests point it at a fake server.
                client.api.base_url = s.twilio_api_base
            self._client = client
        return self._client

    async def send(
        self, to: str, body: str, status_callback: str | None, from_number: str | None = None
    ) -> str:
        s = self._settings
        client = self._get_client()
        sender: dict[str, str] = (
            {"from_": from_number or s.twilio_from_number}
            if from_number or s.twilio_from_number
            else {"messaging_service_sid": s.twilio_messaging_service_sid}
        )
        kwargs: dict[str, str] = {"to": to, "body": body, **sender}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            # The SDK's own request has no deadline; this is ours.
            async with asyncio.timeout(self._timeout):
                message = await client.messages.create_async(**kwargs)
        except Exception as exc:
            # Logged by the outbox, which knows the message id.
            raise classify(exc) from None  # no chained exception: its text may quote the number
        sid = message.sid
        if not sid:
            raise SendError(True, "no_sid")
        return str(sid)

    async def redact(self, sid: str) -> None:
        """Twilio's message redaction: POST Body="" to the message resource."""
        client = self._get_client()
        try:
            async with asyncio.timeout(self._timeout):
                await client.messages(sid).update_async(body="")
        except Exception as exc:
            error = classify(exc)
            if error.code == "20404" or error.status == 404:
                return  # Twilio keeps nothing under this SID: nothing to redact
            raise error from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None


# NANPA reserves 555-0100..0199 for fiction: training mode's role-play texters use them.
_FICTIONAL = re.compile(r"^\+1\d{3}55501\d{2}$")


def is_fictional(number: str) -> bool:
    return bool(_FICTIONAL.match(number))


class FictionAwareSender:
    """Role-play texters (fictional numbers) go to the console, never to a carrier, so
    training mode is safe on a live deployment."""

    def __init__(self, real: Sender, console: ConsoleSender) -> None:
        self.real = real
        self.console = console

    @property
    def sent(self) -> list[tuple[str, str]]:
        return self.console.sent

    async def send(
        self, to: str, body: str, status_callback: str | None, from_number: str | None = None
    ) -> str:
        target = self.console if is_fictional(to) else self.real
        return await target.send(to, body, status_callback, from_number)

    async def redact(self, sid: str) -> None:
        await self.real.redact(sid)

    async def close(self) -> None:
        await self.real.close()
        await self.console.close()


def make_sender(settings: Settings) -> Sender:
    """Twilio when an account is configured (fictional numbers still to the console), else
    the console sender (never in production: texts would show as sent and go nowhere)."""
    if settings.twilio_enabled:
        return FictionAwareSender(TwilioSender(settings), ConsoleSender())
    if settings.production:
        raise ValueError("production needs a real Twilio sender, not the console")
    return ConsoleSender()

"""A local fake of Twilio's REST API, just the part Haven uses: creating a Message.

It speaks what the real twilio SDK sends (form-encoded POST, HTTP basic auth) and answers
in Twilio's JSON shapes, including Twilio's legacy error body {"code", "message",
"more_info", "status"}. Failures can be queued for the next requests, so tests can drive
the real SDK through 5xx, 429 and permanent errors; answers can be delayed (the message is
accepted at once, the answer comes late) to drive the SDK past its timeout.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"
MESSAGE_PATH = "/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"

ERROR_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
}


@dataclass
class Received:
    """One Messages.json request as the fake saw it (form fields as sent)."""

    account_sid: str
    form: dict[str, str]
    status: int  # what the fake answered
    sid: str | None = None  # the Message SID when accepted


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"
    requests: list[Received] = field(default_factory=list)
    _failures: deque[tuple[int, int]] = field(default_factory=deque)
    _delays: deque[float] = field(default_factory=deque)
    _delay_to: dict[str, float] = field(default_factory=dict)
    # Bodies Twilio keeps, by SID (accepted outbound ones, and inbound ones tests register),
    # and the SIDs redacted (POST Body="" to the message), in order.
    bodies: dict[str, str] = field(default_factory=dict)
    redacted: list[str] = field(default_factory=list)
    _server: TestServer | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    # -- programming it ---------------------------------------------------------------
    def fail_next(self, count: int, status: int, code: int | None = None) -> None:
        """The next `count` Messages requests get `status` with Twilio error `code`."""
        default = {429: 20429, 401: 20003}.get(status, 20500 if status >= 500 else 21211)
        for _ in range(count):
            self._failures.append((status, code if code is not None else default))

    def delay_next(self, count: int, seconds: float) -> None:
        """The next `count` Messages requests are accepted (the text would go out) but
        answered only after `seconds`: what a client that times out cannot know."""
        self._delays.extend([seconds] * count)

    def delay_to(self, number: str, seconds: float) -> None:
        """Every accepted message to `number` is answered only after `seconds`."""
        self._delay_to[number] = seconds

    def inbound(self, sid: str, body: str) -> None:
        """A message a texter sent: Twilio keeps its body too."""
        self.bodies[sid] = body

    def twiml_message(self, body: str) -> str:
        """A <Message> of a webhook's TwiML answer, which Twilio sends: it keeps the body
        under a new SID (which it then posts to the <Message>'s action URL)."""
        sid = "SM" + uuid.uuid4().hex
        self.bodies[sid] = body
        return sid

    def body_of(self, sid: str) -> str:
        return self.bodies[sid]

    @property
    def messages(self) -> list[Received]:
        """Only the accepted messages: what Twilio would actually deliver."""
        return [r for r in self.requests if r.sid is not None]

    # -- running it -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(MESSAGES_PATH, self._create_message)
        app.router.add_post(MESSAGE_PATH, self._update_message)
        self._server = TestServer(app, host="127.0.0.1")  # port 0: a free random port
        await self._server.start_server()

    async def close(self) -> None:
        self._closing.set()  # delayed answers end now rather than hold the shutdown
        if self._server is not None:
            await self._server.close()
            self._server = None

    # -- the API ----------------------------------------------------------------------
    def _error(self, status: int, code: int) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": ERROR_TEXT.get(code, "Error"),
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )

    def _authorised(self, request: web.Request, account_sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid == account_sid and password == self.auth_token

    def _refuse(self, request: web.Request, received: Received) -> web.Response | None:
        """Record the request; answer 401 for bad credentials or the next queued failure."""
        self.requests.append(received)
        if not self._authorised(request, received.account_sid):
            received.status = 401
            return self._error(401, 20003)
        if self._failures:
            status, code = self._failures.popleft()
            received.status = status
            return self._error(status, code)
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        account_sid = request.match_info["account_sid"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        received = Received(account_sid, form, 0)
        if (refused := self._refuse(request, received)) is not None:
            return refused
        if not form.get("To") or not form.get("Body"):
            received.status = 400
            return self._error(400, 21602 if not form.get("Body") else 21604)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            received.status = 400
            return self._error(400, 21603)
        sid = "SM" + uuid.uuid4().hex
        received.status, received.sid = 201, sid
        self.bodies[sid] = form["Body"]
        delay = self._delays.popleft() if self._delays else self._delay_to.get(form["To"], 0.0)
        if delay > 0:
            try:
                await asyncio.wait_for(self._closing.wait(), delay)
            except TimeoutError:
                pass
        return web.json_response(
            {
                "sid": sid,
                "account_sid": account_sid,
                "to": form["To"],
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "error_code": None,
                "error_message": None,
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    async def _update_message(self, request: web.Request) -> web.Response:
        """Redaction: POST Body="" to a message blanks the body Twilio keeps."""
        account_sid, sid = request.match_info["account_sid"], request.match_info["sid"]
        form = {k: str(v) for k, v in (await request.post()).items()}
        received = Received(account_sid, {"Sid": sid, **form}, 0)
        if (refused := self._refuse(request, received)) is not None:
            return refused
        if sid not in self.bodies:
            received.status = 404
            return self._error(404, 20404)
        if form.get("Body") != "":
            received.status = 400
            return self._error(400, 21602)
        self.bodies[sid] = ""
        self.redacted.append(sid)
        received.status = 200
        return web.json_response(
            {"sid": sid, "account_sid": account_sid, "body": "", "status": "delivered"}
        )

"""The webhook's baseline: a bare aiohttp app that parses the same form Twilio posts and
answers fixed TwiML, with no signature check, store, triage or logging.

python -m benchmarks.bare PORT   (the benchmark starts it pinned to the server's core)
"""

from __future__ import annotations

import sys

from aiohttp import web

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hello</Message></Response>'


async def inbound(request: web.Request) -> web.Response:
    form = await request.post()
    if "MessageSid" not in form:
        raise web.HTTPBadRequest(text="no MessageSid")
    return web.Response(text=TWIML, content_type="text/xml")


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/twilio/sms", inbound)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 8090
    web.run_app(make_app(), host="127.0.0.1", port=port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

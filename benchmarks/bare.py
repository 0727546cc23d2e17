"""The webhook's baseline: a bare aiohttp app that parses the same form Twilio posts and
answers fixed TwiML, with no signature check, store, triage or logging.

python -m benchmarks.bare PORT   (the benchmark starts it pinned to the server's core)
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hello</Message></Response>'


SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
PENDING = web.AppKey("pending", set[asyncio.Task[None]])


async def _relay(sockets: list[web.WebSocketResponse], event: str) -> None:
    await asyncio.sleep(0)  # after the handler has returned its answer
    for ws in sockets:
        if not ws.closed:
            await ws.send_str(event)


async def inbound(request: web.Request) -> web.Response:
    form = await request.post()
    sid = form.get("MessageSid")
    if not isinstance(sid, str):
        raise web.HTTPBadRequest(text="no MessageSid")
    sockets = request.app[SOCKETS]
    if sockets:  # the fan-out baseline: relayed to every socket once the answer is out
        event = json.dumps(
            {"kind": "message", "sid": sid, "direction": "in"}, separators=(",", ":")
        )
        task = asyncio.get_running_loop().create_task(_relay(list(sockets), event))
        request.app[PENDING].add(task)
        task.add_done_callback(request.app[PENDING].discard)
    return web.Response(text=TWIML, content_type="text/xml")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        request.app[SOCKETS].discard(ws)
    return ws


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = set()
    app[PENDING] = set()
    app.router.add_get("/ws", websocket)
    app.router.add_post("/twilio/sms", inbound)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 8090
    # The same event loop as `serve` (uvloop when installed): the ratio compares apps,
    # not loops.
    from bot.__main__ import event_loop

    web.run_app(
        make_app(), host="127.0.0.1", port=port, access_log=None, print=None, loop=event_loop()
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

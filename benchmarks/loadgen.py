"""A small HTTP/1.1 load generator on raw asyncio connections (keep-alive, one request at a
time per connection), light enough that one core drives a bare aiohttp server.

Requests are built before the clock starts (signing is Twilio's work, not ours).

- closed loop: N connections, each sends its next request as soon as the last is answered;
  the figure is requests answered per second.
- open loop: requests are due at a fixed rate whatever the server does; each one's latency
  is measured from the moment it was due, so a server that falls behind is charged for the
  requests waiting their turn (no coordinated omission). Requests still unanswered at the
  drain deadline count as errors with their wait so far.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from benchmarks.backends import AUTH_TOKEN, PUBLIC_URL

PATH = "/twilio/sms"


class _Conn(asyncio.Protocol):
    """One keep-alive connection; `request` sends raw bytes and returns (status, body)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        status = int(head[0].split(b" ", 2)[1])
        waiter.set_result((status, body))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        if self.closed:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int) -> _Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
    return conn


@dataclass(frozen=True)
class Prepared:
    raw_by_port: dict[int, bytes]  # the same request addressed to each server
    sid: str


class Inbound:
    """Signed inbound-SMS requests from `texters` distinct numbers, in turn: request i comes
    from texter i mod texters and says the (i div texters)-th line of `script`."""

    def __init__(
        self, texters: int, script: Sequence[str], run: str, prefix: str = "+1555"
    ) -> None:
        self.texters = texters
        self.script = script
        self.run = run
        self.prefix = prefix
        self.validator = RequestValidator(AUTH_TOKEN)
        self.count = itertools.count()

    def number(self, texter: int) -> str:
        return f"{self.prefix}{texter:07d}"

    def params(self, texter: int, body: str) -> dict[str, str]:
        serial = next(self.count)
        return {
            "MessageSid": f"SM{self.run}{serial:0{32 - len(self.run)}d}",
            "AccountSid": "AC" + "0" * 32,
            "From": self.number(texter),
            "To": "+15559990000",
            "Body": body,
            "NumMedia": "0",
        }

    def build(self, params: dict[str, str], ports: Sequence[int]) -> Prepared:
        signature = self.validator.compute_signature(PUBLIC_URL + PATH, params)
        body = urlencode(params).encode()
        raws = {
            port: (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
            for port in ports
        }
        return Prepared(raws, params["MessageSid"])

    def take(self, n: int, ports: Sequence[int], start: int = 0) -> list[Prepared]:
        out = []
        for i in range(start, start + n):
            texter = i % self.texters
            line = self.script[(i // self.texters) % len(self.script)]
            out.append(self.build(self.params(texter, line), ports))
        return out


def ok_twiml(status: int, body: bytes) -> bool:
    return status == 200 and b"<Response" in body


@dataclass
class Run:
    latencies_ns: list[int] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)  # sids answered 200 with TwiML
    errors: int = 0
    unanswered: int = 0
    wall_s: float = 0.0
    client_cpu: float = 0.0  # load generator CPU seconds / wall seconds (1.0: saturated)
    start_ns: int = 0  # open loop: when request 0 was due (time.perf_counter_ns())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _open_conns(ports: Sequence[int], n: int) -> list[tuple[int, _Conn]]:
    pairs = [(ports[i % len(ports)], i) for i in range(n)]
    conns = await asyncio.gather(*(connect(port) for port, _ in pairs))
    return [(port, conn) for (port, _), conn in zip(pairs, conns, strict=True)]


async def closed_loop(
    ports: Sequence[int],
    requests: Iterator[Prepared],
    connections: int,
    duration_s: float,
    check: Callable[[int, bytes], bool] = ok_twiml,
) -> Run:
    """`connections` connections (spread over the ports) send back to back for duration_s."""
    run = Run()
    conns = await _open_conns(ports, connections)
    deadline = time.monotonic() + duration_s
    cpu0, started = _cpu(), time.perf_counter()

    async def worker(port: int, conn: _Conn) -> None:
        while time.monotonic() < deadline:
            prepared = next(requests, None)
            if prepared is None:
                return
            sent = time.perf_counter_ns()
            try:
                status, body = await conn.request(prepared.raw_by_port[port])
            except ConnectionError:
                run.errors += 1
                return
            run.latencies_ns.append(time.perf_counter_ns() - sent)
            if check(status, body):
                run.acked.append(prepared.sid)
            else:
                run.errors += 1

    await asyncio.gather(*(worker(port, conn) for port, conn in conns))
    run.wall_s = time.perf_counter() - started
    run.client_cpu = (_cpu() - cpu0) / run.wall_s
    for _, conn in conns:
        conn.close()
    return run


async def open_loop(
    ports: Sequence[int],
    requests: Sequence[Prepared],
    rate: float,
    connections: int,
    drain_s: float,
    check: Callable[[int, bytes], bool] = ok_twiml,
    on_ack: Callable[[int, int], None] | None = None,
    offsets_s: Sequence[float] | None = None,
) -> Run:
    """Request i is due at start + i / rate. `connections` connections take the requests in
    order; a request waiting for a free connection is already late, and its latency counts
    from when it was due. on_ack(i, ns) is called at each acknowledgement
    (time.perf_counter_ns()). offsets_s, if given, are the due times instead (seconds from
    the start, ascending); `rate` then only sets the drain deadline's origin."""
    run = Run()
    conns = await _open_conns(ports, connections)
    start_ns = time.perf_counter_ns() + 50_000_000
    next_index = itertools.count()
    cpu0, started = _cpu(), time.perf_counter()
    total = len(requests)
    answered = bytearray(total)

    def due_ns(i: int) -> int:
        if offsets_s is not None:
            return start_ns + int(offsets_s[i] * 1e9)
        return start_ns + int(i * 1e9 / rate)

    run.start_ns = start_ns

    async def worker(port: int, conn: _Conn) -> None:
        while True:
            i = next(next_index)
            if i >= total:
                return
            delay = (due_ns(i) - time.perf_counter_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status, body = await conn.request(requests[i].raw_by_port[port])
            except ConnectionError:
                return  # counted below as unanswered
            now = time.perf_counter_ns()
            answered[i] = 1
            run.latencies_ns.append(now - due_ns(i))
            if check(status, body):
                run.acked.append(requests[i].sid)
                if on_ack is not None:
                    on_ack(i, now)
            else:
                run.errors += 1

    tasks = [asyncio.create_task(worker(port, conn)) for port, conn in conns]
    span = offsets_s[-1] if offsets_s else total / rate
    _, pending = await asyncio.wait(tasks, timeout=span + 0.05 + drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    now = time.perf_counter_ns()
    for i in range(total):
        if not answered[i]:
            # Not answered by the drain deadline: charged the wait so far, and an error.
            run.unanswered += 1
            run.errors += 1
            run.latencies_ns.append(max(0, now - due_ns(i)))
    run.wall_s = time.perf_counter() - started
    run.client_cpu = (_cpu() - cpu0) / run.wall_s
    for _, conn in conns:
        conn.close()
    return run

"""Floor 5: a burst of texters, one in ten in danger, with advocates coming on shift half-way
through (so a queue has built up when they start taking).

Each texter's first text is due at an even spacing over the burst; a texter in danger sends
one text that shows it (priority 1, queued at once); the others say what is going on
(trafficking: 2, abuse: 3, nothing: 4) and, `ask_after_s` later, ask for a person (queued).
From half-way, advocates press "Take next" in turn. A supervisor's screen listens for alarms.

- Priority inversions: a "Take next" answered with a texter of lower priority while a
  higher-priority texter was already acknowledged as queued before the take was sent and
  was not handed out by any take sent before this one was answered. Must be 0.
- Alarm time: from the 2xx of a danger text to its `p1_unclaimed` alarm on the supervisor's
  screen, beside the configured alarm_after (the earliest it may come). A danger texter
  still unclaimed well past alarm_after with no alarm is a missed alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks import loadgen, procs, staff
from benchmarks.backends import SECRET
from benchmarks.report import Check, Figure, summarise
from bot.crypto import Crypto

DANGER = "he has a gun and said he will kill me tonight"
FIRST = {
    2: "my boss took my passport and makes me work for no pay",
    3: "my husband hits me",
    4: "hi",
}
ASK = "person"
ALARM_SLACK_S = 3.0  # tick (1 s) plus processing: later than this past alarm_after is missed
AFTER_S = 2.0  # after the burst's last text: alarm_after plus this for takes and late alarms


@dataclass(frozen=True)
class BurstLoad:
    texters: int = 500
    seconds: float = 60.0
    danger_share: float = 0.10
    advocates: int = 4
    take_every_s: float = 0.5  # per advocate, from half-way through the burst
    alarm_after_s: int = 10
    ask_after_s: float = 2.0
    start_taking_share: float = 0.5  # advocates come on shift this far through the burst

    @property
    def start_taking_s(self) -> float:
        return self.seconds * self.start_taking_share


@dataclass
class Take:
    sent_ns: int
    answered_ns: int
    conversation_id: int | None


@dataclass
class Texter:
    index: int
    priority: int  # what its words should make it
    queued_ack_ns: int | None = None
    conversation_id: int | None = None
    danger_ack_ns: int | None = None


@dataclass
class Outcome:
    takes: list[Take] = field(default_factory=list)
    take_ns: list[int] = field(default_factory=list)
    take_errors: int = 0
    alarms: dict[int, int] = field(default_factory=dict)  # conversation -> arrival ns
    webhook: loadgen.Run | None = None


def plan(load: BurstLoad) -> tuple[list[Texter], list[tuple[float, int, str]]]:
    """The texters and the (due s, texter, text) schedule, in due order."""
    texters: list[Texter] = []
    schedule: list[tuple[float, int, str]] = []
    every = max(1, round(1 / load.danger_share))
    spacing = load.seconds / load.texters
    for i in range(load.texters):
        at = i * spacing
        if i % every == every // 2:
            texters.append(Texter(i, 1))
            schedule.append((at, i, DANGER))
        else:
            priority = (2, 3, 4, 4)[i % 4]
            texters.append(Texter(i, priority))
            schedule.append((at, i, FIRST[priority]))
            schedule.append((at + load.ask_after_s, i, ASK))
    schedule.sort()
    return texters, schedule


def inversions(takes: list[Take], texters: list[Texter], priority_of: dict[int, int]) -> int:
    """Takes that handed out a lower priority while a higher one was surely waiting."""
    taken_by: dict[int, int] = {}  # conversation -> sent_ns of the take that got it
    for take in takes:
        if take.conversation_id is not None:
            taken_by.setdefault(take.conversation_id, take.sent_ns)
    count = 0
    for take in takes:
        if take.conversation_id is None:
            continue
        got = priority_of.get(take.conversation_id, 4)
        for texter in texters:
            cid = texter.conversation_id
            if cid is None or texter.queued_ack_ns is None or cid == take.conversation_id:
                continue
            if texter.queued_ack_ns >= take.sent_ns or priority_of.get(cid, 4) >= got:
                continue
            other_take = taken_by.get(cid)
            if other_take is not None and other_take < take.answered_ns:
                continue  # handed out before or while this take ran
            count += 1
            break
    return count


async def _advocate(
    member: staff.Staff, load: BurstLoad, start_ns: int, stop: asyncio.Event, out: Outcome, k: int
) -> None:
    first = start_ns + int((load.start_taking_s + k * load.take_every_s / load.advocates) * 1e9)
    await asyncio.sleep(max(0.0, (first - time.perf_counter_ns()) / 1e9))
    while not stop.is_set():
        began = time.perf_counter_ns()
        code, data = await member.post("/dashboard/take-next")
        done = time.perf_counter_ns()
        cid = data.get("conversation_id") if code == 200 else None
        if code not in (200, 409):
            out.take_errors += 1
        out.take_ns.append(done - began)
        out.takes.append(Take(began, done, cid if isinstance(cid, int) else None))
        await asyncio.sleep(max(0.0, load.take_every_s - (done - began) / 1e9))


async def _watch(ws: aiohttp.ClientWebSocketResponse, out: Outcome) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT or '"kind":"alarm"' not in msg.data:
            continue
        data = json.loads(msg.data)
        cid = data.get("conversation_id")
        if data.get("reason") == "p1_unclaimed" and isinstance(cid, int):
            out.alarms.setdefault(cid, time.perf_counter_ns())


def _conversations(path: Path) -> tuple[dict[str, int], dict[int, int]]:
    """phone hash -> conversation, conversation -> priority."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT t.phone_hash, c.id, c.priority FROM conversations c"
            " JOIN texters t ON t.id = c.texter_id"
        ).fetchall()
    return {r[0]: r[1] for r in rows}, {r[1]: r[2] for r in rows}


async def measure(load: BurstLoad) -> list[Figure]:
    texters, schedule = plan(load)
    advocates = [f"bench_burst_{i}" for i in range(load.advocates)]
    with tempfile.TemporaryDirectory(prefix="haven-bench-") as tmp:
        folder = Path(tmp)
        db = folder / "haven.db"
        url = f"sqlite:///{db}"
        await staff.add_users(
            url, [(n, "advocate") for n in advocates] + [("bench_watch", "supervisor")]
        )
        with contextlib.closing(sqlite3.connect(db)) as conn:  # they take what they are handed
            conn.execute("UPDATE users SET capacity = 10000 WHERE role = 'advocate'")
            conn.commit()
        port = procs.free_port()
        env = procs.haven_env(url, folder, port, HAVEN_ALARM_AFTER=str(load.alarm_after_s))
        inbound = loadgen.Inbound(load.texters, [""], run="U", prefix="+1556")
        requests = [
            inbound.build(inbound.params(texter, text), [port]) for _, texter, text in schedule
        ]
        offsets = [at for at, _, _ in schedule]
        out = Outcome()
        with procs.load_generator_core() as where:
            async with (
                procs.Server("haven", procs.serve_args(), env, port, folder) as server,
                aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
            ):
                members = await staff.sign_in_all(server.base, [*advocates, "bench_watch"], session)
                watch = members.pop()
                ws = await session.ws_connect(
                    server.base.replace("http", "ws") + "/ws", headers=watch.headers
                )
                watcher = asyncio.create_task(_watch(ws, out))
                stop = asyncio.Event()
                acks: dict[int, int] = {}

                def on_ack(i: int, ns: int) -> None:
                    acks[i] = ns

                start_ns = time.perf_counter_ns() + 50_000_000
                takers = [
                    asyncio.create_task(_advocate(m, load, start_ns, stop, out, k))
                    for k, m in enumerate(members)
                ]
                out.webhook = await loadgen.open_loop(
                    [port], requests, 1.0, 20, drain_s=10.0, on_ack=on_ack, offsets_s=offsets
                )
                # Let the advocates empty the queue and late alarms arrive.
                await asyncio.sleep(load.alarm_after_s + AFTER_S)
                stop.set()
                await asyncio.gather(*takers)
                await ws.close()
                watcher.cancel()
        hash_to_cid, priority_of = await asyncio.to_thread(_conversations, db)
    crypto = Crypto(SECRET)
    for i, (_, index, text) in enumerate(schedule):
        texter = texters[index]
        texter.conversation_id = hash_to_cid.get(crypto.lookup_hash(inbound.number(index)))
        if i in acks and text in (DANGER, ASK):
            texter.queued_ack_ns = acks[i]
            if text == DANGER:
                texter.danger_ack_ns = acks[i]
    return _figures(load, texters, out, priority_of, where)


def _figures(
    load: BurstLoad, texters: list[Texter], out: Outcome, priority_of: dict[int, int], where: str
) -> list[Figure]:
    assert out.webhook is not None
    taken_at = {t.conversation_id: t.answered_ns for t in out.takes if t.conversation_id}
    alarm_ns: list[int] = []
    missed = early = 0
    danger = [t for t in texters if t.priority == 1]
    for texter in danger:
        cid, acked = texter.conversation_id, texter.danger_ack_ns
        if cid is None or acked is None:
            missed += 1
            continue
        alarmed = out.alarms.get(cid)
        if alarmed is not None:
            alarm_ns.append(alarmed - acked)
            if alarmed - acked < load.alarm_after_s * 1e9 - 1e9:
                early += 1  # (the server stamps queued_at a moment before the 2xx)
            continue
        taken = taken_at.get(cid)
        if taken is None or taken - acked > (load.alarm_after_s + ALARM_SLACK_S) * 1e9:
            missed += 1
    handed = [priority_of.get(t.conversation_id, 0) for t in out.takes if t.conversation_id]
    by_priority = {p: handed.count(p) for p in (1, 2, 3, 4)}
    inverted = inversions(out.takes, texters, priority_of)
    wrong_priority = sum(
        1
        for t in texters
        if t.conversation_id is not None and priority_of.get(t.conversation_id) != t.priority
    )
    detail = (
        f"{load.texters} texters in {load.seconds:g} s, {len(danger)} in danger;"
        f" {load.advocates} advocates take next every {load.take_every_s:g} s each from"
        f" {load.start_taking_s:g} s; alarm_after {load.alarm_after_s} s; client on {where}"
    )
    ideal = [load.alarm_after_s * 1_000_000_000] * max(1, len(alarm_ns))
    alarm = Figure(
        name="burst_alarm",
        backend="sqlite",
        detail=detail,
        subject=summarise("danger text 2xx -> p1_unclaimed alarm on screen", alarm_ns),
        baseline=summarise("alarm_after (the earliest allowed)", ideal),
        check=Check(
            "every danger texter left unclaimed was alarmed, none early", not missed and not early
        ),
        notes={"danger_texters": len(danger), "alarmed": len(alarm_ns), "missed": missed},
    )
    webhook = out.webhook
    take = Figure(
        name="burst_take_next",
        backend="sqlite",
        detail=detail,
        subject=summarise("POST /dashboard/take-next", out.take_ns, None, out.take_errors),
        baseline=summarise(
            "POST /twilio/sms in the same burst", webhook.latencies_ns, None, webhook.errors
        ),
        check=Check("0 priority inversions in what take next handed out", inverted == 0),
        notes={
            "handed_out_by_priority": by_priority,
            "priority_inversions": inverted,
            "texters_not_at_the_priority_their_words_give": wrong_priority,
            "webhook_errors": webhook.errors,
        },
    )
    return [alarm, take]

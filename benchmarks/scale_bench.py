"""Floor 4: data at scale. A SQLite database holding `texters` texters and `messages`
messages (encrypted as the store writes them), seeded straight into the tables and cached
under /tmp keyed by the schema (the migrations' text) and the counts; each run serves a
copy. A signed-in advocate then times, one request at a time, the queue page, "take next"
and a conversation page (median and p95 of N each), beside GET /healthz on the same server,
and the server's RSS is read at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from benchmarks import procs, staff
from benchmarks.backends import SECRET
from benchmarks.report import Check, Figure, Summary, summarise
from bot.crypto import Crypto
from bot.vocabulary import utcnow

LIMIT_US = 20_000.0  # floor 4: each page under 20 ms (judged on the p95)
RSS_LIMIT_MB = 200.0
CACHE = Path(tempfile.gettempdir()) / "haven-bench-cache"
MIGRATIONS = Path(__file__).resolve().parent.parent / "bot" / "store" / "migrations" / "sqlite"
TS = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # bot.store.sqlite's fixed-width timestamps
ADVOCATE = "bench_scale"
HELD_BY_ADVOCATE = 3  # what the advocate holds before taking more
OTHER_HELD = 20  # held by colleagues

LINES_IN = (
    "hi",
    "yes",
    "my partner yells at me and took my phone last week",
    "i dont know what to do",
    "can someone help me find a place to stay",
    "60601",
    "he is at work now so i can text",
    "thank you",
)
LINES_OUT = (
    "Thanks for reaching out. Is it safe for you to text right now? Reply YES or NO.",
    "What's going on? Reply with a number or in your own words.",
    "An advocate will reply here when one is free.",
    "I'm here with you. Can you tell me more about what happened?",
)


@dataclass(frozen=True)
class ScaleLoad:
    texters: int = 100_000
    messages: int = 1_000_000
    queued: int = 200
    requests: int = 50  # per page timed; take next takes this many


def schema_key() -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def cached_path(load: ScaleLoad) -> Path:
    return CACHE / (f"scale-{schema_key()}-{load.texters}t-{load.messages}m-{load.queued}q.db")


def _ts(dt: datetime) -> str:
    return dt.strftime(TS)


def seed(path: Path, load: ScaleLoad, advocate_id: int, colleague_id: int) -> None:
    """Fill a migrated database: every texter has a conversation, one in ten a second
    (returning texters); `queued` wait, a few are held, the rest are closed; messages are
    spread evenly, alternating texter and reply. Bodies are encrypted from a pool of lines
    (each row its own ciphertext would only make seeding slower, not reading)."""
    crypto = Crypto(SECRET)
    rng = random.Random(11)
    now = utcnow()
    pool_in = [crypto.encrypt(line) for line in LINES_IN for _ in range(4)]
    pool_out = [crypto.encrypt(line) for line in LINES_OUT for _ in range(4)]
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    with db:
        texters = []
        for t in range(1, load.texters + 1):
            phone = f"+1555{t:07d}"
            created = now - timedelta(days=30, seconds=-t * 20)
            texters.append(
                (t, crypto.lookup_hash(phone), crypto.encrypt(phone), "en", 1, _ts(created))
            )
        db.executemany(
            "INSERT INTO texters (id, phone_hash, phone_enc, language, safe_to_text,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            texters,
        )
        del texters
        owners = list(range(1, load.texters + 1)) + list(range(1, load.texters + 1, 10))
        conversations = len(owners)
        open_from = conversations - load.queued - HELD_BY_ADVOCATE - OTHER_HELD
        rows = []
        for c, texter in enumerate(owners, start=1):
            created = now - timedelta(days=29, seconds=-c * 18)
            index = c - 1
            claimed = closed = disposition = queued_at = advocate = None
            if index >= open_from + HELD_BY_ADVOCATE + OTHER_HELD:
                state, priority = "queued", 2 + index % 3
                # Waits of up to an hour behind the newest, kept from aging to P1.
                queued_at = _ts(now - timedelta(seconds=(conversations - c) * 15))
                created = now - timedelta(seconds=(conversations - c) * 15 + 60)
            elif index >= open_from:
                state, priority = "with_advocate", 3
                advocate = advocate_id if index < open_from + HELD_BY_ADVOCATE else colleague_id
                queued_at = claimed = _ts(now - timedelta(minutes=5))
                created = now - timedelta(minutes=10)
            else:
                state, priority = "closed", rng.choice((2, 3, 3, 4, 4))
                queued_at = _ts(created + timedelta(minutes=2))
                claimed = _ts(created + timedelta(minutes=4))
                closed = _ts(created + timedelta(minutes=30))
                disposition = "resources_given"
                advocate = colleague_id
            labels = json.dumps(["abuse"] if priority <= 3 else [])
            rows.append(
                (
                    c,
                    texter,
                    state,
                    "en",
                    priority,
                    labels,
                    "general",
                    advocate,
                    _ts(created),
                    _ts(created),
                    _ts(created),
                    queued_at,
                    claimed,
                    closed,
                    disposition,
                )
            )
        db.executemany(
            "INSERT INTO conversations (id, texter_id, state, language, priority, labels, team,"
            " advocate_id, created_at, updated_at, last_inbound_at, queued_at, claimed_at,"
            " closed_at, disposition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        starts = [r[8] for r in rows]
        del rows
        per, extra = divmod(load.messages, conversations)

        def messages() -> object:
            mid = 0
            for c in range(1, conversations + 1):
                created = datetime.fromisoformat(starts[c - 1])
                for k in range(per + (1 if c <= extra else 0)):
                    mid += 1
                    at = _ts(created + timedelta(seconds=20 * k))
                    if k % 2 == 0:
                        yield (
                            mid,
                            c,
                            "in",
                            "texter",
                            rng.choice(pool_in),
                            at,
                            f"SM{mid:032d}",
                            "received",
                        )
                    else:
                        yield (mid, c, "out", "haven", rng.choice(pool_out), at, None, "replied")

        db.executemany(
            "INSERT INTO messages (id, conversation_id, direction, author, body_enc, created_at,"
            " provider_sid, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            messages(),  # type: ignore[arg-type]
        )
        db.execute("UPDATE users SET capacity = ? WHERE id = ?", (10_000, advocate_id))
    db.execute("ANALYZE")
    # One self-contained file to cache and copy (the store turns WAL on again at open).
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()


async def prepared_database(load: ScaleLoad, folder: Path) -> tuple[Path, bool, float]:
    """A copy of the seeded database in folder: (path, from the cache, seconds to seed)."""
    cached = cached_path(load)
    target = folder / "haven.db"
    seeded_s = 0.0
    hit = cached.exists()
    if not hit:
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob(f"scale-*-{load.texters}t-{load.messages}m-{load.queued}q.db"):
            old.unlink()  # an older schema's
        building = CACHE / (cached.name + ".building")
        building.unlink(missing_ok=True)
        began = time.perf_counter()
        url = f"sqlite:///{building}"
        await staff.add_users(url, [(ADVOCATE, "advocate"), ("bench_colleague", "advocate")])
        with contextlib.closing(sqlite3.connect(building)) as db:
            ids = dict(db.execute("SELECT name, id FROM users").fetchall())
        await asyncio.to_thread(seed, building, load, ids[ADVOCATE], ids["bench_colleague"])
        building.rename(cached)
        seeded_s = time.perf_counter() - began
    await asyncio.to_thread(shutil.copyfile, cached, target)
    return target, hit, seeded_s


def _held_by_advocate(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT c.id FROM conversations c JOIN users u ON u.id = c.advocate_id"
            " WHERE u.name = ? AND c.state = 'with_advocate' ORDER BY c.id",
            (ADVOCATE,),
        ).fetchall()
    if not rows:
        raise RuntimeError("the seeded advocate holds no conversation")
    return [r[0] for r in rows]


def _children(pid: int) -> list[str]:
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += task.read_text().split()
    return found


async def warmed_up(server: procs.Server, limit_s: float = 60.0) -> None:
    """Until the server's warm-up is over: Server.settle watches the server's own CPU, and
    the warm-up reads the ZIP table in a child process (bot.resources.geo), during which
    the server itself is idle; so wait for its children to finish, then settle again."""
    assert server.proc is not None
    deadline = time.monotonic() + limit_s
    while _children(server.proc.pid) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # another process: nothing here to wait on but time
    await server.settle()


async def _time(op: Callable[[], Awaitable[bool]], n: int) -> tuple[list[int], int]:
    durations: list[int] = []
    errors = 0
    for _ in range(n):
        began = time.perf_counter_ns()
        ok = await op()
        durations.append(time.perf_counter_ns() - began)
        errors += 0 if ok else 1
    return durations, errors


async def measure(load: ScaleLoad) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="haven-bench-") as tmp:
        folder = Path(tmp)
        db, hit, seeded_s = await prepared_database(load, folder)
        mine = await asyncio.to_thread(_held_by_advocate, db)
        port = procs.free_port()
        env = procs.haven_env(f"sqlite:///{db}", folder, port, HAVEN_RETENTION_DAYS="3650")
        with procs.load_generator_core() as where:
            async with (
                procs.Server("haven", procs.serve_args(), env, port, folder) as server,
                aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
            ):
                await warmed_up(server)
                advocate = staff.Staff(ADVOCATE, server.base, session)
                await advocate.sign_in()
                status, _ = await advocate.get("/dashboard/queue")

                async def healthz() -> bool:
                    async with session.get(server.base + "/healthz") as response:
                        await response.read()
                        return response.status == 200

                async def queue_page() -> bool:
                    code, text = await advocate.get("/dashboard/queue")
                    return code == 200 and "take-next" in text

                turn = iter(range(10**9))

                async def conversation_page() -> bool:
                    cid = mine[next(turn) % len(mine)]
                    code, _ = await advocate.get(f"/dashboard/conversations/{cid}")
                    return code == 200

                async def take_next() -> bool:
                    code, data = await advocate.post("/dashboard/take-next")
                    return code == 200 and bool(data.get("ok"))

                # Warm up each path once (first compiles, statement caches).
                for op in (healthz, queue_page, conversation_page):
                    await op()
                base, base_err = await _time(healthz, load.requests)
                queue_t, queue_err = await _time(queue_page, load.requests)
                conv_t, conv_err = await _time(conversation_page, load.requests)
                take_t, take_err = await _time(take_next, load.requests)
                rss = server.rss_mb()
    baseline = summarise("GET /healthz (same server)", base, None, base_err)
    detail = (
        f"{load.texters:,} texters, {load.messages:,} messages, {load.queued} queued;"
        f" {load.requests} requests one at a time as a signed-in advocate; client on {where}"
    )
    figures = [
        _figure("scale_queue", "GET /dashboard/queue", queue_t, queue_err, baseline, detail),
        _figure("scale_take_next", "POST /dashboard/take-next", take_t, take_err, baseline, detail),
        _figure(
            "scale_conversation",
            "GET /dashboard/conversations/{cid}",
            conv_t,
            conv_err,
            baseline,
            detail,
        ),
    ]
    figures[0].notes.update(
        {
            "server_rss_mb": round(rss, 1),
            "seeded": "from the cache" if hit else f"now, in {seeded_s:.0f} s",
            "queue_page_status": status,
        }
    )
    figures[0].more_checks.append(
        Check(f"server RSS under {RSS_LIMIT_MB:.0f} MB", rss < RSS_LIMIT_MB)
    )
    return figures


def _figure(
    name: str, label: str, durations: list[int], errors: int, baseline: Summary, detail: str
) -> Figure:
    subject = summarise(label, durations, None, errors)
    return Figure(
        name=name,
        backend="sqlite",
        detail=detail,
        subject=subject,
        baseline=baseline,
        check=Check(
            f"p95 under {LIMIT_US / 1000:.0f} ms, no errors",
            errors == 0 and subject.p95_us < LIMIT_US,
        ),
    )

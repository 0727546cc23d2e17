"""The benchmark entry point runs end to end with tiny counts and reports every figure beside
its baseline. No timing is asserted: speed is what the benchmarks print, not what tests
judge. What is asserted is what the benchmarks must get right whatever the speed: nothing
acknowledged is lost after kill -9, every event reaches every screen, "take next" never
hands out a lower priority while a higher one waits."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from benchmarks import loadgen
from benchmarks.burst_bench import Take, Texter, inversions
from benchmarks.report import percentile
from benchmarks.serve_bench import durability

REPO = Path(__file__).resolve().parent.parent


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    # A separate process: the benchmark configures logging process-wide.
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def check(figure: dict[str, Any], words: str) -> bool:
    found = [c["passed"] for c in figure["checks"] if words in c["description"]]
    assert len(found) == 1, (words, figure["checks"])
    return bool(found[0])


def test_quick_run_reports_each_figure_beside_its_baseline_as_json() -> None:
    """`python -m benchmarks --quick --json` measures every floor of issue 11 (triage, the
    webhook in a real serve process closed and open loop, the queue, dashboard fan-out,
    data at scale, the burst; PostgreSQL too when configured), each with a baseline,
    absolutes and ratios; nothing fails to run; and the correctness checks hold: every
    acknowledged message is stored once after kill -9, every event reaches every client,
    and take next hands out no priority inversion."""
    done = run_benchmarks("--json")
    assert done.returncode in (0, 1), done.stderr  # 1 only means a target was missed
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["failed"] == {}, report["failed"]
    expected = {
        ("triage", ""),
        ("webhook", "sqlite"),
        ("webhook_open", "sqlite"),
        ("queue", "sqlite"),
        ("fanout", "sqlite"),
        ("scale_queue", "sqlite"),
        ("scale_take_next", "sqlite"),
        ("scale_conversation", "sqlite"),
        ("burst_alarm", "sqlite"),
        ("burst_take_next", "sqlite"),
    }
    if os.environ.get("HAVEN_BENCH_POSTGRES") or os.environ.get("HAVEN_TEST_POSTGRES"):
        expected |= {("webhook", "postgres"), ("webhook_open", "postgres"), ("queue", "postgres")}
    else:
        assert "postgres" in report["skipped"]
    assert {(f["name"], f["backend"]) for f in report["figures"]} == expected
    for meta in ("date", "commit", "cpu", "load", "mode"):
        assert report["meta"][meta], meta
    for figure in report["figures"]:
        for side in ("subject", "baseline"):
            summary = figure[side]
            if figure["name"] == "burst_alarm" and side == "subject" and summary["n"] == 0:
                continue  # every danger texter was taken before alarm_after: no alarm due
            assert summary["n"] > 0 and summary["errors"] == 0, figure
            assert 0 <= summary["p50_us"] <= summary["p99_us"] <= summary["max_us"], figure
            assert summary["mean_us"] >= 0 and summary["per_second"] > 0, figure
        if figure["ratio"]["mean"] is not None:
            assert figure["ratio"]["mean"] == pytest.approx(
                figure["subject"]["mean_us"] / figure["baseline"]["mean_us"], rel=1e-2
            )
        assert all(isinstance(c["passed"], bool) for c in figure["checks"])
    by_name = {(f["name"], f["backend"]): f for f in report["figures"]}
    for key, figure in by_name.items():
        if key[0] == "webhook":
            assert figure["ratio"]["rate"] == pytest.approx(
                figure["subject"]["per_second"] / figure["baseline"]["per_second"], rel=1e-2
            )
            assert check(figure, "every acknowledged message stored once after kill -9")
    assert check(by_name[("fanout", "sqlite")], "reached every client")
    assert check(by_name[("burst_take_next", "sqlite")], "0 priority inversions")
    assert "server_rss_mb" in by_name[("scale_queue", "sqlite")]["notes"]
    checks = [c["passed"] for f in report["figures"] for c in f["checks"]]
    assert (done.returncode == 0) == all(checks)


def test_quick_run_prints_a_table_with_ratios_and_the_triage_verdict() -> None:
    """Without --json the output is a readable table: a ratio line per figure and a PASS
    or FAIL against the triage target; --only keeps to the figures named."""
    done = run_benchmarks("--only", "triage", "--only", "queue", "--no-postgres")
    assert done.returncode in (0, 1), done.stderr
    out = done.stdout
    assert out.startswith("Haven benchmarks")
    assert out.count("ratio subject/baseline") == 2
    assert ("PASS: average under 1 ms" in out) != ("FAIL: average under 1 ms" in out)
    assert "webhook" not in out


def test_percentile_is_nearest_rank() -> None:
    """p50 and p99 are actual observations (nearest rank), and bad input is refused."""
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_durability_counts_acknowledged_but_missing_and_doubled() -> None:
    """The kill -9 check finds an acknowledged message that is not stored and one stored
    twice (so a server that loses or doubles messages fails it)."""
    assert durability(["a", "b"], ["a", "b", "c"]) == (0, 0)
    assert durability(["a", "b"], ["a"]) == (1, 0)
    assert durability(["a"], ["a", "a"]) == (0, 1)


def test_inversions_counts_a_lower_priority_handed_out_while_a_higher_one_waited() -> None:
    """A take answered with priority 3 while a priority-1 texter, acknowledged before the
    take was sent, is taken only later, is an inversion; the same texter taken by a take
    running at the same time, or acknowledged only after the take was sent, is not."""
    p1 = Texter(index=0, priority=1, queued_ack_ns=100, conversation_id=1)
    p3 = Texter(index=1, priority=3, queued_ack_ns=50, conversation_id=2)
    priority = {1: 1, 2: 3}
    # Take of the P3 at 200..300 while the P1 (acked at 100) is taken only at 400.
    late = [Take(200, 300, 2), Take(400, 500, 1)]
    assert inversions(late, [p1, p3], priority) == 1
    # The P1 is taken by a take that started while this one ran: not an inversion.
    concurrent = [Take(200, 300, 2), Take(250, 320, 1)]
    assert inversions(concurrent, [p1, p3], priority) == 0
    # The P1 was acknowledged only after the take was sent.
    after = Texter(index=0, priority=1, queued_ack_ns=250, conversation_id=1)
    assert inversions(late, [after, p3], priority) == 0
    # Priority order kept.
    assert inversions([Take(200, 300, 1), Take(400, 500, 2)], [p1, p3], priority) == 0


async def test_open_loop_charges_waiting_from_the_due_time() -> None:
    """No coordinated omission: a server that takes 50 ms per request, behind one
    connection, offered 100 requests/s, makes later requests wait; their latency is
    counted from when they were due, so it grows far past the 50 ms service time."""

    async def slow(request: web.Request) -> web.Response:
        await request.post()
        await asyncio.sleep(0.05)
        return web.Response(text="<Response/>", content_type="text/xml")

    app = web.Application()
    app.router.add_post("/twilio/sms", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        inbound = loadgen.Inbound(5, ["hi"], run="T")
        requests = inbound.take(20, [port])
        began = time.perf_counter()
        run = await loadgen.open_loop([port], requests, 100.0, 1, drain_s=5.0)
        assert time.perf_counter() - began >= 20 * 0.05
    finally:
        await runner.cleanup()
    assert run.errors == 0 and len(run.acked) == 20
    latencies_ms = sorted(ns / 1e6 for ns in run.latencies_ns)
    # Request 19 is due at 190 ms and answered near 1,000 ms: about 800 ms late.
    assert latencies_ms[-1] > 500
    assert latencies_ms[0] >= 45

"""The benchmark entry point runs end to end with tiny counts and reports every figure beside
its baseline. No timing is asserted: speed is what the benchmarks print, not what tests
judge."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import percentile

REPO = Path(__file__).resolve().parent.parent


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    # A separate process: the benchmark configures logging process-wide.
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_quick_run_reports_each_figure_beside_its_baseline_as_json() -> None:
    """`python -m benchmarks --quick --json` measures triage, the webhook and the queue
    (on PostgreSQL too when one is configured), each with a baseline, absolutes, a ratio,
    and the triage target as a pass/fail; nothing fails to run."""
    done = run_benchmarks("--json")
    assert done.returncode in (0, 1), done.stderr  # 1 only means a target was missed
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["failed"] == {}, report["failed"]
    expected = {("triage", ""), ("webhook", "sqlite"), ("queue", "sqlite")}
    if os.environ.get("HAVEN_BENCH_POSTGRES") or os.environ.get("HAVEN_TEST_POSTGRES"):
        expected |= {("webhook", "postgres"), ("queue", "postgres")}
    else:
        assert "postgres" in report["skipped"]
    assert {(f["name"], f["backend"]) for f in report["figures"]} == expected
    for figure in report["figures"]:
        for side in ("subject", "baseline"):
            summary = figure[side]
            assert summary["n"] > 0 and summary["errors"] == 0, figure
            assert 0 < summary["p50_us"] <= summary["p99_us"] <= summary["max_us"], figure
            assert summary["mean_us"] > 0 and summary["per_second"] > 0, figure
        assert figure["ratio"]["mean"] == pytest.approx(
            figure["subject"]["mean_us"] / figure["baseline"]["mean_us"], rel=1e-2
        )
    triage = next(f for f in report["figures"] if f["name"] == "triage")
    assert isinstance(triage["check"]["passed"], bool)
    assert (done.returncode == 0) == triage["check"]["passed"]


def test_quick_run_prints_a_table_with_ratios_and_the_triage_verdict() -> None:
    """Without --json the output is a readable table: a ratio line per figure and a PASS
    or FAIL against the triage target."""
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

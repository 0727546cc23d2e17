"""Figures, their summaries, and the two ways they are printed (a table and JSON).

Every figure is a subject measured beside a baseline in the same run (DESIGN.md section 9);
the ratio is subject / baseline, so it stays meaningful on a faster or slower machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (no interpolation: p99 of a small
    sample is its largest value, which is the honest answer)."""
    if not sorted_values:
        return math.nan
    if not 0 < pct <= 100:
        raise ValueError(f"pct must be in (0, 100], got {pct}")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return float(sorted_values[max(0, min(len(sorted_values), rank) - 1)])


@dataclass(frozen=True)
class Summary:
    label: str
    n: int
    mean_us: float
    p50_us: float
    p95_us: float
    p99_us: float
    max_us: float
    per_second: float  # operations completed per second of wall time
    errors: int = 0


def summarise(
    label: str, durations_ns: Sequence[int], wall_s: float | None = None, errors: int = 0
) -> Summary:
    """Summary of per-operation durations. Without wall_s the operations ran one after
    another, so the rate is 1 / mean; with it (concurrent load) the rate is n / wall."""
    values = sorted(d / 1000 for d in durations_ns)
    n = len(values)
    mean = sum(values) / n if n else math.nan
    if wall_s is not None:
        rate = n / wall_s if wall_s > 0 else math.nan
    else:
        rate = 1e6 / mean if n and mean > 0 else math.nan
    return Summary(
        label=label,
        n=n,
        mean_us=mean,
        p50_us=percentile(values, 50),
        p95_us=percentile(values, 95),
        p99_us=percentile(values, 99),
        max_us=values[-1] if values else math.nan,
        per_second=rate,
        errors=errors,
    )


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) and not math.isnan(b) else math.nan


@dataclass(frozen=True)
class Check:
    """A target from an issue, e.g. triage under 1 ms on average."""

    description: str
    passed: bool


@dataclass
class Figure:
    name: str  # e.g. "triage", "webhook", "queue"
    backend: str  # "sqlite" | "postgres" | "" (no database)
    detail: str  # what was run, in words
    subject: Summary
    baseline: Summary
    check: Check | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    # Further targets beside `check` (a figure can carry a floor and a correctness check).
    more_checks: list[Check] = field(default_factory=list)
    # What the ratio line leads with: "latency" (mean and p99) or "rate" (requests/s).
    headline: str = "latency"

    @property
    def checks(self) -> list[Check]:
        return ([self.check] if self.check else []) + self.more_checks

    @property
    def ratio_rate(self) -> float:
        return ratio(self.subject.per_second, self.baseline.per_second)

    @property
    def ratio_mean(self) -> float:
        return ratio(self.subject.mean_us, self.baseline.mean_us)

    @property
    def ratio_p99(self) -> float:
        return ratio(self.subject.p99_us, self.baseline.p99_us)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "detail": self.detail,
            "subject": _clean(asdict(self.subject)),
            "baseline": _clean(asdict(self.baseline)),
            "ratio": {
                "mean": _sig(self.ratio_mean),
                "p99": _sig(self.ratio_p99),
                "rate": _sig(self.ratio_rate),
            },
            "check": asdict(self.check) if self.check else None,
            "checks": [asdict(c) for c in self.checks],
            "notes": self.notes,
        }


@dataclass
class Report:
    meta: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    # Figures that could not be measured, by name, with the reason (never silently absent).
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "figures": [f.as_json() for f in self.figures],
            "skipped": self.skipped,
            "failed": self.failed,
        }


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


def _sig(x: float) -> float | None:
    """Four significant digits (a ratio of 0.0324 keeps its 4)."""
    return None if math.isnan(x) else float(f"{x:.4g}")


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _num(v) if isinstance(v, float) else v for k, v in d.items()}


def fmt_time(us: float) -> str:
    if math.isnan(us):
        return "-"
    if us < 1:
        return f"{us * 1000:.0f} ns"
    if us < 1000:
        return f"{us:.1f} us"
    if us < 1_000_000:
        return f"{us / 1000:.2f} ms"
    return f"{us / 1e6:.2f} s"


def fmt_ratio(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.2f}x" if x < 100 else f"{x:,.0f}x"


def fmt_pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:.1f} %"


def fmt_rate(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:,.0f}/s" if x >= 100 else f"{x:.1f}/s"


COLUMNS = ("", "n", "mean", "p50", "p95", "p99", "max", "rate", "errors")


def render_table(report: Report) -> str:
    lines: list[str] = []
    meta = ", ".join(f"{k} {v}" for k, v in report.meta.items())
    lines.append(f"Haven benchmarks ({meta})")
    for fig in report.figures:
        title = f"{fig.name} [{fig.backend}]" if fig.backend else fig.name
        lines.append("")
        lines.append(f"{title}: {fig.detail}")
        rows = [COLUMNS]
        for tag, s in (("subject", fig.subject), ("baseline", fig.baseline)):
            rows.append(
                (
                    f"{tag}: {s.label}",
                    str(s.n),
                    fmt_time(s.mean_us),
                    fmt_time(s.p50_us),
                    fmt_time(s.p95_us),
                    fmt_time(s.p99_us),
                    fmt_time(s.max_us),
                    fmt_rate(s.per_second),
                    str(s.errors),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        for r in rows:
            cells = [r[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
            ]
            lines.append("  " + "  ".join(cells).rstrip())
        summary = (
            f"  ratio subject/baseline: mean {fmt_ratio(fig.ratio_mean)},"
            f" p99 {fmt_ratio(fig.ratio_p99)}"
        )
        if fig.headline == "rate":
            summary = (
                f"  ratio subject/baseline: rate {fmt_pct(fig.ratio_rate)}"
                f" ({fmt_rate(fig.subject.per_second)} / {fmt_rate(fig.baseline.per_second)}),"
                f" mean {fmt_ratio(fig.ratio_mean)}, p99 {fmt_ratio(fig.ratio_p99)}"
            )
        checks = fig.checks
        if checks:
            verdict = "PASS" if checks[0].passed else "FAIL"
            summary += f"   {verdict}: {checks[0].description}"
        lines.append(summary)
        for extra in checks[1:]:
            lines.append(f"  {'PASS' if extra.passed else 'FAIL'}: {extra.description}")
        for key, value in fig.notes.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            lines.append(f"  {key.replace('_', ' ')}: {shown}")
    for name, why in report.skipped.items():
        lines.append("")
        lines.append(f"{name}: skipped ({why})")
    for name, why in report.failed.items():
        lines.append("")
        lines.append(f"{name}: FAILED ({why})")
    return "\n".join(lines)

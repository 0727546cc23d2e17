"""Prometheus metrics (prometheus-client). Counts and timings only: no content, no numbers."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

MESSAGES_IN = Counter("haven_messages_in_total", "Inbound texts handled")
MESSAGES_OUT = Counter("haven_messages_out_total", "Outbound texts by kind", ["kind"])
WEBHOOK_DUPLICATES = Counter(
    "haven_webhook_duplicates_total", "Inbound webhooks answered from a stored reply"
)
WEBHOOK_REJECTED = Counter("haven_webhook_rejected_total", "Webhooks refused", ["reason"])
TRIAGE_LABELS = Counter("haven_triage_labels_total", "Triage labels seen on inbound", ["label"])
INBOUND_SECONDS = Histogram(
    "haven_inbound_seconds",
    "Time to handle one inbound text, lock to answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
OUTBOUND_RESULTS = Counter("haven_outbound_results_total", "Outbox send results", ["result"])


def count_labels(labels: Iterable[str]) -> None:
    for label in labels:
        TRIAGE_LABELS.labels(label).inc()

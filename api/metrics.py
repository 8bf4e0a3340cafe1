"""Prometheus metrics of the front (prometheus-client), one registry per app.

With ``serve --workers N`` the front processes share one port, so a scrape reaches any one of
them: ``PROMETHEUS_MULTIPROC_DIR`` is then set (by ``serve``) and every process writes its
samples there (prometheus-client's multiprocess mode); :meth:`FrontMetrics.exposition` merges
them, so one scrape covers the port.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

__all__ = ["FrontMetrics"]


class FrontMetrics:
    """Counters and latency histogram exposed at ``GET /metrics``."""

    def __init__(self, multiprocess_mode: bool = False) -> None:
        self.multiprocess_mode = multiprocess_mode
        self.registry = CollectorRegistry()
        self.checks = Counter("riskactors_order_checks_total", "Order checks by decision", ["decision"],
                              registry=self.registry)
        self.reasons = Counter("riskactors_reject_reasons_total", "Reject reasons by code", ["code"],
                               registry=self.registry)
        self.check_seconds = Histogram("riskactors_order_check_seconds", "Order check latency in the front",
                                       buckets=(.0005, .001, .002, .003, .005, .0075, .01, .02, .05, .1, .5, 1),
                                       registry=self.registry)
        self.breaches = Counter("riskactors_breaches_total", "Hard-rule breaches", ["code"], registry=self.registry)
        self.unavailable = Counter("riskactors_unavailable_total", "Calls failed closed (host unavailable)",
                                   registry=self.registry)
        self.idempotent_replays = Counter("riskactors_idempotent_replays_total",
                                          "Repeats answered from a stored Idempotency-Key response",
                                          registry=self.registry)
        self.idempotency_conflicts = Counter("riskactors_idempotency_conflicts_total",
                                             "Idempotency-Key reused with another request (409)",
                                             registry=self.registry)
        self.marks_applied = Counter("riskactors_marks_applied_total", "Marks applied (newest of their instrument)",
                                     registry=self.registry)
        self.marks_stale = Counter("riskactors_marks_stale_total",
                                   "Marks ignored: older than the last mark applied for the instrument",
                                   registry=self.registry)

    def exposition(self) -> bytes:
        """The text exposition: this process's registry, or every front process's samples in
        multiprocess mode."""
        if self.multiprocess_mode:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)

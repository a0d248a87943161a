"""Every Prometheus metric mmsq exports, in one place, on its own CollectorRegistry.

One ``Metrics`` object is built by the composition root and handed to whatever updates it:
the job runner, the inbox and delivery-report intake, and (as they arrive) the SMPP adapter,
the outbox and the dispatcher. Nothing registers on prometheus-client's global registry, so
two daemons (or two tests) in one process never collide. Only in-memory metric objects are
used here; ``/metrics`` renders them in the HTTP adapter.

Alerting hints are in README.md, "Operations".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "OutreachPrometheus"]

_JOB_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
_BIND_STATES = ("stopped", "connecting", "bound", "throttled", "backoff", "disconnected", "failed")
_LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


class Metrics:
    """The metric objects, grouped by who updates them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        # -- jobs (JobRunner) ------------------------------------------------------------
        self.job_runs = Counter(
            "mmsq_job_runs", "Job runs by outcome (ok, failed)", ["job", "outcome"], registry=r
        )
        self.job_failures = Counter(
            "mmsq_job_failures", "Job runs that raised", ["job"], registry=r
        )
        self.job_duration = Histogram(
            "mmsq_job_duration_seconds",
            "Wall time of each job run",
            ["job"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self.job_last_success = Gauge(
            "mmsq_job_last_success_timestamp_seconds",
            "Unix time of each job's last successful run",
            ["job"],
            registry=r,
        )
        self.scheduler_running = Gauge(
            "mmsq_scheduler_running", "1 while the job scheduler runs", registry=r
        )

        # -- ingest (inbox job, delivery-report endpoint) ---------------------------------
        self.ingest_records = Counter(
            "mmsq_ingest_records",
            "Records read and classified, by source (cdr, mm7)",
            ["source"],
            registry=r,
        )
        self.ingest_stored = Counter(
            "mmsq_ingest_stored", "Events stored (new), by source", ["source"], registry=r
        )
        self.ingest_duplicates = Counter(
            "mmsq_ingest_duplicates",
            "Records already stored before (idempotent re-delivery), by source",
            ["source"],
            registry=r,
        )
        self.ingest_quarantined = Counter(
            "mmsq_ingest_quarantined",
            "Records quarantined (unreadable), by source",
            ["source"],
            registry=r,
        )
        self.inbox_files = Counter(
            "mmsq_inbox_files",
            "CDR files processed, by outcome (done, failed)",
            ["outcome"],
            registry=r,
        )
        self.inbox_backlog = Gauge(
            "mmsq_inbox_backlog_files",
            "CDR files waiting in the inbox at the last poll (ready or still settling)",
            registry=r,
        )
        self.delivery_reports = Counter(
            "mmsq_delivery_reports_received",
            "MM7 DeliveryReportReq received, by outcome "
            "(stored, duplicate, quarantined, malformed, error)",
            ["outcome"],
            registry=r,
        )
        self.retention_purged = Counter(
            "mmsq_retention_purged_events", "Raw events deleted past retention", registry=r
        )

        # -- outbound messaging (SMPP adapter, outbox, dispatcher) -----------------------
        self.queue_depth = Gauge(
            "mmsq_queue_depth",
            "Messages waiting, by queue (outbox, retry, ...)",
            ["queue"],
            registry=r,
        )
        self.messages_sent = Counter(
            "mmsq_messages_sent",
            "Messages handed to a peer, by channel (sms, ota, mms) and kind; rate() is the "
            "send rate",
            ["channel", "kind"],
            registry=r,
        )
        self.sms_segments_sent = Counter(
            "mmsq_sms_segments_sent",
            "SMS segments submitted (what the SMSC's throughput limit counts), by bind",
            ["bind"],
            registry=r,
        )
        self.throttling_events = Counter(
            "mmsq_throttling_events",
            "Throttling answers from a peer (SMPP 0x58, MM7 4006), by peer",
            ["peer"],
            registry=r,
        )
        self.receipt_lag = Histogram(
            "mmsq_receipt_lag_seconds",
            "Time from submit to its delivery receipt, by channel",
            ["channel"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.receipts_unmatched = Counter(
            "mmsq_receipts_unmatched",
            "Delivery receipts that match no sent message, by channel",
            ["channel"],
            registry=r,
        )

    def declare_job(self, job: str) -> None:
        """Export a job's series at zero before its first run, so rate() and alerts see it."""
        for outcome in ("ok", "failed"):
            self.job_runs.labels(job=job, outcome=outcome)
        self.job_failures.labels(job=job)
        self.job_duration.labels(job=job)

    def job_finished(self, job: str, duration_s: float, *, ok: bool, at: float = 0.0) -> None:
        self.job_runs.labels(job=job, outcome="ok" if ok else "failed").inc()
        self.job_duration.labels(job=job).observe(duration_s)
        if ok:
            self.job_last_success.labels(job=job).set(at)
        else:
            self.job_failures.labels(job=job).inc()

    def ingested(
        self, source: str, *, records: int, stored: int, duplicates: int, quarantined: int
    ) -> None:
        self.ingest_records.labels(source=source).inc(records)
        self.ingest_stored.labels(source=source).inc(stored)
        self.ingest_duplicates.labels(source=source).inc(duplicates)
        self.ingest_quarantined.labels(source=source).inc(quarantined)


class OutreachPrometheus:
    """The outreach dispatcher's metrics (``mmsq.outbox.OutreachMetrics``) on the daemon's
    Prometheus series: queue depth, segments and messages sent, throttling, receipt lag,
    unmatched receipts; the bind state as a one-hot gauge."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self.bind_states = Gauge(
            "mmsq_smpp_bind_state",
            "SMPP bind state (1 for the current state of each bind)",
            ["bind", "state"],
            registry=metrics.registry,
        )
        self.submit_results = Counter(
            "mmsq_sms_submit_results",
            "submit_sm answers: accepted, retry, or the cause class of a permanent error",
            ["outcome"],
            registry=metrics.registry,
        )

    def queue_depth(self, planned: int, in_flight: int) -> None:
        self._m.queue_depth.labels(queue="sms_planned").set(planned)
        self._m.queue_depth.labels(queue="sms_in_flight").set(in_flight)

    def submitted(self, segments: int) -> None:
        self._m.sms_segments_sent.labels(bind="smpp").inc(segments)

    def submit_result(self, outcome: str) -> None:
        self.submit_results.labels(outcome=outcome).inc()
        if outcome == "accepted":
            self._m.messages_sent.labels(channel="sms", kind="segment").inc()

    def throttled(self, bind: str) -> None:
        self._m.throttling_events.labels(peer=f"smpp:{bind}").inc()

    def receipt(self, stat: str, lag_s: float | None) -> None:
        if lag_s is not None:
            self._m.receipt_lag.labels(channel="sms").observe(lag_s)

    def unmatched_receipt(self, count: int = 1) -> None:
        self._m.receipts_unmatched.labels(channel="sms").inc(count)

    def bind_state(self, bind: str, state: str) -> None:
        for s in (
            "stopped",
            "connecting",
            "bound",
            "throttled",
            "backoff",
            "disconnected",
            "failed",
        ):
            self.bind_states.labels(bind=bind, state=s).set(1 if s == state else 0)

"""The outreach dispatcher's metrics land on the daemon's Prometheus registry."""

from __future__ import annotations

from prometheus_client import generate_latest

from mmsq.metrics import Metrics, OutreachPrometheus


def test_outreach_metrics_are_exported() -> None:
    metrics = Metrics()
    m = OutreachPrometheus(metrics)
    m.queue_depth(planned=7, in_flight=3)
    m.submitted(4)
    m.submit_result("accepted")
    m.throttled("mmsq:transceiver")
    m.receipt("DELIVRD", 12.5)
    m.unmatched_receipt(2)
    m.bind_state("mmsq:transceiver", "bound")
    text = generate_latest(metrics.registry).decode()
    assert 'mmsq_queue_depth{queue="sms_planned"} 7.0' in text
    assert 'mmsq_sms_segments_sent_total{bind="smpp"} 4.0' in text
    assert 'mmsq_throttling_events_total{peer="smpp:mmsq:transceiver"} 1.0' in text
    assert 'mmsq_receipts_unmatched_total{channel="sms"} 2.0' in text
    assert 'mmsq_receipt_lag_seconds_count{channel="sms"} 1.0' in text
    assert 'mmsq_smpp_bind_state{bind="mmsq:transceiver",state="bound"} 1.0' in text
    assert 'mmsq_smpp_bind_state{bind="mmsq:transceiver",state="stopped"} 0.0' in text

"""The SQL report source and the report figures against a hand-counted dataset, on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.adapters.sql_report import SqlReportSource
from mmsq.adapters.sql_store import SqlStore
from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
from mmsq.adapters.sql_subscriptions_schema import subscriptions
from mmsq.recovery import STATE_COLUMNS, RecoveryService
from mmsq.report_data import ComplaintCounts, NotAvailable, RecoveryCounts, ReportWeek
from mmsq.report_devices import load_device_table
from mmsq.report_figures import build_weekly_report
from mmsq.scoring_rules import load_scoring_rules
from mmsq.subscription_ports import ReconcileRun
from tests.report_dataset import (
    DEVICES_CSV,
    HOLDOUT_LOG,
    insert_complaints_and_holdout,
    insert_dataset,
)

W47 = ReportWeek(2026, 47)
S, E = W47.start, W47.end
NOW = datetime(2026, 11, 23, 1, tzinfo=UTC)


@pytest.fixture
def source(db_url: str) -> Iterator[SqlReportSource]:
    store = SqlStore.from_url(db_url)
    store.upgrade()
    insert_dataset(store)
    yield SqlReportSource(store, timezone="Asia/Shanghai")
    store.close()


def test_edition_days_counts_attempts_final_and_delivered(source: SqlReportSource) -> None:
    rows = {
        (str(r.day), r.edition): (r.attempts, r.final, r.delivered)
        for r in source.edition_days(S, E).itertuples()
    }
    assert rows == {
        ("2026-11-16", "ed-1116-am"): (5, 5, 3),
        ("2026-11-16", "ed-1116-pm"): (3, 2, 1),
        ("2026-11-17", "ed-1117-am"): (2, 0, 0),
        ("2026-11-18", "ed-1118-am"): (3, 3, 2),
    }


def test_latency_percentiles_interpolate_like_percentile_cont(source: SqlReportSource) -> None:
    got = {
        r.edition: (r.delivered, r.p50_s, r.p90_s, r.p99_s)
        for r in source.latency(S, E).itertuples()
    }
    # ed-1116-am: 60, 120, 300 -> p50 = 120; p90 = 120 + 0.8 * 180; p99 = 120 + 0.98 * 180
    # ed-1118-am: 10, 7200 -> 10 + p * 7190. No delivered latency for ed-1117-am.
    assert set(got) == {"ed-1116-am", "ed-1116-pm", "ed-1118-am"}
    assert got["ed-1116-am"] == pytest.approx((3, 120.0, 264.0, 296.4))
    assert got["ed-1116-pm"] == pytest.approx((1, 30.0, 30.0, 30.0))
    assert got["ed-1118-am"] == pytest.approx((2, 3605.0, 6481.0, 7128.1))


def test_regions_devices_causes_and_unknown_codes(source: SqlReportSource) -> None:
    regions = {
        r.region: (r.attempts, r.final, r.delivered) for r in source.by_region(S, E).itertuples()
    }
    assert regions == {"Hefei": (7, 5, 3), "Wuhu": (3, 2, 1), None: (3, 3, 2)}
    devices = {
        r.tac: (r.subscribers, r.attempts, r.final, r.delivered)
        for r in source.by_device(S, E).itertuples()
    }
    assert devices == {
        "35332510": (2, 6, 5, 3),  # A and E
        "35391805": (1, 3, 1, 1),  # B
        "99999999": (1, 2, 2, 0),  # C
        None: (1, 2, 2, 2),  # D, no IMEI
    }
    causes = {
        r.cause: (r.attempts, r.final, r.subscribers) for r in source.by_cause(S, E).itertuples()
    }
    assert causes == {
        "delivered": (6, 6, 3),
        "pending": (3, 0, 0),
        "not_fetched": (1, 1, 1),
        "unreachable": (1, 1, 1),
        "terminal_capacity": (1, 1, 1),
        "unknown": (1, 1, 1),
    }
    unknown = [
        (r.namespace, r.code, r.events, r.total) for r in source.unknown_codes(S, E).itertuples()
    ]
    assert unknown == [("cmpp", "ZZ:1", 1, 5)]


def test_weekly_figures_from_the_database(source: SqlReportSource) -> None:
    report = build_weekly_report(
        source, W47, devices=load_device_table(DEVICES_CSV), now=NOW, p90_limit_s=3600
    )
    t = report.totals
    assert (t.attempts, t.final, t.delivered) == (13, 10, 6)
    assert t.rate.text == "60.0%"
    assert t.previous is not None
    assert t.previous.text == "66.7%"  # W46: 2 delivered of 3 final
    assert report.headlines[0].change == "-6.7 pp"
    days = {
        d.key: (d.rate.text, d.previous.text if d.previous else None, d.change_pp)
        for d in report.days
    }
    assert days["2026-11-16"][:2] == ("57.1%", "50.0%")
    assert days["2026-11-16"][2] == pytest.approx(100 * (4 / 7 - 0.5))
    assert days["2026-11-17"] == ("n/a", "100.0%", None)  # no final outcome: no rate, no change
    assert days["2026-11-22"] == ("n/a", "n/a", None)
    editions = {e.edition: e for e in report.editions}
    assert editions["ed-1117-am"].outcome.rate.text == "n/a"
    assert editions["ed-1117-am"].latency.p90_s is None
    assert [e.edition for e in report.editions if e.slow] == ["ed-1118-am"]
    assert any("ed-1118-am" in w and "p90" in w for w in report.warnings)
    regions = {g.key: (g.rate.text, g.change_pp) for g in report.regions}
    assert regions["Hefei"] == ("60.0%", pytest.approx(10.0))
    assert regions["Wuhu"] == ("50.0%", pytest.approx(-50.0))
    assert regions["(none)"] == ("66.7%", None)
    assert report.subscribers == 5
    assert report.device_match.text == "60.0%"  # A, B, E of 5
    assert report.imei_seen.text == "80.0%"  # all but D
    assert [(m.brand, m.model, m.outcome.failed) for m in report.models][:2] == [
        ("unknown", "unknown", 2),  # C and D: 4 final, 2 delivered (50%)
        ("Nokia", "6300", 2),  # A and E: 5 final, 3 delivered (60%)
    ]
    assert report.tacs[0].tac == "99999999"
    shares = {c.cause: c.share_of_failures.text for c in report.causes if c.share_of_failures}
    assert shares == {
        "not_fetched": "25.0%",
        "unreachable": "25.0%",
        "terminal_capacity": "25.0%",
        "unknown": "25.0%",
        "pending": "0.0%",
    }
    assert [(u.code, u.events, u.new) for u in report.unknown_codes] == [("ZZ:1", 1, True)]


def test_week_without_data_has_no_rates_and_no_errors(source: SqlReportSource) -> None:
    week = ReportWeek(2026, 50)
    report = build_weekly_report(source, week, devices=load_device_table(None), now=NOW)
    assert not report.has_data
    assert report.totals.rate.text == "n/a"
    assert report.headlines[0].change == "n/a"
    assert report.editions == ()
    assert report.regions == ()
    assert report.causes == ()
    assert report.device_match.text == "n/a"
    assert all(d.rate.value is None for d in report.days)
    assert report.warnings[0].startswith("No delivery events")


def test_without_recovery_wiring_the_cycle_is_not_available(source: SqlReportSource) -> None:
    week = (date(2026, 11, 16), date(2026, 11, 23))
    for method in (source.complaints, source.recovery, source.funnel):
        assert isinstance(method(*week), NotAvailable)
    recon = source.reconciliation(*week)
    assert not isinstance(recon, NotAvailable)
    assert recon.empty  # no runs recorded
    report = build_weekly_report(source, W47, devices=load_device_table(None), now=NOW)
    assert set(report.not_available) == {"complaints", "recovery", "funnel"}
    assert report.reconciliation == ()
    assert [h.value for h in report.headlines[1:]] == ["n/a"] * 4
    assert report.device_match.text == "0.0%"  # no device table: every handset unknown


# Recovery log, local days (UTC+8). P1 suspended since W46, probed and resumed in W47;
# P2 flagged, remedied and recovered in W47; P3 flagged then suspended in W47; P4 flagged in
# W47; P5 suspended and resumed in early November (never under suspension in W46 or W47).
_LOG = [
    ("+8613700000001", "2026-11-10T09:00", "active", "flagged", "verdict", "terminal"),
    ("+8613700000001", "2026-11-12T09:00", "flagged", "suspended", "suspend_threshold_reached", ""),
    ("+8613700000001", "2026-11-17T09:00", "suspended", "probing", "probe_sent", "probe 1"),
    ("+8613700000001", "2026-11-18T09:00", "probing", "resumed", "probe_delivered", "probe"),
    ("+8613700000002", "2026-11-16T00:30", "active", "flagged", "verdict", "terminal"),
    ("+8613700000002", "2026-11-16T10:00", "flagged", "remedied", "remedy_sent", "help_sms"),
    ("+8613700000002", "2026-11-19T10:00", "remedied", "recovered", "delivered", "remedy"),
    ("+8613700000003", "2026-11-17T09:00", "active", "flagged", "verdict", "terminal"),
    ("+8613700000003", "2026-11-20T09:00", "flagged", "suspended", "suspend_threshold_reached", ""),
    ("+8613700000004", "2026-11-17T09:00", "active", "flagged", "verdict", "terminal"),
    # Sunday 22 Nov 23:30 local is still W47; Monday 00:30 local is W48.
    ("+8613700000004", "2026-11-23T00:30", "flagged", "remedied", "remedy_sent", "ota"),
    ("+8613700000005", "2026-11-01T09:00", "active", "flagged", "verdict", "terminal"),
    ("+8613700000005", "2026-11-02T09:00", "flagged", "suspended", "suspend_threshold_reached", ""),
    ("+8613700000005", "2026-11-05T09:00", "suspended", "resumed", "delivered", "self"),
]


@pytest.fixture
def wired(db_url: str) -> Iterator[SqlReportSource]:
    store = SqlStore.from_url(db_url)
    store.upgrade()
    insert_dataset(store)
    insert_complaints_and_holdout(store)
    recovery_store = SqlRecoveryStore(store.engine)
    tz = "Asia/Shanghai"
    local = ZoneInfo(tz)
    log = pd.DataFrame(
        [
            {
                "msisdn": m,
                "at": pd.Timestamp(datetime.fromisoformat(at).replace(tzinfo=local)),
                "from_state": a,
                "to_state": b,
                "event": ev,
                "cause": cause,
                "evidence": "",
                "run_id": None,
            }
            for m, at, a, b, ev, cause in [*_LOG, *HOLDOUT_LOG]
        ]
    )
    recovery_store.apply_transitions(log, pd.DataFrame(columns=list(STATE_COLUMNS)))
    subscriptions = SqlSubscriptionStore(store.engine)
    for day, finished, counts in [
        # W47: two runs (Tue and Sun 23:00 local); W46: one run; W48: one run, not counted.
        (date(2026, 11, 17), datetime(2026, 11, 17, 2, tzinfo=UTC), {"a": 5, "b": 2}),
        (date(2026, 11, 22), datetime(2026, 11, 22, 15, tzinfo=UTC), {"a": 3, "b": None}),
        (date(2026, 11, 10), datetime(2026, 11, 10, 2, tzinfo=UTC), {"a": 7}),
        (date(2026, 11, 23), datetime(2026, 11, 22, 16, 30, tzinfo=UTC), {"a": 100}),
    ]:
        subscriptions.record_reconcile_run(
            ReconcileRun(f"run-{day}", day, finished - timedelta(minutes=5), finished, 10, counts)
        )
    rules = load_scoring_rules()
    service = RecoveryService(recovery_store, recovery_store, rules.recovery, FixedClock(), tz)
    yield SqlReportSource(store, recovery=service, timezone=tz)
    store.close()


class FixedClock:
    def now(self) -> datetime:
        return NOW


def test_recovery_funnel_and_reconciliation_from_their_stores(wired: SqlReportSource) -> None:
    week, before = (W47.start, W47.end), (W47.previous().start, W47.previous().end)
    assert wired.recovery(*week) == RecoveryCounts(
        under_suspension=2,
        newly_suspended=1,
        probed=1,
        recovered=1,  # P1, P3 / P3 / P1 / P1
    )
    assert wired.recovery(*before) == RecoveryCounts(
        under_suspension=1,
        newly_suspended=1,
        probed=0,
        recovered=0,  # P1
    )
    funnel = wired.funnel(*week)
    assert not isinstance(funnel, NotAvailable)
    # P2-P4, H1-H3, H5 / P2 / P2, H1
    assert (funnel.flagged, funnel.remedied, funnel.recovered) == (7, 1, 2)
    # Held out and flagged in W47: H1, H2, H5 (H3 only held out in W48); H1 recovered in
    # W47, H5 only in W48. W46: H4, not recovered.
    assert (funnel.holdout_flagged, funnel.holdout_recovered) == (3, 1)
    funnel_before = wired.funnel(*before)
    assert not isinstance(funnel_before, NotAvailable)
    assert (funnel_before.holdout_flagged, funnel_before.holdout_recovered) == (1, 0)
    recon = wired.reconciliation(*week)
    assert not isinstance(recon, NotAvailable)
    assert sorted(zip(recon["diff_class"], recon["count"], strict=True)) == [
        ("a", 3),
        ("a", 5),
        ("b", 2),
    ]
    report = build_weekly_report(wired, W47, devices=load_device_table(None), now=NOW)
    assert set(report.not_available) == set()
    assert [h.value for h in report.headlines[2:]] == ["1", "1", "50.0%"]
    assert not isinstance(report.reconciliation, NotAvailable)
    rows = {
        (r.diff_class, r.runs, r.total, r.latest, r.previous_total) for r in report.reconciliation
    }
    assert rows == {("a", 2, 8, 3, 7), ("b", 1, 2, 2, None)}
    assert not isinstance(report.funnel, NotAvailable)
    assert report.funnel.holdout is not None
    assert (report.funnel.holdout.num, report.funnel.holdout.den) == (1, 3)
    assert report.funnel.uplift_pp == pytest.approx(100 * (2 / 7 - 1 / 3))


def test_complaints_per_active_subscriber_or_per_delivered(wired: SqlReportSource) -> None:
    week, before = (W47.start, W47.end), (W47.previous().start, W47.previous().end)
    # Resends: A, B, C in W47 (C on Sunday 23:30 local), D in W46, E in W48. Active: A-D.
    assert wired.complaints(*week) == ComplaintCounts(3, 4, "active subscriptions")
    assert wired.complaints(*before) == ComplaintCounts(1, 4, "active subscriptions")
    report = build_weekly_report(wired, W47, devices=load_device_table(None), now=NOW)
    complaints = report.headlines[1]
    assert (complaints.value, complaints.change) == ("7500.0", "+5,000.0")
    assert "active subscriptions" in complaints.basis
    with wired.store.engine.begin() as conn:
        conn.execute(subscriptions.delete())
    # No subscription status known: subscribers with a delivery, W47 A, B, D; W46 A, C.
    basis = "subscribers with a delivery"
    assert wired.complaints(*week) == ComplaintCounts(3, 3, basis)
    assert wired.complaints(*before) == ComplaintCounts(1, 2, basis)

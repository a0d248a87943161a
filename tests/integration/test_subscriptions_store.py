"""Snapshot import, real-time events and reconciliation against SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from mmsq.adapters.reconcile_files import CsvDifferenceExport, SendListDropFolder
from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
from mmsq.adapters.subscription_csv import SnapshotFileReader
from mmsq.msisdn import MsisdnNormaliser
from mmsq.reconcile import ReconcileService
from mmsq.subscription_events import InvalidEventError, SubscriptionEventService
from mmsq.subscription_import import SnapshotImportService
from mmsq.subscriptions import (
    DifferenceClass,
    EventKind,
    EventOutcome,
    Source,
    SubscriptionEvent,
    SubscriptionStatus,
)

TZ = "Asia/Shanghai"
D22, D23 = date(2026, 11, 22), date(2026, 11, 23)

BOSS = """msisdn,product,status,since,channel
13800000001,daily,active,2025-03-01,sms
13800000002,daily,active,,
13800000003,daily,active,,
13800000004,daily,suspended,,
13800000005,daily,active,,web
"""
MISC = """msisdn,product,status
13800000001,daily,active
13800000002,daily,active
13800000003,daily,active
13800000004,daily,suspended
"""
PLATFORM = """msisdn,product,status
+8613800000001,daily,active
13800000003,evening,active
13800000004,daily,active
13800000007,daily,active
"""


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.t


@dataclass
class World:
    store: SqlSubscriptionStore
    imports: SnapshotImportService
    events: SubscriptionEventService
    clock: Clock
    tmp: Path

    def write(self, name: str, body: str) -> Path:
        path = self.tmp / name
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(body.encode()))
        else:
            path.write_text(body, encoding="utf-8")
        return path

    def load(self, source: Source, body: str, as_of: date = D22, name: str | None = None):  # type: ignore[no-untyped-def]
        path = self.write(name or f"{source.value}-{as_of}.csv", body)
        return self.imports.import_snapshot(source, [SnapshotFileReader(path)], as_of)

    def reconciler(self, **kw: object) -> ReconcileService:
        return ReconcileService(self.store, self.clock, TZ, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    store = SqlSubscriptionStore.from_url(db_url)
    store.upgrade()
    clock = Clock()
    normaliser = MsisdnNormaliser("CN")
    try:
        yield World(
            store,
            SnapshotImportService(store, normaliser, clock, TZ),
            SubscriptionEventService(store, normaliser, clock),
            clock,
            tmp_path,
        )
    finally:
        store.close()


def load_all(w: World, as_of: date = D22) -> None:
    w.load(Source.BOSS, BOSS, as_of)
    w.load(Source.MISC, MISC, as_of)
    w.load(Source.PLATFORM, PLATFORM, as_of)


def event(
    event_id: str, kind: EventKind, when: str, msisdn: str = "13800000009"
) -> SubscriptionEvent:
    return SubscriptionEvent(
        event_id=event_id,
        msisdn=msisdn,
        product="daily",
        kind=kind,
        event_time=datetime.fromisoformat(when),
        source=Source.MISC,
        channel="sms",
    )


# -- import ---------------------------------------------------------------------------------


def test_import_stores_each_source_with_its_snapshot_date(world: World) -> None:
    load_all(world)
    s = world.store.get("+8613800000001", "daily")
    assert s is not None
    assert s.status is SubscriptionStatus.ACTIVE
    assert s.state.channel == "sms"
    assert s.state.since_ts == int(datetime(2025, 3, 1, tzinfo=UTC).timestamp()) - 8 * 3600
    assert {k: (v.status, v.as_of) for k, v in s.sources.items()} == {
        Source.BOSS: (SubscriptionStatus.ACTIVE, D22),
        Source.MISC: (SubscriptionStatus.ACTIVE, D22),
        Source.PLATFORM: (SubscriptionStatus.ACTIVE, D22),
    }
    # Only billing sets mmsq's own status: a row only the platform holds has none.
    only_sent = world.store.get("+8613800000007", "daily")
    assert only_sent is not None
    assert only_sent.status is None
    assert world.store.latest_snapshots() == dict.fromkeys(Source, D22)


def test_bad_rows_are_quarantined_with_line_and_reason(world: World) -> None:
    body = (
        "msisdn,product,status,since\n"
        "13800000001,daily,active,\n"
        "12345,daily,active,\n"
        "13800000002,,active,\n"
        "13800000003,daily,paused,\n"
        "13800000004,daily,active,yesterday\n"
        "13800000005,daily\n"
        "13800000006,daily,ACTIVE,2026-01-01T08:00:00+08:00\n"
    )
    summary = world.load(Source.BOSS, body, name="boss.csv.gz")
    assert (summary.records, summary.quarantined) == (2, 5)
    rows = world.store.quarantine_rows(summary.batch_id)
    assert sorted((r["line"], r["reason"]) for r in rows) == [
        (3, "invalid MSISDN"),
        (4, "missing required field product"),
        (5, "unknown status (active, suspended, unsubscribed, cancelled)"),
        (6, "unparsable since (ISO 8601 date or time)"),
        (7, "wrong column count: 2 (header has 4)"),
    ]
    assert all(r["source"].endswith("boss.csv.gz") for r in rows)


def test_reimporting_a_snapshot_changes_nothing(world: World) -> None:
    load_all(world)
    before = world.store.source_states(dict.fromkeys(Source, D22))
    again = world.load(Source.BOSS, BOSS)
    after = world.store.source_states(dict.fromkeys(Source, D22))
    assert again.stored == 5
    pd.testing.assert_frame_equal(
        before.sort_values(["msisdn_num", "product"]).reset_index(drop=True),
        after.sort_values(["msisdn_num", "product"]).reset_index(drop=True),
    )


def test_an_older_snapshot_never_overwrites_a_newer_one(world: World) -> None:
    world.load(Source.PLATFORM, "msisdn,product,status\n13800000001,daily,suspended\n", D23)
    world.load(Source.PLATFORM, "msisdn,product,status\n13800000001,daily,active\n", D22)
    s = world.store.get("+8613800000001", "daily")
    assert s is not None
    assert s.sources[Source.PLATFORM].status is SubscriptionStatus.SUSPENDED
    assert world.store.latest_snapshots()[Source.PLATFORM] == D23


# -- events ---------------------------------------------------------------------------------


def test_same_event_twice_changes_nothing_and_says_duplicate(world: World) -> None:
    e = event("m-1", EventKind.SUBSCRIBE, "2026-11-23T09:00:00+08:00")
    first = world.events.apply_event(e)
    second = world.events.apply_event(e)
    assert (first.outcome, first.status) == (EventOutcome.APPLIED, SubscriptionStatus.ACTIVE)
    assert (second.outcome, second.status) == (EventOutcome.DUPLICATE, SubscriptionStatus.ACTIVE)
    assert [r["event_id"] for r in world.store.event_rows()] == ["m-1"]


def test_out_of_order_events_never_roll_the_state_back(world: World) -> None:
    apply = world.events.apply_event
    assert apply(event("1", EventKind.SUBSCRIBE, "2026-11-23T09:00:00+08:00")).outcome == "applied"
    assert apply(event("3", EventKind.SUSPEND, "2026-11-23T11:00:00+08:00")).outcome == "applied"
    late = apply(event("2", EventKind.UNSUBSCRIBE, "2026-11-23T10:00:00+08:00"))
    assert (late.outcome, late.status) == (EventOutcome.STALE, SubscriptionStatus.SUSPENDED)
    s = world.store.get("+8613800000009", "daily")
    assert s is not None
    assert s.status is SubscriptionStatus.SUSPENDED
    assert s.state.since_ts == int(datetime.fromisoformat("2026-11-23T11:00:00+08:00").timestamp())
    # Every event is kept, the stale one too, with its outcome.
    assert [(r["event_id"], r["outcome"]) for r in world.store.event_rows()] == [
        ("1", "applied"),
        ("3", "applied"),
        ("2", "stale"),
    ]


def test_billing_snapshot_does_not_undo_a_later_event_and_an_earlier_event_is_stale(
    world: World,
) -> None:
    unsub = event("u", EventKind.UNSUBSCRIBE, "2026-11-22T10:00:00+08:00", "13800000001")
    world.load(Source.BOSS, BOSS, D22)  # the state at 00:00 on the 22nd
    assert world.events.apply_event(unsub).outcome is EventOutcome.APPLIED
    world.load(Source.BOSS, BOSS, D22)  # re-import: older than the event, ignored
    s = world.store.get("+8613800000001", "daily")
    assert s is not None
    assert s.status is SubscriptionStatus.UNSUBSCRIBED
    world.load(Source.BOSS, BOSS, D23)  # the next night's extract says active again: it wins
    early = event("e", EventKind.SUSPEND, "2026-11-22T23:00:00+08:00", "13800000001")
    assert world.events.apply_event(early).outcome is EventOutcome.STALE
    s = world.store.get("+8613800000001", "daily")
    assert s is not None
    assert s.status is SubscriptionStatus.ACTIVE


def test_event_with_a_number_that_is_not_one_is_refused(world: World) -> None:
    with pytest.raises(InvalidEventError):
        world.events.apply_event(event("x", EventKind.SUBSCRIBE, "2026-11-23T09:00:00+08:00", "12"))
    assert world.store.event_rows() == []


# -- reconcile ------------------------------------------------------------------------------


def test_reconcile_classifies_exports_and_records_the_run(world: World) -> None:
    load_all(world)
    report = world.reconciler().reconcile(D23, CsvDifferenceExport(world.tmp / "out"))
    assert report.stale == []
    assert report.counts == {
        "billed_not_on_send_list": 2,
        "on_send_list_not_billed": 1,
        "status_mismatch": 1,
        "product_mismatch": 2,
        "missing_in_misc": 3,
    }
    assert report.repairs_proposed == {"add": 3, "remove": 2, "suspend": 1}
    billed = pd.read_csv(world.tmp / "out" / "billed_not_on_send_list.csv", dtype=str)
    assert sorted(billed["msisdn"]) == ["+8613800000002", "+8613800000005"]
    repairs = pd.read_csv(world.tmp / "out" / "platform_repairs.csv", dtype=str)
    assert set(repairs.columns) == {"action", "msisdn", "product", "class", "reason"}
    # Examples are masked; exports (for the teams who fix them) are not.
    shown = [e["msisdn"] for ex in report.examples.values() for e in ex]
    assert shown
    assert all("****" in m for m in shown)
    runs = world.store.reconcile_runs()
    assert [(r.as_of, r.counts) for r in runs] == [(D23, report.counts)]


def test_reconcile_rerun_is_idempotent(world: World) -> None:
    load_all(world)
    first = world.reconciler().reconcile(D23)
    second = world.reconciler().reconcile(D23)
    assert first.counts == second.counts
    assert len(world.store.reconcile_runs()) == 1


def test_a_source_missing_for_a_day_is_reported_stale_not_as_differences(world: World) -> None:
    load_all(world, D22)
    world.load(Source.BOSS, BOSS, D23)
    world.load(Source.MISC, MISC, D23)
    # No platform snapshot on the 23rd or 24th: on the 24th it is two days old.
    report = world.reconciler().reconcile(date(2026, 11, 24))
    assert report.stale == ["platform"]
    assert report.counts["billed_not_on_send_list"] is None
    assert report.counts["on_send_list_not_billed"] is None
    assert "platform" in report.skipped["billed_not_on_send_list"]
    assert report.counts["status_mismatch"] == 0  # BOSS and MISC agree
    assert report.repairs_proposed == {}
    # One day old is within the default allowance.
    assert world.reconciler().reconcile(D23).stale == []


def test_auto_repair_applies_enabled_classes_once_and_audits_them(world: World) -> None:
    load_all(world)
    drop = world.tmp / "platform-inbox"
    rc = world.reconciler(
        auto_repair=[DifferenceClass.BILLED_NOT_ON_SEND_LIST],
        send_list=SendListDropFolder(drop, world.clock),
    )
    first = rc.reconcile(D23)
    assert first.repairs_applied == 2
    files = sorted(drop.glob("repairs-*.csv"))
    assert len(files) == 1
    handed = pd.read_csv(files[0], dtype=str)
    assert set(handed["action"]) == {"add"}
    audit = world.store.repair_rows()
    assert [(r["class"], r["action"], r["msisdn"]) for r in audit] == [
        ("billed_not_on_send_list", "add", "+8613800000002"),
        ("billed_not_on_send_list", "add", "+8613800000005"),
    ]
    assert all(r["platform_as_of"] == D22 and r["reason"] for r in audit)
    # Same platform snapshot: nothing is applied twice.
    assert rc.reconcile(D23).repairs_applied == 0
    assert len(world.store.repair_rows()) == 2


def test_repairs_stay_off_by_default(world: World) -> None:
    load_all(world)
    report = world.reconciler().reconcile(D23)
    assert report.repairs_applied == 0
    assert world.store.repair_rows() == []


def test_a_file_without_one_readable_row_is_not_recorded_as_a_snapshot(world: World) -> None:
    load_all(world)
    summary = world.load(Source.PLATFORM, "msisdn,product,status\n12345,daily,active\n", D23)
    assert summary.quarantined == 1
    assert "no readable rows" in next(iter(summary.failed_sources.values()))
    # The platform's newest snapshot is still the 22nd: no mass "billed, not on the send list".
    assert world.store.latest_snapshots()[Source.PLATFORM] == D22
    assert world.reconciler().reconcile(D23).counts["billed_not_on_send_list"] == 2

"""Scoring and recovery on a real database (SQLite and PostgreSQL): the window summary folded
from the stored aggregate blocks equals the pandas reference, runs are persisted and audited,
lists and funnel are right."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mmsq.adapters.sql_recovery import SqlRecoveryStore
from mmsq.adapters.sql_store import SqlStore
from mmsq.blacklist import BlacklistService
from mmsq.devices import DeviceCatalogue, read_device_table
from mmsq.features import summarise_window
from mmsq.msisdn import MsisdnNormaliser
from mmsq.recovery import InvalidTransitionError, RecoveryService
from mmsq.scoring_rules import load_scoring_rules
from mmsq.scoring_run import ScoringService
from mmsq.simulators.daily_population import PopulationSpec, generate, load_chunks

LAST = date(2026, 11, 22)
FIXTURE = Path(__file__).parent.parent / "fixtures" / "devices_scoring.csv"


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class World:
    store: SqlStore
    recovery_store: SqlRecoveryStore
    scoring: ScoringService
    recovery: RecoveryService
    blacklist: BlacklistService
    clock: FixedClock
    truth: pd.DataFrame


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    store = SqlStore.from_url(db_url)
    store.upgrade()
    chunks = list(generate(PopulationSpec(subscribers=400, last_day=LAST, chunk=150, seed=3)))
    load_chunks(store.engine, chunks)
    truth = [chunk.truth for chunk in chunks]
    rstore = SqlRecoveryStore(store.engine, workers=2)
    clock = FixedClock(datetime(2026, 11, 22, 18, 0, tzinfo=UTC))  # 02:00 on the 23rd in Shanghai
    rules = load_scoring_rules()
    scoring = ScoringService(
        source=rstore,
        recovery=rstore,
        blacklist=rstore,
        rules=rules,
        devices=DeviceCatalogue(read_device_table(FIXTURE)),
        clock=clock,
        timezone="Asia/Shanghai",
    )
    recovery = RecoveryService(rstore, rstore, rules.recovery, clock, "Asia/Shanghai")
    blacklist = BlacklistService(rstore, MsisdnNormaliser("CN"), clock)
    try:
        yield World(store, rstore, scoring, recovery, blacklist, clock, pd.concat(truth))
    finally:
        store.close()


@pytest.mark.parametrize(("workers", "days_per_read"), [(2, 6), (1, 4), (2, 30)])
def test_window_summary_equals_the_pandas_reference(
    world: World, workers: int, days_per_read: int
) -> None:
    first = LAST - timedelta(days=29)
    reference = summarise_window(world.store.daily_aggregates(first, LAST), first, LAST)
    source = SqlRecoveryStore(world.store.engine, workers=workers, days_per_read=days_per_read)
    got = source.window_summary(first, LAST)
    pd.testing.assert_frame_equal(got, reference, check_dtype=False)
    some = sorted(reference["msisdn"].sample(5, random_state=1))
    one = source.window_summary(first, LAST, some)
    pd.testing.assert_frame_equal(
        one, reference[reference["msisdn"].isin(some)].reset_index(drop=True), check_dtype=False
    )


def test_window_summary_of_a_shorter_window_and_devices(world: World) -> None:
    first, last = LAST - timedelta(days=9), LAST - timedelta(days=2)
    reference = summarise_window(world.store.daily_aggregates(first, last), first, last)
    got = world.recovery_store.window_summary(first, last)
    pd.testing.assert_frame_equal(got, reference, check_dtype=False)
    devices = world.recovery_store.subscriber_devices()
    assert len(devices) == 400
    assert list(devices.columns) == ["msisdn", "tac"]
    m = devices["msisdn"].iloc[7]
    one = world.recovery_store.subscriber_devices([m, "+8613999999999"])
    assert one.to_dict("records") == [{"msisdn": m, "tac": devices["tac"].iloc[7]}]


def test_daily_aggregates_read_has_the_table_columns(world: World) -> None:
    frame = world.store.daily_aggregates(LAST, LAST)
    assert {"msisdn", "day", "attempts", "notified_not_fetched", "c_unreachable", "last_ts"} <= set(
        frame.columns
    )
    assert set(frame["day"].dt.date) == {LAST}


def test_scoring_run_is_persisted_and_a_rerun_changes_nothing(world: World) -> None:
    first = world.scoring.run(LAST)
    assert len(first.frame) == 400
    flagged = first.by_transition["active->flagged"]
    assert flagged > 0
    assert first.by_transition["flagged->suspended"] > 0
    assert first.by_transition["active->invalid"] > 0
    states = world.recovery_store.load_states()
    assert len(states) == flagged + first.by_transition["active->invalid"]
    second = world.scoring.run(LAST)
    assert second.by_transition == {}
    assert second.frame.set_index("msisdn")["state"].to_dict() == (
        first.frame.set_index("msisdn")["state"].to_dict()
    )


def test_cancelled_numbers_go_to_the_cleanup_list_not_to_probing(world: World) -> None:
    world.scoring.run(LAST)
    cleanup = world.recovery.cleanup_list()
    invalid = set(world.truth.loc[world.truth["profile"] == "invalid", "msisdn"])
    assert set(cleanup["msisdn"]) == invalid
    assert not set(world.recovery.suspensions()["msisdn"]) & invalid
    later = LAST + timedelta(days=60)
    assert not set(world.recovery.due_probes(later)["msisdn"]) & invalid


def test_suspension_list_and_probe_schedule(world: World) -> None:
    world.scoring.run(LAST)
    suspended = world.recovery.suspensions()
    assert list(suspended.columns) == ["msisdn", "reason", "since"]
    assert set(suspended["since"]) == {"2026-11-22"}
    assert world.recovery.due_probes(LAST + timedelta(days=6)).empty
    due = world.recovery.due_probes(LAST + timedelta(days=7))
    assert set(due["msisdn"]) == set(suspended["msisdn"])
    # a do-not-contact subscriber is not probed
    listed = suspended["msisdn"].iloc[0]
    world.blacklist.add(listed, "complaint")
    assert listed not in set(world.recovery.due_probes(LAST + timedelta(days=7))["msisdn"])


def test_probe_delivered_resumes_and_the_path_is_explained(world: World) -> None:
    world.scoring.run(LAST)
    m = world.recovery.suspensions()["msisdn"].iloc[0]
    world.clock.at += timedelta(days=7)
    t = world.recovery.record_probe_sent(m)
    assert (t.from_state, t.to_state) == ("suspended", "probing")
    assert world.recovery.state_of(m)["probes_sent"] == 1  # type: ignore[index]
    assert world.recovery.due_probes(LAST + timedelta(days=13)).query("msisdn == @m").empty
    assert len(world.recovery.due_probes(LAST + timedelta(days=14)).query("msisdn == @m")) == 1
    world.clock.at += timedelta(days=1)
    t = world.recovery.record_delivery(m, probe=True)
    assert t is not None
    assert (t.to_state, t.cause) == ("resumed", "probe")
    path = [(h["from_state"], h["to_state"], h["event"]) for h in world.recovery.history(m)]
    assert path == [
        ("active", "flagged", "verdict"),
        ("flagged", "suspended", "suspend_threshold_reached"),
        ("suspended", "probing", "probe_sent"),
        ("probing", "resumed", "probe_delivered"),
    ]
    assert m not in set(world.recovery.suspensions()["msisdn"])


def test_remedy_then_delivery_recovers_and_the_funnel_counts_it(world: World) -> None:
    result = world.scoring.run(LAST)
    flagged = result.frame[result.frame["state"] == "flagged"]["msisdn"].tolist()
    m = flagged[0]
    world.recovery.record_remedy(m, "ota")
    with pytest.raises(InvalidTransitionError):
        world.recovery.record_probe_sent(m)
    world.clock.at += timedelta(days=2)
    t = world.recovery.record_delivery(m)
    assert t is not None
    assert (t.from_state, t.to_state, t.cause) == ("remedied", "recovered", "remedy")
    assert world.recovery.record_delivery("+8613999999999") is None  # active: nothing to do
    funnel = world.recovery.funnel(LAST, LAST + timedelta(days=5))
    assert funnel["flagged"] == result.by_transition["active->flagged"]
    assert funnel["remedied"] == 1
    assert funnel["recovered_after_remedy"] == 1
    assert funnel["suspended"] == result.by_transition["flagged->suspended"]
    assert funnel["cleanup"] == result.by_transition["active->invalid"]


def test_blacklist_import_until_and_remove(world: World, tmp_path: Path) -> None:
    src = tmp_path / "dnc.csv"
    src.write_text(
        "msisdn,reason,until\n"
        "13800138000,complaint,\n"
        "+86 139 0013 9000,staff,2026-11-30\n"
        "12345,test,\n"
        "13700137000,opted_out,30/11/2026\n"
    )
    result = world.blacklist.import_file(src)
    assert sorted(result.entries["msisdn"]) == ["+8613800138000", "+8613900139000"]
    assert [(r.line, r.reason) for r in result.rejected] == [
        (4, "invalid MSISDN"),
        (5, "until is not a date (YYYY-MM-DD)"),
    ]
    assert world.blacklist.is_listed("138-0013-8000", date(2027, 1, 1))
    assert world.blacklist.is_listed("13900139000", date(2026, 11, 30))
    assert not world.blacklist.is_listed("13900139000", date(2026, 12, 1))
    assert world.blacklist.remove("13800138000")
    assert not world.blacklist.is_listed("13800138000", date(2026, 11, 1))
    world.blacklist.import_file(src)  # re-import replaces, never duplicates
    assert len(world.recovery_store.blacklist_rows()) == 2


def test_remedies_recorded_in_one_batch_match_one_by_one(world: World) -> None:
    result = world.scoring.run(LAST)
    flagged = sorted(result.frame[result.frame["state"] == "flagged"]["msisdn"].tolist())
    assert len(flagged) >= 3
    batch = world.recovery.record_remedies(
        [(m, "ota" if i % 2 else "help_sms", "") for i, m in enumerate(flagged[:2])]
    )
    single = world.recovery.record_remedy(flagged[2], "help_sms")
    assert [(t.from_state, t.to_state, t.cause) for t in batch] == [
        ("flagged", "remedied", "help_sms"),
        ("flagged", "remedied", "ota"),
    ]
    assert (single.from_state, single.to_state) == ("flagged", "remedied")
    for m in flagged[:3]:
        assert (world.recovery.state_of(m) or {})["state"] == "remedied"
        assert world.recovery.history(m)[-1]["event"] == "remedy_sent"


def test_a_batch_with_an_invalid_transition_stores_nothing(world: World) -> None:
    result = world.scoring.run(LAST)
    flagged = sorted(result.frame[result.frame["state"] == "flagged"]["msisdn"].tolist())
    suspended = world.recovery.suspensions()["msisdn"].iloc[0]
    before = [len(world.recovery.history(m)) for m in (flagged[0], suspended)]
    with pytest.raises(InvalidTransitionError):
        # a suspended subscriber cannot be "remedied": the whole batch is refused
        world.recovery.record_remedies([(flagged[0], "ota", ""), (suspended, "ota", "")])
    assert [len(world.recovery.history(m)) for m in (flagged[0], suspended)] == before
    assert (world.recovery.state_of(flagged[0]) or {})["state"] == "flagged"
    with pytest.raises(ValueError, match="twice"):
        world.recovery.record_remedies([(flagged[0], "ota", ""), (flagged[0], "help_sms", "")])

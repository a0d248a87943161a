"""Scoring as wired by the composition root (SQLite and PostgreSQL): the subscription store
answers the status look-up, and the daemon's score job runs a scoring and reports counts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from mmsq.adapters.sql_subscriptions import SqlSubscriptionStore
from mmsq.adapters.sql_subscriptions_schema import subscriptions
from mmsq.bootstrap import App, build_app, build_scoring, score_job
from mmsq.settings import DatabaseSettings, RulesSettings, Settings
from mmsq.simulators.daily_population import PopulationSpec, device_table, generate, load_chunks


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    rules = tmp_path / "rules"
    rules.mkdir()
    device_table().to_csv(rules / "devices.csv", index=False)
    settings = Settings(
        data_dir=tmp_path, database=DatabaseSettings(url=db_url), rules=RulesSettings(dir=rules)
    )
    built = build_app(settings, check_schema=False)
    built.store.upgrade()
    try:
        yield built
    finally:
        built.close()


def _subscribe(app: App, rows: list[tuple[str, str, str | None]]) -> None:
    with app.store.engine.begin() as conn:
        conn.execute(
            subscriptions.insert(),
            [{"msisdn": m, "product": p, "status": s} for m, p, s in rows],
        )


def test_status_lookup_folds_products_and_says_unknown_for_strangers(app: App) -> None:
    _subscribe(
        app,
        [
            ("+8613800000001", "daily", "active"),
            ("+8613800000001", "weekly", "cancelled"),
            ("+8613800000002", "daily", "suspended"),
            ("+8613800000003", "daily", "cancelled"),
            ("+8613800000004", "daily", "unsubscribed"),
            ("+8613800000005", "daily", None),
        ],
    )
    store = SqlSubscriptionStore(app.store.engine)
    asked = pd.Series(
        [f"+861380000000{i}" for i in (3, 1, 2, 4, 5, 9)], index=[10, 11, 12, 13, 14, 15]
    )
    got = store.statuses(asked)
    assert got.to_dict() == {
        10: "cancelled",
        11: "active",
        12: "suspended",
        13: "suspended",
        14: "unknown",
        15: "unknown",
    }
    # Past the IN-list limit the whole table is read: same answers.
    many = pd.concat([asked, pd.Series([f"+86139{i:08d}" for i in range(600)])])
    assert store.statuses(many).iloc[:6].tolist() == got.tolist()


def test_scoring_reads_subscription_status_from_the_store(app: App) -> None:
    chunks = list(generate(PopulationSpec(subscribers=120, seed=9)))
    load_chunks(app.store.engine, chunks)
    truth = pd.concat([c.truth for c in chunks])
    healthy = truth.loc[truth["profile"] == "healthy", "msisdn"].iloc[0]
    _subscribe(app, [(healthy, "daily", "cancelled")])
    features, _scored = build_scoring(app).scoring.assess(PopulationSpec().last_day, [healthy])
    assert features["subscription_status"].tolist() == ["cancelled"]


def test_score_job_runs_and_summarises(app: App) -> None:
    load_chunks(app.store.engine, generate(PopulationSpec(subscribers=200, seed=4)))
    # 20:00 in Shanghai on the last generated day
    app.clock = FixedClock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))  # type: ignore[assignment]
    run = score_job(app)
    summary = run()
    assert summary["subscribers"] == 200
    assert summary["as_of"] == "2026-11-22"
    assert summary["by_transition"]["active->flagged"] > 0  # type: ignore[index]
    again = run()
    assert again["by_transition"] == {}

"""Scoring rules and the device table: shipped files valid, operator overrides, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mmsq.devices import load_devices, read_device_table
from mmsq.evaluation import evaluate
from mmsq.rules_loader import RulesError
from mmsq.scoring_rules import load_scoring_rules
from mmsq.verdicts import CANDIDATE_VERDICTS, Verdict

FIXTURE = Path(__file__).parent.parent / "fixtures" / "devices_scoring.csv"


def test_shipped_scoring_rules_score_every_candidate_verdict() -> None:
    rules = load_scoring_rules()
    assert set(rules.verdicts) == set(CANDIDATE_VERDICTS)
    assert rules.window.days == 30
    assert Verdict.SUBSCRIBER_INVALID in rules.recovery.cleanup_verdicts


def test_operator_file_overrides_one_key_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "scoring.toml").write_text(
        "[window]\ndays = 14\n[verdicts.unreachable]\nmin_failed_run = 5\n"
        "[recovery]\nprobe_after_days = [3, 10]\n"
    )
    rules = load_scoring_rules(tmp_path)
    assert rules.window.days == 14
    assert rules.window.min_final_days == 3
    assert rules.verdicts[Verdict.UNREACHABLE].min_failed_run == 5
    assert rules.verdicts[Verdict.UNREACHABLE].weights["share_unreachable"] == 0.45
    assert rules.recovery.probe_after_days == (3, 10)


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        (
            "[verdicts.unreachable.weights]\nmoon_phase = 1.0\n",
            "verdicts.unreachable.weights",
            "unknown features ['moon_phase']",
        ),
        ("[window]\ndays = 90\n", "window.days", "less than or equal to 62"),
        (
            "[verdicts.healthy]\nmin_score = 0.5\nmin_failed_run = 1\nweights = { history = 1.0 }\n",
            "verdicts",
            "not scored verdicts",
        ),
        ("[recovery]\nprobe_after_days = [14, 7]\n", "recovery.probe_after_days", "increasing"),
        (
            '[recovery]\nflag_verdicts = ["subscriber_invalid"]\n',
            "recovery",
            "both flagged and cleaned up",
        ),
    ],
)
def test_bad_rules_name_file_and_key(tmp_path: Path, body: str, key: str, words: str) -> None:
    (tmp_path / "scoring.toml").write_text(body)
    with pytest.raises(RulesError) as info:
        load_scoring_rules(tmp_path)
    problem = info.value.problems[0]
    assert problem.file.endswith("scoring.toml (merged over the shipped file)")
    assert problem.key.startswith(key)
    assert words in problem.reason


def test_device_fixture_reads_booleans() -> None:
    table = read_device_table(FIXTURE)
    assert len(table) == 20
    nokia = table.set_index("tac").loc["35332003"]
    assert (nokia["brand"], bool(nokia["mms_capable"]), bool(nokia["ota_cp"])) == (
        "Nokia",
        True,
        True,
    )


def test_device_table_errors_give_line_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "devices.csv"
    bad.write_text(
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n"
        "3533200,Nokia,6300,true,true,,\n"
        "35332003,Nokia,6300,yes,true,,\n"
    )
    with pytest.raises(RulesError) as info:
        read_device_table(bad)
    assert [(p.key, p.reason) for p in info.value.problems] == [
        ("line 2", "tac '3533200' is not 8 digits"),
        ("line 3", "mms_capable 'yes' is not true or false"),
    ]


def test_device_table_header_must_be_exact(tmp_path: Path) -> None:
    bad = tmp_path / "devices.csv"
    bad.write_text("tac,brand,model\n35332003,Nokia,6300\n")
    with pytest.raises(RulesError, match="columns must be exactly"):
        read_device_table(bad)


def test_operator_devices_replace_shipped_rows_by_tac(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    operator = tmp_path / "operator"
    shipped.mkdir()
    operator.mkdir()
    shutil.copy(FIXTURE, shipped / "devices.csv")
    (operator / "devices.csv").write_text(
        "tac,brand,model,mms_capable,ota_cp,cp_security,settings_profile\n"
        "35332003,Nokia,6300 (operator firmware),true,false,,\n"
        "11111111,Acme,A1,true,true,NETWPIN,acme\n"
    )
    catalogue = load_devices(operator, shipped)
    got = catalogue.lookup(pd.Series(["35332003", "11111111", "35694005"]))
    assert got["model"].tolist() == ["6300 (operator firmware)", "A1", "1100"]
    assert got["ota_cp"].tolist() == [False, True, False]


def test_without_a_device_table_every_handset_is_unknown(tmp_path: Path) -> None:
    catalogue = load_devices(None, tmp_path)
    assert len(catalogue) == 0
    assert not catalogue.lookup(pd.Series(["35332003"]))["known"].any()


def test_evaluation_precision_recall_and_confusion() -> None:
    predicted = pd.DataFrame(
        {
            "msisdn": ["a", "b", "c", "d", "e"],
            "verdict": [
                "terminal_misconfigured",
                "terminal_misconfigured",
                "terminal_capacity",
                "unreachable",
                "healthy",
            ],
        }
    )
    truth = pd.DataFrame(
        {
            "msisdn": ["a", "b", "c", "d", "f"],
            "expected_verdict": [
                "terminal_misconfigured",
                "terminal_capacity",
                "terminal_capacity",
                "healthy",
                "healthy",
            ],
        }
    )
    ev = evaluate(predicted, truth)
    rows = ev.per_verdict.set_index("verdict")
    assert rows.loc["terminal_misconfigured", "precision"] == 0.5
    assert rows.loc["terminal_misconfigured", "recall"] == 1.0
    assert rows.loc["terminal_capacity", "recall"] == 0.5
    assert rows.loc["unreachable", "precision"] == 0.0
    assert ev.confusion.loc["terminal_capacity", "terminal_misconfigured"] == 1
    assert ev.confusion.loc["other", "unreachable"] == 1
    assert (ev.matched, ev.unmatched_truth, ev.unmatched_predicted) == (4, 1, 1)
    assert ev.accuracy == 0.5

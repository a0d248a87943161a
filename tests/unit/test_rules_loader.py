"""Operator rules merge over the shipped rules by each namespace's own notion of a code."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsq.classify import Classifier
from mmsq.domain import CauseClass
from mmsq.rules_loader import RulesError, load_rules


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "status_codes.toml").write_text(body, encoding="utf-8")
    return tmp_path


def test_override_written_in_another_base_replaces_the_shipped_entry(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """
[namespaces.smpp_command]
codes = [{ code = "88", cause = "platform_error", provenance = "our SMSC, 2026" }]
""",
        )
    )
    got = Classifier(rules.status_codes).lookup("smpp_command", "0x58")
    assert got.cause is CauseClass.PLATFORM_ERROR
    assert got.provenance == "our SMSC, 2026"


def test_override_in_another_case_replaces_the_shipped_entry(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """
[namespaces.cmpp]
codes = [{ code = "mk:0024", cause = "subscriber_invalid", provenance = "vendor table" }]
""",
        )
    )
    assert (
        Classifier(rules.status_codes).lookup("cmpp", "MK:0024").cause
        is CauseClass.SUBSCRIBER_INVALID
    )


def test_new_namespace_is_added(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """
[namespaces.acme]
match = "exact"
codes = [{ code = "OK", cause = "delivered", provenance = "ACME gateway manual" }]
""",
        )
    )
    c = Classifier(rules.status_codes)
    assert c.lookup("acme", "OK").cause is CauseClass.DELIVERED
    assert c.lookup("cmpp", "MK:0017").cause is CauseClass.TERMINAL_CAPACITY


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
[namespaces.cmpp]
codes = [{ code = "MK:1", cause = "sunspots", provenance = "x" }, { code = "MK:2", cause = "unknown" }]
""",
    )
    with pytest.raises(RulesError) as info:
        load_rules(tmp_path)
    keys = [p.key for p in info.value.problems]
    assert any("cause" in k for k in keys)
    assert any("provenance" in k for k in keys)
    assert all(p.file.endswith("(merged over the shipped file)") for p in info.value.problems)


def test_missing_operator_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="does not exist"):
        load_rules(tmp_path / "nope")

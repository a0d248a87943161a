"""The [reconcile] settings section."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsq.settings import ConfigError, load_settings
from mmsq.subscriptions import DifferenceClass


def test_example_config_documents_the_reconcile_defaults() -> None:
    s = load_settings(Path(__file__).parents[2] / "config.example.toml")
    assert s.reconcile.stale_after_days == 1
    assert s.reconcile.auto_repair == []
    assert s.reconcile.repair_dir is None


def test_auto_repair_per_class(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[reconcile]\nauto_repair = ["billed_not_on_send_list"]\nrepair_dir = "drop"\n')
    s = load_settings(cfg)
    assert s.reconcile.auto_repair == [DifferenceClass.BILLED_NOT_ON_SEND_LIST]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[reconcile]\nauto_repair = ["everything"]\nrepair_dir = "d"\n', "reconcile.auto_repair"),
        ('[reconcile]\nauto_repair = ["status_mismatch"]\n', "repair_dir"),
        ("[reconcile]\nstale_after_days = -1\n", "reconcile.stale_after_days"),
    ],
)
def test_bad_reconcile_settings_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError, match=key):
        load_settings(cfg)

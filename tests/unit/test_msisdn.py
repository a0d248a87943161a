from __future__ import annotations

import pandas as pd
import pytest

from mmsq.log import mask_msisdns
from mmsq.msisdn import MsisdnNormaliser, mask_msisdn, mask_text


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+447911123456", "+447911123456"),
        ("12345", None),
        ("abc", None),
        ("", None),
    ],
)
def test_vectorised_and_scalar_normalisation_agree(raw: str, e164: str | None) -> None:
    n = MsisdnNormaliser("CN")
    assert n.normalise(raw) == e164
    got = n.normalise_series(pd.Series([raw], dtype="string")).iloc[0]
    assert (None if pd.isna(got) else got) == e164


def test_masking_keeps_enough_to_tell_numbers_apart() -> None:
    assert mask_msisdn("+8613800138000") == "+86138****8000"
    assert mask_msisdn("13800138000") == "138****8000"
    assert mask_text("sent to 13800138000 ok") == "sent to 138****8000 ok"


def test_log_processor_masks_numbers_in_every_field() -> None:
    event = {"event": "sent to +8613800138000", "msisdn": "13800138000", "n": 3}
    masked = mask_msisdns(None, "info", event)
    assert "13800138000" not in str(masked)
    assert masked["n"] == 3

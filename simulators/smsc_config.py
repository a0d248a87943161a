"""Configuration of the SMSC simulator: where it listens, whom it accepts, which faults it
injects. Faults are drawn from seeded generators, so a run is repeatable."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SmscConfig"]


class SmscConfig(BaseModel):
    """Everything the SMSC simulator can be told (all optional; defaults accept one account
    and inject no faults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=0, ge=0, le=65535, description="TCP port; 0 = ephemeral")
    system_id: str = Field(default="mmsq", min_length=1, max_length=15)
    password: str = Field(default="secret", max_length=8)
    throughput: float | None = Field(
        default=None,
        gt=0,
        description="submit_sm PDUs (segments) per second; above it ESME_RTHROTTLED (0x58). "
        "None: unlimited. A token bucket holding one second's worth allows short bursts.",
    )
    msgqful_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of submit_sm answered ESME_RMSGQFUL (0x14)"
    )
    drop_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of submit_sm on which the connection is dropped without an answer",
    )
    resp_delay_s: float = Field(
        default=0.0, ge=0, description="delay before each submit_sm_resp (seconds)"
    )
    id_format: Literal["dec", "hex"] = Field(
        default="dec", description="message ids in submit_sm_resp: decimal or lowercase hex"
    )
    receipt_id_format: Literal["dec", "hex"] | None = Field(
        default=None,
        description="message ids in receipts (text id: and receipted_message_id); "
        "None: the same as id_format. Differing formats are what Kannel's msg-id-type 1 or 2 "
        "describes.",
    )
    first_message_id: int = Field(default=1, ge=0, description="the first message id issued")
    seed: int = Field(default=0, description="seed of the fault generators")
    gsm7_packing: Literal["auto", "packed", "unpacked"] = Field(
        default="auto",
        description="how GSM 7-bit user data (data_coding 0) is read: auto takes an octet with "
        "the top bit set as proof of packing",
    )
    wap_push_port: int = Field(default=2948, description="WDP destination port of OTA pushes")
    log_size: int = Field(
        default=100_000, ge=0, description="received submit_sm kept for inspection"
    )
    max_pending_receipts: int = Field(
        default=1_000_000,
        ge=0,
        description="receipts kept for a system_id with no receiver bound; beyond, oldest dropped",
    )

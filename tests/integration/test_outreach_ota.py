"""An OTA settings push through the outbox, the SMPP link and the SMSC simulator, backed by the
simulated handset population: the misconfigured CP-capable handset is fixed, and the help SMS
that follows it (with the USERPIN) reaches the handset as text."""

from __future__ import annotations

from pathlib import Path

from mmsq.simulators.handset_states import HandsetState
from mmsq.simulators.outcomes import OtaPush, TextSms
from mmsq.simulators.population import HandsetPopulation
from mmsq.simulators.population_config import PopulationConfig
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig
from tests.outreach_fixtures import candidates, dispatcher, new_outbox, planner

USERPIN_TAC = "35690060"  # Nokia 2600 classic: OMA CP with USERPIN (rules/devices.csv)


class Watching(HandsetPopulation):
    """The population, also keeping what its handsets received (for the assertions)."""

    def __init__(self, config: PopulationConfig) -> None:
        super().__init__(config)
        self.texts: list[TextSms] = []
        self.pushes: list[OtaPush] = []

    def on_text_sms(self, sms: TextSms) -> None:
        self.texts.append(sms)
        super().on_text_sms(sms)

    def on_ota_push(self, push: OtaPush) -> None:
        self.pushes.append(push)
        super().on_ota_push(push)


def test_ota_push_fixes_a_misconfigured_handset_and_the_pin_arrives_by_sms(
    tmp_path: Path,
) -> None:
    population = Watching(
        PopulationConfig(subscribers=200, seed=5, ota_accept=1.0, ota_userpin_accept=1.0)
    )
    msisdn = population.msisdn_at(7)
    population.set_device(msisdn, USERPIN_TAC)
    population.set_state(msisdn, HandsetState.SETTINGS_WRONG_APN)

    store = new_outbox(f"sqlite:///{tmp_path / 'mmsq.db'}")
    record_handset(tmp_path, store.engine, msisdn, USERPIN_TAC + "0000001")
    # The IMSI is unknown: the profile falls back to USERPIN, the PIN goes into the help SMS.
    # The simulated subscriber types the PIN they are given; the population models it as theirs.
    summary = planner(store, new_pin=lambda m: population.user_pin(m) or "0000").plan(
        candidates([msisdn], "terminal_misconfigured")
    )
    assert summary.by_action == {"ota_push": 1, "help_sms": 1}
    push, help_sms = store.contacts()
    assert push["action"] == "ota_push"
    assert "USERPIN" in push["detail"]
    pin = population.user_pin(msisdn)
    assert pin is not None
    assert help_sms["text"].endswith(pin)

    with SmscSimulator(SmscConfig(), population) as smsc:
        result = dispatcher(store, smsc).dispatch_once(receipt_wait_s=10)
        assert smsc.stats().pushes == 1
        assert smsc.stats().decode_failures == 0

    assert result.failed == 0
    (received_push,) = population.pushes
    assert received_push.sec == "USERPIN"
    assert received_push.mac_valid
    assert received_push.parameters["NAP-ADDRESS"] == "cmwap"
    assert population.state_of(msisdn) is HandsetState.HEALTHY
    assert population.counters.pushes_fixed == 1
    (text,) = population.texts
    assert text.text == help_sms["text"]
    assert pin in text.text
    # The push went out before the help SMS that announces it.
    assert next(s["contact_id"] for s in store.segments()) == push["id"]
    assert {c["state"] for c in store.contacts()} <= {"delivered", "failed"}
    store.close()


def record_handset(tmp_path: Path, engine: object, msisdn: str, imei: str) -> None:
    """The handset as ingest records it: one CDR row with the IMEI, through the real ingest."""
    from datetime import UTC, datetime

    from mmsq.adapters.cdr_csv import CdrFileReader
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.classify import Classifier
    from mmsq.ingest import IngestService
    from mmsq.msisdn import MsisdnNormaliser
    from mmsq.rules_loader import load_rules

    class Clock:
        def now(self) -> datetime:
            return datetime(2026, 11, 23, tzinfo=UTC)

    cdr = tmp_path / "handset.csv"
    cdr.write_text(
        "msisdn,message_id,edition,submitted_at,done_at,status_source,status_code,imei\n"
        f"{msisdn},m1,ah-20261122-am,2026-11-22T07:00:00+08:00,2026-11-24T07:00:00+08:00,"
        f"mm7,Expired,{imei}\n"
    )
    store = SqlStore(engine)  # type: ignore[arg-type]
    IngestService(
        store=store,
        classifier=Classifier(load_rules().status_codes),
        normaliser=MsisdnNormaliser("CN"),
        clock=Clock(),
        timezone="Asia/Shanghai",
    ).ingest([CdrFileReader(cdr)])

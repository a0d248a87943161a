"""The SMSC simulator on a real socket, driven by independent clients: smpplib, and raw
PDUs written out by hand (for what a library would refuse to send)."""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.gsm

from mmsq.simulators.outcomes import FixedOutcomes, SmsOutcome
from mmsq.simulators.smsc import SmscSimulator
from mmsq.simulators.smsc_config import SmscConfig
from tests.ota_cp_vectors import NETWPIN_MAC, wsp_push

MSISDN = "8613800138000"
WAIT_S = 10.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds; fail (not a timing assertion: a generous ceiling)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def outcomes() -> FixedOutcomes:
    return FixedOutcomes(default_sms=SmsOutcome(delay_s=0.0))


@pytest.fixture
def smsc(outcomes: FixedOutcomes) -> Iterator[SmscSimulator]:
    with SmscSimulator(SmscConfig(), outcomes) as sim:
        yield sim


class Esme:
    """An smpplib client that collects what it receives."""

    def __init__(self, smsc: SmscSimulator) -> None:
        self.client = smpplib.client.Client(
            smsc.host, smsc.port, timeout=5, allow_unknown_opt_params=True
        )
        self.receipts: list[Any] = []
        self.sent: list[Any] = []
        self.client.set_message_received_handler(self._on_deliver_sm)
        self.client.set_message_sent_handler(self._on_submit_sm_resp)
        self.client.connect()

    def _on_deliver_sm(self, pdu: Any) -> None:
        self.receipts.append(pdu)

    def _on_submit_sm_resp(self, pdu: Any) -> None:
        self.sent.append(pdu)

    def submit(self, destination: str = MSISDN, **kwargs: Any) -> None:
        kwargs.setdefault("registered_delivery", 1)
        self.client.send_message(source_addr="10086", destination_addr=destination, **kwargs)

    def read_until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for PDUs")
            self.client.read_once()

    def close(self) -> None:
        self.client.unbind()
        self.client.disconnect()

    def drop(self) -> None:
        """Disconnect without unbinding (the process died)."""
        self.client.disconnect()


@pytest.fixture
def esme(smsc: SmscSimulator) -> Iterator[Esme]:
    client = Esme(smsc)
    client.client.bind_transceiver(system_id="mmsq", password="secret")
    yield client
    if client.client.state != smpplib.consts.SMPP_CLIENT_STATE_CLOSED:
        client.close()


RECEIPT = re.compile(
    r"id:(\w+) sub:001 dlvrd:(\d{3}) submit date:\d{10} done date:\d{10} stat:(\w+) err:(\d{3}) "
    r"text:(.*)"
)


# -- smpplib round trips --------------------------------------------------------------------


def test_submit_gets_an_id_and_a_receipt_with_text_and_tlvs(
    smsc: SmscSimulator, esme: Esme, outcomes: FixedOutcomes
) -> None:
    outcomes.sms["8613900139000"] = SmsOutcome(stat="UNDELIV", err="001", delay_s=0.01)
    esme.submit(short_message=b"Hello MMS help", data_coding=0)
    esme.submit(destination="8613900139000", short_message=b"Second", data_coding=0)
    esme.read_until(lambda: len(esme.receipts) == 2 and len(esme.sent) == 2)
    ids = [p.message_id.decode() for p in esme.sent]
    assert ids == ["1", "2"]
    by_id = {}
    for pdu in esme.receipts:
        m = RECEIPT.fullmatch(pdu.short_message.decode())
        assert m is not None, pdu.short_message
        by_id[m.group(1)] = (m.groups(), pdu)
    (_, dlvrd, stat, err, text), first = by_id["1"]
    assert (dlvrd, stat, err, text) == ("001", "DELIVRD", "000", "Hello MMS help")
    assert first.esm_class == 0x04
    assert first.source_addr.decode() == MSISDN
    assert first.destination_addr.decode() == "10086"
    assert first.receipted_message_id.decode() == "1"
    assert first.message_state == 2
    (_, dlvrd, stat, err, _), second = by_id["2"]
    assert (dlvrd, stat, err) == ("000", "UNDELIV", "001")
    assert second.message_state == 5
    assert second.network_error_code == b"\x03\x00\x01"
    assert [t.text for t in outcomes.texts] == ["Hello MMS help", "Second"]
    stats = smsc.stats()
    assert (stats.submits, stats.receipts_sent, stats.texts) == (2, 2, 2)


def test_ucs2_concatenated_text_is_reassembled_with_one_receipt_per_segment(
    smsc: SmscSimulator, esme: Esme, outcomes: FixedOutcomes
) -> None:
    text = "您好。您的彩信设置有误。请按照以下步骤重新设置。" * 7 + "😀"
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    assert coding == smpplib.consts.SMPP_ENCODING_ISO10646
    assert len(parts) == 3
    for part in parts:
        esme.submit(short_message=part, data_coding=coding, esm_class=esm_class)
    esme.read_until(lambda: len(esme.receipts) == 3 and len(esme.sent) == 3)
    assert len(outcomes.texts) == 1
    sms = outcomes.texts[0]
    assert (sms.msisdn, sms.text, sms.data_coding, sms.segments) == (MSISDN, text, 8, 3)
    submitted = {p.message_id.decode() for p in esme.sent}
    receipted = {p.receipted_message_id.decode() for p in esme.receipts}
    assert submitted == receipted
    assert len(submitted) == 3


def test_gsm7_text_with_extension_characters(esme: Esme, outcomes: FixedOutcomes) -> None:
    text = "MMS {help}: reply [1] for €2 ^_^"
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    assert coding == smpplib.consts.SMPP_ENCODING_DEFAULT
    esme.submit(short_message=parts[0], data_coding=coding, esm_class=esm_class)
    esme.read_until(lambda: len(esme.receipts) == 1)
    assert outcomes.texts[0].text == text


def test_receipts_are_kept_for_a_bind_that_is_gone_and_delivered_on_rebind(
    smsc: SmscSimulator, outcomes: FixedOutcomes
) -> None:
    outcomes.default_sms = SmsOutcome(stat="EXPIRED", err="027", delay_s=0.0)
    sender = Esme(smsc)
    sender.client.bind_transmitter(system_id="mmsq", password="secret")
    sender.submit(short_message=b"probe", data_coding=0)
    sender.read_until(lambda: len(sender.sent) == 1)
    sender.close()
    wait_until(lambda: smsc.stats().receipts_held == 1, "the receipt to be kept")
    receiver = Esme(smsc)
    receiver.client.bind_receiver(system_id="mmsq", password="secret")
    receiver.read_until(lambda: len(receiver.receipts) == 1)
    receipt = receiver.receipts[0]
    assert receipt.receipted_message_id == sender.sent[0].message_id
    assert b"stat:EXPIRED err:027" in receipt.short_message
    wait_until(lambda: smsc.stats().receipts_acked == 1, "the receipt to be acknowledged")
    receiver.close()
    assert smsc.stats().receipts_pending == 0


def test_unacknowledged_receipts_are_redelivered_after_a_dropped_connection(
    smsc: SmscSimulator,
) -> None:
    first = Esme(smsc)
    first.client.bind_transceiver(system_id="mmsq", password="secret")
    first.submit(short_message=b"hello", data_coding=0)
    first.read_until(lambda: len(first.sent) == 1)
    wait_until(lambda: smsc.stats().receipts_unacked == 1, "a receipt in flight")
    first.drop()  # never answers the deliver_sm
    wait_until(lambda: smsc.stats().receipts_held == 1, "the receipt to be taken back")
    second = Esme(smsc)
    second.client.bind_transceiver(system_id="mmsq", password="secret")
    second.read_until(lambda: len(second.receipts) == 1)
    assert second.receipts[0].receipted_message_id == first.sent[0].message_id
    assert smsc.stats().receipts_redelivered == 1
    second.close()


def test_receipt_on_failure_only(smsc: SmscSimulator, esme: Esme, outcomes: FixedOutcomes) -> None:
    outcomes.sms["8613900139000"] = SmsOutcome(stat="UNDELIV", err="001", delay_s=0.0)
    esme.submit(short_message=b"ok", data_coding=0, registered_delivery=2)
    esme.submit(destination="8613900139000", short_message=b"ko", registered_delivery=2)
    esme.submit(short_message=b"none", data_coding=0, registered_delivery=0)
    esme.read_until(lambda: len(esme.receipts) == 1 and len(esme.sent) == 3)
    assert esme.receipts[0].receipted_message_id == b"2"
    assert smsc.stats().receipts_sent == 1


def test_hex_message_ids_and_decimal_receipt_ids(outcomes: FixedOutcomes) -> None:
    config = SmscConfig(id_format="hex", receipt_id_format="dec", first_message_id=255)
    with SmscSimulator(config, outcomes) as smsc:
        esme = Esme(smsc)
        esme.client.bind_transceiver(system_id="mmsq", password="secret")
        esme.submit(short_message=b"x", data_coding=0)
        esme.read_until(lambda: len(esme.receipts) == 1 and len(esme.sent) == 1)
        esme.close()
    assert esme.sent[0].message_id == b"ff"
    assert esme.receipts[0].short_message.startswith(b"id:255 ")
    assert esme.receipts[0].receipted_message_id == b"255"


def _push_segments(pdu: bytes, ref: int) -> list[bytes]:
    """Kannel's segmentation: port IE repeated in every segment, 128 octets each."""
    chunks = [pdu[i : i + 128] for i in range(0, len(pdu), 128)]
    udh = bytes.fromhex("0B05040B840B840003")
    return [udh + bytes([ref, len(chunks), n]) + c for n, c in enumerate(chunks, 1)]


def test_ota_push_is_reassembled_decoded_and_its_mac_checked(
    smsc: SmscSimulator, esme: Esme, outcomes: FixedOutcomes
) -> None:
    outcomes.imsis[MSISDN] = "234150123456789"
    segments = _push_segments(wsp_push(0, NETWPIN_MAC), ref=7)
    assert [len(s) for s in segments] == [140, 140, 115]
    for n, segment in enumerate(segments):
        more = {"more_messages_to_send": 1} if n < len(segments) - 1 else {}
        esme.submit(short_message=segment, data_coding=0x04, esm_class=0x43, **more)
    esme.read_until(lambda: len(esme.receipts) == 3)
    assert len(outcomes.pushes) == 1
    push = outcomes.pushes[0]
    assert (push.msisdn, push.sec, push.mac_valid) == (MSISDN, "NETWPIN", True)
    assert push.parameters["NAP-ADDRESS"] == "mms.example.net"
    assert push.parameters["ADDR"] == "http://mmsc.example.net/mms"
    assert push.parameters["PXADDR"] == "10.1.2.3"
    assert outcomes.texts == []


def test_push_with_a_wrong_mac_is_passed_on_as_invalid(esme: Esme, outcomes: FixedOutcomes) -> None:
    outcomes.imsis[MSISDN] = "234150123456780"  # another SIM
    for segment in _push_segments(wsp_push(0, NETWPIN_MAC), ref=8):
        esme.submit(short_message=segment, data_coding=0xF5, esm_class=0x40)
    esme.read_until(lambda: len(esme.receipts) == 3)
    assert [p.mac_valid for p in outcomes.pushes] == [False]


def test_undecodable_push_is_counted_not_passed_on(
    smsc: SmscSimulator, esme: Esme, outcomes: FixedOutcomes
) -> None:
    broken = wsp_push(0, NETWPIN_MAC)[:200]  # the WBXML is cut short
    for segment in _push_segments(broken, ref=9):
        esme.submit(short_message=segment, data_coding=0x04, esm_class=0x43)
    esme.read_until(lambda: len(esme.receipts) == 2)
    assert outcomes.pushes == []
    assert smsc.stats().decode_failures == 1
    assert "WBXML" in smsc.failures()[0].reason


# -- raw PDUs -------------------------------------------------------------------------------


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def bind_body(system_id: str = "mmsq", password: str = "secret") -> bytes:
    return f"{system_id}\0{password}\0\0".encode() + b"\x34\x00\x00\x00"


def submit_body(text: bytes = b"hi", tlvs: bytes = b"", data_coding: int = 0) -> bytes:
    """service_type, source (TON/NPI 0), destination (international/ISDN), esm_class,
    protocol_id, priority, no schedule, no validity, no receipt, data_coding, text, TLVs."""
    return (
        b"\x00\x00\x0010086\x00\x01\x01"
        + MSISDN.encode()
        + b"\x00\x00\x00\x00\x00\x00"
        + bytes([0, 0, data_coding, 0, len(text)])
        + text
        + tlvs
    )


class Raw:
    """A bare TCP client speaking hand-built PDUs."""

    def __init__(self, smsc: SmscSimulator) -> None:
        self.sock = socket.create_connection((smsc.host, smsc.port), timeout=WAIT_S)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> tuple[int, int, int, bytes]:
        head = self._exact(16)
        length, command_id, status, sequence = struct.unpack(">IIII", head)
        return command_id, status, sequence, self._exact(length - 16)

    def closed_by_peer(self) -> bool:
        return self.sock.recv(1) == b""

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the SMSC")
            data += chunk
        return data

    def bind(self) -> None:
        self.send(pdu(0x09, 1, bind_body()))
        assert self.read()[:3] == (0x80000009, 0, 1)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(smsc: SmscSimulator) -> Iterator[Raw]:
    client = Raw(smsc)
    yield client
    client.close()


def test_bad_command_length_gets_generic_nack_then_hangup(smsc: SmscSimulator, raw: Raw) -> None:
    raw.send(struct.pack(">IIII", 8, 0x15, 0, 42))  # shorter than the header itself
    assert raw.read()[:3] == (0x80000000, 0x02, 42)
    assert raw.closed_by_peer()
    assert smsc.stats().generic_nacks == 1


def test_oversized_command_length_gets_generic_nack(raw: Raw) -> None:
    raw.send(struct.pack(">IIII", 0x7FFFFFFF, 0x04, 0, 5))
    assert raw.read()[:3] == (0x80000000, 0x02, 5)
    assert raw.closed_by_peer()


def test_unknown_command_id_gets_generic_nack_and_the_session_goes_on(raw: Raw) -> None:
    raw.send(pdu(0x00000666, 3) + pdu(0x15, 4))
    assert raw.read()[:3] == (0x80000000, 0x03, 3)
    assert raw.read()[:3] == (0x80000015, 0, 4)  # enquire_link_resp


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("mmsq", "wrong", 0x0E), ("other", "secret", 0x0F)],
    ids=["password", "system-id"],
)
def test_wrong_credentials_are_refused(
    smsc: SmscSimulator, raw: Raw, system_id: str, password: str, status: int
) -> None:
    raw.send(pdu(0x02, 9, bind_body(system_id, password)))
    command_id, got, sequence, _ = raw.read()
    assert (command_id, got, sequence) == (0x80000002, status, 9)
    raw.send(pdu(0x04, 10, submit_body()))  # still not bound
    assert raw.read()[:3] == (0x80000004, 0x04, 10)
    assert smsc.stats().bind_failures == 1


def test_bind_twice_and_submit_on_a_receiver_bind(raw: Raw) -> None:
    raw.send(pdu(0x01, 1, bind_body()))
    assert raw.read()[:2] == (0x80000001, 0)
    raw.send(pdu(0x01, 2, bind_body()))
    assert raw.read()[:2] == (0x80000001, 0x05)  # ESME_RALYBND
    raw.send(pdu(0x04, 3, submit_body()))
    assert raw.read()[:2] == (0x80000004, 0x04)  # ESME_RINVBNDSTS


def test_throughput_limit_answers_throttled_per_segment(outcomes: FixedOutcomes) -> None:
    now = [100.0]
    config = SmscConfig(throughput=2)
    with SmscSimulator(config, outcomes, monotonic=lambda: now[0]) as smsc:
        raw = Raw(smsc)
        raw.bind()
        raw.send(b"".join(pdu(0x04, n, submit_body()) for n in range(2, 6)))
        statuses = [raw.read()[1] for _ in range(4)]
        assert statuses == [0, 0, 0x58, 0x58]
        now[0] += 0.5  # half a second later: one more fits
        raw.send(pdu(0x04, 6, submit_body()) + pdu(0x04, 7, submit_body()))
        assert [raw.read()[1] for _ in range(2)] == [0, 0x58]
        raw.close()
        assert (smsc.stats().throttled, smsc.stats().submits) == (3, 3)


def test_message_queue_full_with_a_seeded_rate_is_repeatable(outcomes: FixedOutcomes) -> None:
    def run() -> list[int]:
        with SmscSimulator(SmscConfig(msgqful_rate=0.5, seed=11), outcomes) as smsc:
            raw = Raw(smsc)
            raw.bind()
            raw.send(b"".join(pdu(0x04, n, submit_body()) for n in range(2, 22)))
            statuses = [raw.read()[1] for _ in range(20)]
            raw.close()
        return statuses

    first = run()
    assert set(first) == {0, 0x14}
    assert run() == first


def test_dropped_connection_leaves_the_submit_unanswered(outcomes: FixedOutcomes) -> None:
    with SmscSimulator(SmscConfig(drop_rate=1.0), outcomes) as smsc:
        raw = Raw(smsc)
        raw.bind()
        raw.send(pdu(0x15, 2) + pdu(0x04, 3, submit_body()) + pdu(0x15, 4))
        assert raw.read()[:3] == (0x80000015, 0, 2)  # answered before the drop
        assert raw.closed_by_peer()
        raw.close()
        assert (smsc.stats().dropped_connections, smsc.stats().submits) == (1, 0)


def test_slow_responses_still_arrive_in_order(outcomes: FixedOutcomes) -> None:
    with SmscSimulator(SmscConfig(resp_delay_s=0.05), outcomes) as smsc:
        raw = Raw(smsc)
        raw.bind()
        raw.send(pdu(0x04, 2, submit_body()) + pdu(0x04, 3, submit_body()))
        assert [raw.read()[2] for _ in range(2)] == [2, 3]
        raw.close()


def test_message_payload_tlv_and_unbind(
    smsc: SmscSimulator, raw: Raw, outcomes: FixedOutcomes
) -> None:
    raw.bind()
    payload = "长短信内容".encode("utf-16-be")
    body = submit_body(b"", struct.pack(">HH", 0x0424, len(payload)) + payload, data_coding=8)
    raw.send(pdu(0x04, 2, body))
    command_id, status, _, resp_body = raw.read()
    assert (command_id, status, resp_body) == (0x80000004, 0, b"1\x00")
    assert outcomes.texts[0].text == "长短信内容"
    raw.send(pdu(0x06, 3))
    assert raw.read()[:3] == (0x80000006, 0, 3)
    assert raw.closed_by_peer()

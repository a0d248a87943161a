"""Our WBXML decoded by an independent implementation: libwbxml's wbxml2xml (and xml2wbxml).

The tools come from the Debian package libwbxml2-utils. Locally the tests skip with a reason
when it is absent; in CI (CI=true) they fail instead, because CI installs it.
"""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsq.adapters.wbxml_tool import Wbxml2Xml, WbxmlDecodeError
from mmsq.ota_cp import build_mms_document, encode_wbxml, render_xml
from mmsq.ota_message import prepare_ota_message
from mmsq.ota_profiles import OtaProfile, load_ota_profiles
from tests.ota_tree import EXAMPLE_SETTINGS, EXAMPLE_WBXML, tree_of_doc, tree_of_xml


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian package libwbxml2-utils)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}, and CI requires it", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def wbxml2xml() -> str:
    return _tool("wbxml2xml")


@pytest.fixture(scope="module")
def xml2wbxml() -> str:
    return _tool("xml2wbxml")


def decode(tool: str, body: bytes) -> str:
    """wbxml2xml run directly (not through mmsq's adapter): the XML it reads in ``body``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.wbxml"
        dst = Path(tmp) / "out.xml"
        src.write_bytes(body)
        done = subprocess.run(
            [tool, "-o", str(dst), str(src)], capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return dst.read_text(encoding="utf-8")


def test_worked_example_decodes_to_the_reference_document(wbxml2xml: str) -> None:
    doc = build_mms_document(EXAMPLE_SETTINGS)
    assert tree_of_xml(decode(wbxml2xml, EXAMPLE_WBXML)) == tree_of_doc(doc)


@pytest.mark.parametrize("compact", [False, True], ids=["kannel", "compact"])
def test_shipped_profile_message_decodes_to_its_own_xml(wbxml2xml: str, compact: bool) -> None:
    profile = load_ota_profiles().get().model_copy(update={"compact_wbxml": compact})
    message = prepare_ota_message(profile, imsi="460001234567890")
    # The body as a handset gets it: reassembled from the SMS, past the WSP header.
    pdu = b"".join(s.payload for s in message.segments)
    body = pdu[3 + pdu[2] :]
    assert body == message.wbxml
    assert tree_of_xml(decode(wbxml2xml, body)) == tree_of_xml(message.xml)


def test_our_bytes_equal_libwbxml_encoding_of_our_xml(xml2wbxml: str, tmp_path: Path) -> None:
    doc = build_mms_document(EXAMPLE_SETTINGS)
    (tmp_path / "doc.xml").write_text(render_xml(doc), encoding="utf-8")
    subprocess.run(
        [
            xml2wbxml,
            "-n",
            "-v",
            "1.3",
            "-o",
            str(tmp_path / "doc.wbxml"),
            str(tmp_path / "doc.xml"),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert (tmp_path / "doc.wbxml").read_bytes() == encode_wbxml(doc)


def test_preview_adapter_decodes_and_reports_broken_input(wbxml2xml: str) -> None:
    tool = Wbxml2Xml(wbxml2xml)
    assert tree_of_xml(tool.decode(EXAMPLE_WBXML)) == tree_of_doc(
        build_mms_document(EXAMPLE_SETTINGS)
    )
    with pytest.raises(WbxmlDecodeError, match="wbxml2xml failed"):
        tool.decode(EXAMPLE_WBXML[:20])


# Printable text: no control characters, surrogates or unassigned code points (none of which
# an XML document can carry), any script, markup characters included.
printable = st.text(st.characters(exclude_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=24)
ids = st.from_regex(r"\A[A-Za-z0-9_.-]{1,12}\Z")
url_path = st.text(
    st.sampled_from(string.ascii_letters + string.digits + string.punctuation), max_size=30
)


@st.composite
def profiles(draw: Any) -> OtaProfile:
    host = draw(st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,20}\Z"))
    auth = draw(
        st.none()
        | st.fixed_dictionaries(
            {
                "auth_type": st.sampled_from(["PAP", "CHAP"]),
                "auth_name": printable,
                "auth_secret": printable,
            }
        )
    )
    return OtaProfile.model_validate(
        {
            "name": draw(printable),
            "apn": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9.-]{0,30}\Z")),
            "proxy_address": str(draw(st.ip_addresses(v=4))),
            "proxy_port": draw(st.integers(1, 65535)),
            "mmsc_url": f"{draw(st.sampled_from(['http', 'https']))}://{host}/{draw(url_path)}",
            "napid": draw(ids),
            "proxy_id": draw(ids),
            "physical_proxy_id": draw(ids),
            "bearer": draw(st.none() | st.just("GSM-GPRS")),
            "port_service": draw(st.none() | st.just("OTA-HTTP-PO")),
            "application_name": draw(st.none() | printable),
            "nap_auth": auth,
            "compact_wbxml": draw(st.booleans()),
        }
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=profiles())
def test_any_printable_profile_round_trips_through_wbxml2xml(
    wbxml2xml: str, profile: OtaProfile
) -> None:
    doc = build_mms_document(profile.settings())
    body = encode_wbxml(doc, compact=profile.compact_wbxml)
    assert tree_of_xml(decode(wbxml2xml, body)) == tree_of_doc(doc)

"""Test helpers for OMA CP: the reference worked example and a semantic view of the XML.

The comparison reads XML with defusedxml into nested tuples of (characteristic type, items)
and (parm name, value), so two documents compare equal whatever their whitespace, quoting
or declaration.
"""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as SafeET

from mmsq.ota_cp import Characteristic, MmsSettings, NapAuth, Parm, ProvisioningDoc

# The MMS settings of the reference's worked example (ota-cp reference §4).
EXAMPLE_SETTINGS = MmsSettings(
    name="Example MMS",
    apn="mms.example.net",
    proxy_address="10.1.2.3",
    proxy_port=8080,
    mmsc_url="http://mmsc.example.net/mms",
    bearer="GSM-GPRS",
    nap_auth=NapAuth("PAP", "mms", "mms"),
    application_name="Example MMS",
)

# Kannel's test_ota output and `xml2wbxml -n -v 1.3` for that document, 309 octets.
EXAMPLE_WBXML = bytes.fromhex(
    "030b6a00c54601c65601870706034578616d706c65204d4d53000101c6550187"
    "1106034d4d535f4e41500001871006ab01870706034578616d706c65204d4d53"
    "0001870806036d6d732e6578616d706c652e6e657400018709068901c65a0187"
    "0c069a01870d06036d6d730001870e06036d6d7300010101c65101871506034d"
    "4d535f50524f58590001870706034578616d706c65204d4d530001c65201872f"
    "06034d4d535f50585000018720060331302e312e322e33000187210685018722"
    "06034d4d535f4e41500001c6530187230603383038300001010101c600015501"
    "8736000006037734000187000139000006034d4d535f50524f58590001870001"
    "3400000603687474703a2f2f6d6d73632e6578616d706c652e6e65742f6d6d73"
    "0001870706034578616d706c65204d4d5300010101"
)

# A vendor document from the NowSMS "NETWPIN calculation" thread (the reference §2.1).
NOWSMS_WBXML = bytes.fromhex(
    "030B6A0674657374310045C6560187070683000101C655018707068300018711060374657374315F4E"
    "415049440001871006AB0187080603746573743200018709068901871401C65A01870C069A01870D06"
    "0367707273757365726E616D650001870E06036770727370617373776F72640001010101"
)


def tree_of_xml(text: str | bytes) -> Any:
    """The characteristic/parm tree of an XML provisioning document."""
    root = SafeET.fromstring(text)
    assert root.tag == "wap-provisioningdoc", root.tag
    return ("doc", root.get("version"), tuple(_element(e) for e in root))


def _element(e: Any) -> Any:
    if e.tag == "parm":
        return ("parm", e.get("name"), e.get("value"))
    assert e.tag == "characteristic", e.tag
    return ("characteristic", e.get("type"), tuple(_element(c) for c in e))


def tree_of_doc(doc: ProvisioningDoc) -> Any:
    """The same tree built straight from the model, for comparison with decoded XML."""
    return ("doc", doc.version, tuple(_item(c) for c in doc.characteristics))


def _item(item: Characteristic | Parm) -> Any:
    if isinstance(item, Parm):
        return ("parm", item.name, item.value)
    return ("characteristic", item.type, tuple(_item(i) for i in item.items))

"""The ECN field of the IPv4 header (RFC 3168 5): reading it and marking it."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from userstack.wire import IPPROTO_TCP, IPv4Packet, WireError
from userstack.wire.ipv4 import Ecn, ecn_of, with_ecn


def test_every_codepoint_round_trips_with_a_valid_checksum() -> None:
    packet = IPv4Packet(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), IPPROTO_TCP,
                        payload=b"x" * 20, tos=0xB8 | Ecn.ECT_0, options=b"\x01" * 4).build()
    assert ecn_of(packet) is Ecn.ECT_0
    for ecn in Ecn:
        marked = with_ecn(packet, ecn)
        parsed = IPv4Packet.parse(marked)  # raises on a bad header checksum
        assert ecn_of(marked) is ecn and parsed.tos == 0xB8 | ecn  # DSCP (EF) untouched
        assert parsed.payload == b"x" * 20 and parsed.options == b"\x01" * 4


def test_marking_refuses_what_is_not_an_ipv4_header() -> None:
    for bad in (b"", b"\x45" + b"\0" * 10, b"\x65" + b"\0" * 30, b"\x4f" + b"\0" * 30):
        with pytest.raises(WireError):
            with_ecn(bad, Ecn.CE)

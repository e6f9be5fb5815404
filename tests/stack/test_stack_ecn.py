"""ECN through the stack (RFC 3168 5, 6.1): the connection's codepoint reaches the IP
header (IPv4's TOS byte, IPv6's traffic class) beside the DiffServ bits, and a CE mark a
router put there reaches the receiving connection, which echoes it with ECE."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv6Address

import pytest
from stack_helpers import PEER, PEER6, US, US6, Address, connected_pair

from userstack.tcp.config import EcnMode
from userstack.wire.ipv4 import Ecn, with_ecn
from userstack.wire.ipv6 import IPv6Packet
from userstack.wire.packet import parse_tcp_packet
from userstack.wire.tcp import TcpFlags


def mark_ce(packet: bytes) -> bytes:
    """What a router with a filling queue does to an ECN-capable packet (RFC 3168 5)."""
    if packet[0] >> 4 == 6:
        ip = IPv6Packet.parse(packet)
        return replace(ip, traffic_class=ip.traffic_class | Ecn.CE).build()
    return with_ecn(packet, Ecn.CE)


@pytest.mark.parametrize("us, peer", [(US, PEER), (US6, PEER6)], ids=["ipv4", "ipv6"])
def test_ect_out_ce_in_ece_back(us: Address, peer: Address) -> None:
    server, client, conn, accepted = connected_pair(us, peer, ecn=EcnMode.ON, tos=0x28,
                                                    nagle=False)
    conn.send(b"x" * 100, 0.1)
    [data] = client.take_packets()
    ip, seg = parse_tcp_packet(data)
    tclass = ip.traffic_class if isinstance(ip.dst, IPv6Address) else ip.tos
    assert tclass == 0x28 | Ecn.ECT_0 and seg.payload == b"x" * 100  # DiffServ kept
    server.receive_packet(mark_ce(data), 0.2)
    assert accepted.receive(1000, 0.2) == b"x" * 100
    [ack] = server.take_packets()
    ip, seg = parse_tcp_packet(ack)
    assert seg.flags & TcpFlags.ECE and ip.ecn == Ecn.NOT_ECT  # a pure ACK is never ECT
    client.receive_packet(ack, 0.3)
    conn.send(b"y" * 100, 0.4)
    [after] = client.take_packets()
    assert parse_tcp_packet(after)[1].flags & TcpFlags.CWR  # the sender reduced

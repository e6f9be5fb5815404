"""ECN end to end between two stacks (RFC 3168): the fault link marks CE instead of dropping
(`ce`), on real IPv4 packets, so the ECT(0) the sender's core chose must reach the IP header,
the mark must reach the receiver's core, and its ECE must come back. A transfer through
congestion marks alone arrives intact without a single retransmission."""

from __future__ import annotations

import hashlib

import trio
import trio.testing
from streams_helpers import connect_pair, pattern, send_and_receive, start_stacks

from userstack import TcpConfig
from userstack.observe.hooks import Direction
from userstack.tcp.config import EcnMode
from userstack.wire.ipv4 import Ecn
from userstack.wire.offload import LinkPacket, link_packet_bytes
from userstack.wire.packet import parse_tcp_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags

SIZE = 1_000_000


class Sent:
    """An Observer of the client's packets out: data sent again, CWRs, ECT(0) data."""

    def __init__(self) -> None:
        self.highest: SeqNum | None = None
        self.retransmissions = self.cwr = self.ect = self.data = 0

    def packet(self, direction: Direction, packet: LinkPacket, now: float) -> None:
        if direction is not Direction.OUT:
            return
        ip, seg = parse_tcp_packet(link_packet_bytes(packet))
        if not seg.payload:
            return
        self.data += 1
        self.ect += ip.ecn == Ecn.ECT_0
        self.cwr += bool(seg.flags & TcpFlags.CWR)
        end = seg.seq + len(seg.payload)
        if self.highest is not None and seg.seq < self.highest:
            self.retransmissions += 1
        if self.highest is None or end > self.highest:
            self.highest = end

    def state_changed(self, *args: object) -> None:
        pass


async def test_ce_marks_slow_the_sender_without_a_retransmission(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent = Sent()
    config = TcpConfig(ecn=EcnMode.ON)  # the client asks; the server's default accepts
    async with trio.open_nursery() as nursery:
        client, server, client_link, _ = await start_stacks(
            nursery, client_config=config, observer=sent, ce=0.02, delay=0.01, seed=3
        )
        a, b = await connect_pair(client, server)
        data = pattern(SIZE, 5)
        with trio.fail_after(600):  # virtual seconds
            _, got = await send_and_receive(a, b, data, b"")
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        marked = client_link.send_counters.marked
        print(f"data segments {sent.data}, marked CE {marked}, CWR {sent.cwr}, "
              f"retransmissions {sent.retransmissions}")
        assert sent.ect == sent.data  # every data segment was new data, so ECT(0)
        assert marked > sent.cwr > 0  # reductions: fewer than marks (once per window)
        assert sent.retransmissions == 0
        nursery.cancel_scope.cancel()

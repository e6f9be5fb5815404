"""A passive OPEN beside existing connections on the same port (RFC 9293 3.9.1)."""

from __future__ import annotations

from stack_helpers import ACK, PEER, SYN, make_stack, packet, replies, seg

from userstack.tcp.state import State
from userstack.wire.addr import Endpoint


def test_listen_on_the_port_of_a_connection_in_syn_sent() -> None:
    """MUST-42: the LISTEN is allowed, and both go on: the SYN-SENT connection gets its
    SYN,ACK, the listener a SYN from elsewhere."""
    stack = make_stack()
    conn = stack.connect(Endpoint(PEER, 80), 0.0)
    (syn,) = replies(stack)
    port = conn.local.port
    assert conn.state is State.SYN_SENT
    assert stack.listen(port, 1) == port
    stack.receive_packet(packet(seg(80, port, SYN | ACK, seq=7000, ack=syn.seq.value + 1)), 0.1)
    assert conn.state is State.ESTABLISHED
    assert [s.flags for s in replies(stack)] == [ACK]
    stack.receive_packet(packet(seg(5555, port, SYN, seq=100)), 0.2)
    (syn_ack,) = replies(stack)
    assert syn_ack.flags == SYN | ACK and syn_ack.dst_port == 5555

"""Stacks on a multi-queue TUN: disjoint ephemeral slices, and no RST for another queue's flow."""

from __future__ import annotations

import itertools

import pytest
from stack_helpers import ACK, KEY, PEER, RST, SYN, US, packet, replies, seg, shuttle

from userstack.stack import QueueShare, Stack
from userstack.stack.ports import EPHEMERAL_HIGH, EPHEMERAL_LOW
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_slices_are_disjoint_cover_the_range_and_name_their_owner(count: int) -> None:
    shares = [QueueShare(i, count) for i in range(count)]
    slices = [share.ports for share in shares]
    assert slices[0][0] == EPHEMERAL_LOW and slices[-1][1] == EPHEMERAL_HIGH
    for (_, high), (low, _) in itertools.pairwise(slices):
        assert low == high + 1  # adjacent, no overlap, no gap
    for share in shares:
        low, high = share.ports
        for port in (low, (low + high) // 2, high):
            assert all(other.owner(port) == share.index for other in shares)
            assert not share.owned_elsewhere(port)
            assert all(other.owned_elsewhere(port) for other in shares if other is not share)
    assert shares[0].owner(EPHEMERAL_LOW - 1) is None  # a served port belongs to nobody


@pytest.mark.parametrize(("index", "count", "low", "high"),
                         [(2, 2, EPHEMERAL_LOW, EPHEMERAL_HIGH), (-1, 2, EPHEMERAL_LOW,
                          EPHEMERAL_HIGH), (0, 0, EPHEMERAL_LOW, EPHEMERAL_HIGH), (0, 3, 10, 11)])
def test_impossible_shares_are_refused(index: int, count: int, low: int, high: int) -> None:
    with pytest.raises(ValueError):
        QueueShare(index, count, low, high)


def queue_stack(index: int, count: int = 2) -> Stack:
    return Stack(US, key=KEY, queue=QueueShare(index, count))


def test_a_queue_stack_connects_from_its_own_slice() -> None:
    for index in range(2):
        stack = queue_stack(index)
        low, high = QueueShare(index, 2).ports
        ports = {stack.connect(Endpoint(PEER, 80 + n), 0.0).local.port for n in range(50)}
        assert all(low <= port <= high for port in ports)


def test_a_segment_for_another_queues_port_is_dropped_not_reset() -> None:
    """RFC 9293 3.10.7.1 would answer with RST; but queue 1's stack may own this four-tuple
    (it opened it from its slice), and the RST would kill that connection."""
    stack = queue_stack(0)
    elsewhere = QueueShare(1, 2).ports[0] + 5
    stack.receive_packet(packet(seg(80, elsewhere, ACK, seq=7, ack=5000, payload=b"x")), 0.0)
    assert replies(stack) == []
    assert stack.counters.other_queue_drops == 1
    assert stack.counters.rst_sent == 0


@pytest.mark.parametrize("port", [QueueShare(0, 2).ports[0] + 5, 8080])
def test_a_segment_for_our_own_slice_or_a_closed_port_is_still_reset(port: int) -> None:
    stack = queue_stack(0)
    stack.receive_packet(packet(seg(80, port, ACK, seq=7, ack=5000, payload=b"x")), 0.0)
    assert replies(stack) == [seg(port, 80, RST, seq=5000, ack=0, window=0)]
    assert stack.counters.other_queue_drops == 0




def test_every_queue_listens_and_the_shared_key_gives_the_same_isn() -> None:
    """The same SYN at the same moment gets the same ISS from either queue's stack (RFC 6528's
    F() is keyed by the secret they share), and either completes the handshake."""
    peer = Stack(PEER, key=bytes(16))
    isses = []
    for index in range(2):
        stack = queue_stack(index)
        stack.listen(80, 4)
        stack.receive_packet(packet(seg(40000, 80, SYN, seq=100)), 1.0)
        (syn_ack,) = replies(stack)
        isses.append(syn_ack.seq)
    assert isses[0] == isses[1]
    server = queue_stack(1)
    server.listen(80, 4)
    conn = peer.connect(Endpoint(US, 80), 0.0)
    shuttle(peer, server, 0.0)
    assert server.accept(80) is not None and conn.state.name == "ESTABLISHED"


@pytest.mark.parametrize(("count", "syns"), [(1, 1), (2, 2)])
def test_with_other_queues_an_active_open_sends_its_syn_twice(count: int, syns: int) -> None:
    """The local kernel answers a SYN before the TUN records its queue, so the first SYN,ACK
    may go to another queue; the same SYN again gets one steered back (docs/scaling.md)."""
    stack = Stack(US, key=KEY, queue=QueueShare(0, count))
    conn = stack.connect(Endpoint(PEER, 80), 0.0)
    sent = replies(stack)
    assert len(sent) == syns and all(s.flags == SYN for s in sent)
    assert len({(s.seq, s.src_port) for s in sent}) == 1  # one SYN, repeated
    assert conn.state is State.SYN_SENT

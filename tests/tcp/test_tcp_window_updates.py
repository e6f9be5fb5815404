"""When a read sends a window update of its own, and when the window rides on the next ACK.

Receiver SWS avoidance (RFC 9293 3.8.6.2.2, RFC 1122 4.2.3.3) says how far the right edge
must move before it may move at all; `Receiver.window_update_due` also waits, after a read,
until the window at least doubles what the peer has left, as Linux's tcp_cleanup_rbuf:
until then the peer is not held up, and its data draws ACKs (RFC 5681 4.2) that carry the
new edge. Without window scaling the field says at most 65535: a read that frees more has
nothing more to announce.
"""

from __future__ import annotations

from tcp_harness import IRS, ISS, MSS, established, expect, expect_nothing, out, seg, send

from userstack.tcp.config import TcpConfig
from userstack.wire.tcp import TcpOptions

BUFFER = 64000  # fits the 16-bit field: no scaling needed
DELAYED = TcpConfig(mss=MSS, recv_buffer=BUFFER, send_buffer=16000, delayed_ack=0.2)


def test_a_prompt_reader_sends_no_update_of_its_own() -> None:
    """Each segment read as it comes: the only segments out are the ACKs of every second
    one, each with the edge moved (before: one window update per read)."""
    conn = established(DELAYED)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"a" * MSS))
    expect_nothing(conn)  # delayed
    assert conn.receive(MSS, 0.0) == b"a" * MSS
    expect_nothing(conn)  # the peer still has 63000 of 64000: no update
    send(conn, seg(IRS + 1 + MSS, ISS + 1, payload=b"b" * MSS))
    expect(conn, [out(ISS + 1, IRS + 1 + 2 * MSS, window=BUFFER - MSS)])  # every second
    conn.receive(MSS, 0.0)
    expect_nothing(conn)


def test_one_ack_per_super_segment_and_none_after_the_read() -> None:
    """A coalesced train (TSO/GRO) of 44 segments is ACKed at once (RFC 5681 4.2); reading
    it leaves the peer most of a 256 KiB window, so the read sends nothing."""
    cfg = TcpConfig(mss=MSS, recv_buffer=256 * 1024, delayed_ack=0.2)
    conn = established(cfg, peer_options=TcpOptions(mss=MSS, window_scale=7))
    shift = conn.tcb.rcv_wscale
    assert shift > 0
    train = b"t" * (44 * MSS)
    left = (256 * 1024 - len(train)) >> shift  # the window field after one unread train
    send(conn, seg(IRS + 1, ISS + 1, payload=train))
    expect(conn, [out(ISS + 1, IRS + 1 + len(train), window=left)])
    assert conn.receive(1 << 20, 0.0) == train
    expect_nothing(conn)
    send(conn, seg(IRS + 1 + len(train), ISS + 1, payload=train))
    expect(conn, [out(ISS + 1, IRS + 1 + 2 * len(train), window=left)])


def test_a_reader_that_fell_behind_announces_at_once() -> None:
    """Unread data closed the window to less than half: the read that frees it sends the
    update at once, so the peer is not left waiting."""
    conn = established(DELAYED)
    for i in range(40):
        send(conn, seg(IRS + 1 + i * MSS, ISS + 1, payload=b"c" * MSS))
    acks = conn.take_outgoing()
    assert len(acks) == 20 and acks[-1].window == BUFFER - 40 * MSS  # every second, shrinking
    conn.receive(1 << 20, 0.0)
    expect(conn, [out(ISS + 1, IRS + 1 + 40 * MSS, window=BUFFER)])


def test_without_window_scaling_the_65535_cap_leaves_nothing_to_announce() -> None:
    """A 256 KiB buffer without scaling offers at most 65535. A read of 100 bytes that the
    field cannot show sends nothing (before: an update moving the edge 100 bytes, against
    receiver SWS avoidance), and the delayed ACK keeps the edge where it was."""
    cfg = TcpConfig(mss=MSS, recv_buffer=256 * 1024, delayed_ack=0.2, window_scale=False)
    conn = established(cfg)
    assert conn.tcb.rcv_wnd == 0xFFFF
    send(conn, seg(IRS + 1, ISS + 1, payload=b"d" * 100))
    conn.receive(100, 0.0)
    expect_nothing(conn)
    conn.on_timer(0.2)  # the delayed ACK
    expect(conn, [out(ISS + 1, IRS + 101, window=0xFFFF - 100)])

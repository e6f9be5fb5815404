"""Coalesced trains: a segment longer than the MSS, as an offloading link hands it up.

With TSO/GSO on the far side and no segmentation on the way, the kernel hands the stack one
TCP segment of up to 64 KB. It is what it is, a train of full-sized segments, so the ACK
policy counts it in MSS units (RFC 5681 4.2: at least every second full-sized segment;
RFC 9293 3.8.6.3 SHLD-19) and ACKs it at once instead of waiting for a second segment.
"""

from __future__ import annotations

from tcp_harness import IRS, ISS, MSS, established, expect, expect_nothing, out, seg, send

from userstack.tcp.config import TcpConfig

DELACK = TcpConfig(mss=MSS, recv_buffer=64000, send_buffer=16000, delayed_ack=0.2)


def test_a_train_of_two_full_segments_is_acked_at_once() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"t" * (2 * MSS)))
    expect(conn, [out(ISS + 1, IRS + 1 + 2 * MSS, window=64000 - 2 * MSS)])
    assert conn.receive(1 << 20, 0.0) == b"t" * (2 * MSS)


def test_a_long_train_is_taken_whole_and_acked_once() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"g" * (45 * MSS)))
    expect(conn, [out(ISS + 1, IRS + 1 + 45 * MSS, window=64000 - 45 * MSS)])
    assert conn.info(0.0).recv_q == 45 * MSS


def test_a_train_shorter_than_two_segments_counts_as_one() -> None:
    conn = established(DELACK)
    send(conn, seg(IRS + 1, ISS + 1, payload=b"s" * (MSS + MSS // 2)))
    expect_nothing(conn)  # one full-sized segment and a bit: the ACK may wait
    send(conn, seg(IRS + 1 + MSS + MSS // 2, ISS + 1, payload=b"s" * 10))
    expect(conn, [out(ISS + 1, IRS + 11 + MSS + MSS // 2, window=64000 - MSS - MSS // 2 - 10)])


def test_the_receive_buffer_copies_a_train_at_most_once() -> None:
    from userstack.tcp.buffers import ReceiveBuffer

    buf = ReceiveBuffer(1 << 20)
    train, tail = bytes(range(256)) * 254, b"tail"
    assert buf.insert(0, train, 1 << 20) == len(train)
    assert buf.insert(0, tail, 1 << 20) == 4
    assert len(buf) == len(train) + 4 and buf.space == (1 << 20) - len(train) - 4
    assert buf.read(len(train)) is train  # a whole segment: handed out as it came
    assert buf.read(2) == b"ta" and buf.read(100) == b"il"  # split: the rest stays
    assert buf.insert(0, train, 1 << 20) == len(train)
    assert buf.insert(0, tail, 1 << 20) == 4
    assert buf.read(1 << 20) == train + tail  # spanning two: one join
    assert buf.read(10) == b"" and len(buf) == 0

"""The Sender with a link that cuts super-segments (TSO/GSO), on its own.

`Sender.max_packet` says the link cuts IPv4 packets up to that long into MSS-sized ones:
then one segment carries as many whole MSS as fit, within cwnd, the peer's window and
Nagle; a lost one is resent in MSS parts when cwnd cannot hold it whole; cwnd grows by
the ACKs its pieces would have drawn (congestion.py).
"""

from __future__ import annotations

from test_tcp_sender import DP, ISS, MSS, D, ack, make_sender, snapshot

from userstack.tcp.congestion import Reno
from userstack.tcp.sack import Scoreboard
from userstack.tcp.timers import Timer

MAX_PACKET = 65535
LARGEST = (MAX_PACKET - 80) // MSS * MSS  # 65000: whole MSS under the longest headers


def test_largest_segment_is_whole_mss_under_one_ipv4_packet() -> None:
    sender, _, _ = make_sender(sack=True)
    assert sender.largest_segment() == MSS  # no link segmentation: one MSS
    sender.max_packet = MAX_PACKET
    assert sender.largest_segment() == LARGEST
    sender.max_packet = 2 * MSS + 79  # not room for two whole pieces: not worth it
    assert sender.largest_segment() == MSS


def test_one_super_segment_fills_cwnd_and_the_rest_waits_for_the_window() -> None:
    sender, wire, timers = make_sender(sack=True, window=200_000)
    sender.max_packet = MAX_PACKET
    sender.cc.cwnd = 150_500
    sender.write(b"x" * 200_000, urgent=False)
    sender.output(1.0)
    # 65000 + 65000, then 20500 of cwnd left: 20000 in whole MSS, the runt 500 waits
    assert wire.take() == [(1, D, LARGEST), (65001, D, LARGEST), (130001, D, 20000)]
    assert snapshot(sender, timers)["nxt"] == 150001
    assert [(s.start - ISS, s.length) for s in sender.board.segments] == [
        (1, LARGEST), (65001, LARGEST), (130001, 20000)]


def test_the_last_of_the_data_goes_as_it_is_with_psh() -> None:
    sender, wire, _ = make_sender(sack=True)
    sender.max_packet = MAX_PACKET
    sender.write(b"x" * 3500, urgent=False)
    sender.output(1.0)
    assert wire.take() == [(1, DP, 3500)]  # IW 4000 holds it all: one segment


def test_a_lost_super_segment_is_resent_in_mss_parts_after_an_rto() -> None:
    sender, wire, timers = make_sender(sack=True, window=200_000)
    sender.max_packet = MAX_PACKET
    sender.cc.cwnd = 70_000
    sender.write(b"x" * LARGEST, urgent=False)
    sender.output(1.0)
    assert wire.take() == [(1, DP, LARGEST)]
    rto = timers.at(Timer.RETRANSMIT)
    assert rto is not None
    timers.cancel(Timer.LOSS_PROBE)
    sender.back_off()
    sender.on_retransmit_timeout(rto)
    sender.output(rto)  # cwnd = 1 MSS: only the first MSS of it fits
    assert wire.take() == [(1, D, MSS)]
    assert snapshot(sender, timers)["lost"] == LARGEST - MSS
    sender.on_ack(ack(1 + MSS), 200_000, rto + 0.1)  # cwnd 2 MSS: two more parts
    sender.output(rto + 0.1)
    assert wire.take() == [(1 + MSS, D, 2 * MSS)]  # resent as one super-segment of two


def test_scoreboard_split_keeps_the_marks_and_the_counts() -> None:
    board = Scoreboard()
    board.sent(ISS, ISS + 3000, 1.0)
    board.mark_all_lost()
    [s] = board.segments
    board.split(s, ISS + 1000)
    assert [(x.start - ISS, x.end - ISS, x.lost) for x in board.segments] == [
        (0, 1000, True), (1000, 3000, True)]
    assert board.lost == 3000
    board.resent(ISS, ISS + 1000, 2.0)
    assert board.lost == 2000 and board.segments[0].retransmitted


def test_an_ack_for_a_train_grows_cwnd_as_its_pieces_acks_would() -> None:
    cc = Reno(MSS)
    cc.cwnd, cc.ssthresh = 10_000, 100_000
    cc.on_ack(20 * MSS, 0.0, rtt=None)  # 20 pieces: ACKed every second one, 10 ACKs
    assert cc.cwnd == 10_000 + 10 * MSS
    cc.on_ack(2 * MSS, 0.0, rtt=None)  # an ordinary delayed ACK: one SMSS (L = 1)
    assert cc.cwnd == 21_000
    cc.cwnd, cc.ssthresh = 50_000, 40_000  # congestion avoidance: 10 ACKs' increments
    cc.on_ack(20 * MSS, 0.0, rtt=None)
    assert cc.cwnd == 50_000 + 10 * (MSS * MSS // 50_000)

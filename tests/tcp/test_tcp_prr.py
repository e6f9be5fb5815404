"""Proportional Rate Reduction (RFC 6937): the arithmetic, and the two examples of its
section 3.1 replayed ACK by ACK.

The examples: 20 segments in flight, cwnd = FlightSize = pipe = 20, ssthresh set to 10 at
the start of recovery, Limited Transmit sending one new segment on each of the first two
duplicate ACKs, fast retransmit on the third. Each ACK reports one segment delivered (a
SACK). `pipe` is RFC 6675's estimate after the ACK, before what the ACK lets out. The
examples count in segments, so the replay does too (SMSS = 1).
"""

from __future__ import annotations

from tcp_harness import IRS, ISS, MSS, NODELAY, established, seg, send

from userstack.tcp.prr import Prr
from userstack.wire.tcp import TcpOptions

SMSS = 1000


def _replay(lost: int, *, conservative: bool) -> tuple[list[int], list[int]]:
    """The RFC's scenario with segments 0..lost-1 lost: (pipe, segments sent) per ACK,
    for the ACKs of the segments that arrived."""
    pipe, last_sent = 20, 0
    prr: Prr | None = None
    pipes, sent = [], []
    for n, _ in enumerate(range(lost, 20), start=1):
        pipe += last_sent - 1  # the segment this ACK SACKs has left the network
        if n < 3:
            send = 1  # Limited Transmit (RFC 3042)
        else:
            if prr is None:  # the third duplicate ACK: recovery begins
                pipe -= lost  # RFC 6675 IsLost: the holes below three SACKed segments
                prr = Prr(10, 20, 1, conservative=conservative)
            send = prr.on_ack(1, pipe)
            prr.on_sent(send)
        pipes.append(pipe)
        sent.append(send)
        last_sent = send
    return pipes, sent


def test_single_loss_spreads_the_reduction_over_the_round_trip() -> None:
    """RFC 6937 3.1, first example (segment 0 lost): PRR sends N N R, then one segment
    for every two delivered, where RFC 6675 would fall silent for half the window."""
    for conservative in (False, True):  # the same with either bound for one loss
        pipes, sent = _replay(1, conservative=conservative)
        # acks of segments 1..19; the RFC's "sent" row begins N N R _ N _ N _ N _ N _ N _ N
        assert sent == [1, 1, 1] + [0, 1] * 7 + [0, 0]
        assert pipes[:4] == [19, 19, 18, 18]
        # The window ends at exactly ssthresh ("PRR will converge to exactly the target
        # window chosen by the congestion control algorithm", RFC 6937 4). The RFC's figure
        # differs in its last three columns: it marks sends at ACKs 18 and 19 as
        # "sndcnt = ssthresh - pipe" beside a pipe of 11 and 10, which that formula makes 0;
        # this follows the formula.
        assert pipes[-1] + sent[-1] == 10


def test_proportional_part_sends_ssthresh_over_recover_fs() -> None:
    """While pipe > ssthresh, after RecoverFS bytes delivered exactly ssthresh has gone."""
    prr = Prr(ssthresh=14 * SMSS, recover_fs=20 * SMSS, smss=SMSS)  # CUBIC's 0.7
    total = 0
    for _ in range(20):
        n = prr.on_ack(SMSS, 18 * SMSS)  # pipe stays above ssthresh
        prr.on_sent(n)
        total += n
    assert total == 14 * SMSS == prr.prr_out
    assert prr.prr_delivered == 20 * SMSS
    # CEIL to whole segments: the first delivered byte already earns a segment
    first = Prr(ssthresh=10 * SMSS, recover_fs=20 * SMSS, smss=SMSS)
    assert first.on_ack(1, 15 * SMSS) == SMSS


def test_burst_loss_prr_crb() -> None:
    """RFC 6937 3.1, second example (segments 0-14 lost), PRR-CRB: each of the three
    ACKs after fast retransmit lets out exactly what it delivered (RB "b")."""
    pipes, sent = _replay(15, conservative=True)
    assert pipes == [19, 19, 4, 4, 4]
    assert sent == [1, 1, 1, 1, 1]  # N N R R R


def test_burst_loss_prr_ssrb() -> None:
    """The same with PRR-SSRB: one segment more than delivered per ACK (RB "bd", "d", "d"),
    so pipe grows back towards ssthresh as in slow start."""
    pipes, sent = _replay(15, conservative=False)
    assert pipes == [19, 19, 4, 5, 6]
    assert sent == [1, 1, 2, 2, 2]  # N N 2R 2R 2R


def test_reduction_bound_never_exceeds_ssthresh_minus_pipe() -> None:
    prr = Prr(ssthresh=10 * SMSS, recover_fs=20 * SMSS, smss=SMSS)
    prr.on_sent(0)
    assert prr.on_ack(8 * SMSS, 9 * SMSS) == SMSS  # MIN(ssthresh - pipe = 1 SMSS, limit 9)
    # a stretch of nothing delivered and pipe over ssthresh: nothing, never negative
    prr.on_sent(5 * SMSS)
    assert prr.on_ack(0, 12 * SMSS) == 0


def test_connection_follows_the_rfc_figure_for_a_single_loss() -> None:
    """The first example of RFC 6937 3.1 on a real connection (SACK, RACK-TLP): 20
    segments in flight, the first lost, each later one SACKed by its own ACK. The
    segments sent per ACK are the figure's "sent" row: N N R, then one segment for every
    second ACK, and none in the last columns, where the figure's "s" marks disagree with
    its own formula (see the replay above: this is the same row). The two segments
    Limited Transmit sent are not in FlightSize (RFC 5681 3.2 (2), RFC 6675 5 (4.2)):
    ssthresh = 20 / 2 = 10 and RecoverFS = 20, as in the RFC's example, not 22 / 2."""
    conn = established(NODELAY, peer_window=60000, peer_options=TcpOptions(
        mss=MSS, sack_permitted=True), rtt=0.1)
    conn.sender.cc.cwnd = 20 * SMSS
    conn.send(b"d" * 60000, 0.0)
    assert len(conn.take_outgoing()) == 20
    row = []
    for k in range(1, 20):
        sack = TcpOptions(sack_blocks=((ISS + 1001, ISS + 1001 + k * SMSS),))
        send(conn, seg(IRS + 1, ISS + 1, window=60000, options=sack), at=0.1 + k * 0.001)
        sent = [s for s in conn.take_outgoing() if s.payload]
        row.append("".join("R" if s.seq == ISS + 1 else "N" for s in sent) or "_")
    assert " ".join(row) == "N N R _ N _ N _ N _ N _ N _ N _ N _ _"
    assert conn.sender.cc.ssthresh == 10 * SMSS

"""RFC 9438 4.9.2 with RFC 3708's detection: a recovery whose every retransmission comes
back D-SACKed was caused by reordering, not loss, and its reduction is undone; one with a
retransmission that really repaired a hole is not."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tcp_harness import ACK, IRS, ISS, MSS, NODELAY, established, seg, send

from userstack.tcp.config import Congestion
from userstack.tcp.connection import Connection
from userstack.tcp.cubic import Cubic
from userstack.tcp.rules import Explainer, Rule
from userstack.tcp.undo import UndoEpisode
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpOptions

WINDOW = 60000


def recovering(congestion: Congestion, queued: int = 40000) -> tuple[Connection, Explainer]:
    """10 segments in flight (of `queued` bytes), the first overtaken by the next three:
    RACK deems it lost, recovery resends it and reduces cwnd."""
    why = Explainer()
    conn = established(replace(NODELAY, congestion=congestion), peer_window=WINDOW,
                       peer_options=TcpOptions(mss=MSS, sack_permitted=True), rtt=0.1)
    conn._why = conn.sender.why = why  # watch the sender's decisions too
    conn.sender.cc.cwnd = 10 * MSS
    conn.send(b"u" * queued, 0.0)
    assert len(conn.take_outgoing()) == 10
    for k in range(1, 4):
        sack = TcpOptions(sack_blocks=((ISS + 1 + MSS, ISS + 1 + (k + 1) * MSS),))
        send(conn, seg(IRS + 1, ISS + 1, ACK, window=WINDOW, options=sack), at=0.1 + k / 1000)
    resent = [s for s in conn.take_outgoing() if s.seq == ISS + 1]
    assert resent and conn.sender.recovery.in_recovery
    assert conn.sender.cc.cwnd < 10 * MSS
    return conn, why


@pytest.mark.parametrize("congestion", list(Congestion))
@pytest.mark.parametrize("queued", [40000, 10 * MSS], ids=["more_to_send", "nothing_left"])
def test_a_recovery_whose_retransmission_is_dsacked_is_undone(
    congestion: Congestion, queued: int
) -> None:
    """With `nothing_left` the recovery was the transfer's last data: the D-SACK comes
    when nothing is in flight, on an ACK that acknowledges nothing new, and is still read
    (RFC 2883)."""
    conn, why = recovering(congestion, queued)
    cc = conn.sender.cc
    # the original arrives after all, and the rest: all that was in flight is ACKed
    recover = conn.sender.recovery.recover
    send(conn, seg(IRS + 1, recover, ACK, window=WINDOW), at=0.12)
    assert not conn.sender.recovery.in_recovery and cc.cwnd < 10 * MSS  # not yet
    nothing_left = queued == 10 * MSS
    assert (conn.tcb.snd_nxt == conn.tcb.snd_una) == nothing_left
    # then the retransmission: the receiver reports it twice (D-SACK below SEG.ACK)
    dsack = TcpOptions(sack_blocks=((ISS + 1, ISS + 1 + MSS),))
    send(conn, seg(IRS + 1, recover, ACK, window=WINDOW, options=dsack), at=0.13)
    assert cc.cwnd == 10 * MSS and cc.ssthresh == 1 << 30  # as before the "loss"
    assert Rule.CC_UNDO in [d.rule for d in why.take()]
    if isinstance(cc, Cubic):
        assert cc.w_max == 0.0 and cc.t_epoch is None  # RFC 9438 4.9.2's variables too
    if nothing_left:
        assert conn.take_outgoing() == [] and conn.next_deadline() is None


@pytest.mark.parametrize("congestion", list(Congestion))
def test_a_retransmission_that_filled_a_hole_is_not_undone(congestion: Congestion) -> None:
    conn, why = recovering(congestion)
    cc = conn.sender.cc
    # the retransmission filled the hole: the cumulative ACK, and no D-SACK ever
    recover = conn.sender.recovery.recover
    send(conn, seg(IRS + 1, recover, ACK, window=WINDOW), at=0.2)
    ssthresh = cc.ssthresh
    send(conn, seg(IRS + 1, recover + MSS, ACK, window=WINDOW), at=0.21)
    assert ssthresh < 1 << 30 and cc.ssthresh == ssthresh
    assert Rule.CC_UNDO not in [d.rule for d in why.take()]


def test_the_episode_strikes_off_what_each_dsack_covers() -> None:
    """A retransmitted super-segment may come back D-SACKed piece by piece."""
    episode = UndoEpisode((0, 0))
    assert not episode.spurious  # nothing resent: nothing to conclude
    episode.on_resend(SeqNum(1000), SeqNum(4000))
    episode.on_resend(SeqNum(9000), SeqNum(10000))
    episode.on_dsack(SeqNum(1000), SeqNum(2000))
    episode.on_dsack(SeqNum(3000), SeqNum(4000))
    assert episode.undecided == [(SeqNum(2000), SeqNum(3000)), (SeqNum(9000), SeqNum(10000))]
    episode.on_dsack(SeqNum(2000), SeqNum(3000))
    assert not episode.spurious
    episode.on_dsack(SeqNum(8000), SeqNum(11000))
    assert episode.spurious and episode.resent == 2

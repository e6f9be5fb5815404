"""The Sender and its two recovery strategies on their own, no Connection around them.

In the style of h11's test_state.py: build the object, feed it one event at a time, and
after each event assert the whole resulting state (`snapshot`) and what it sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from userstack.tcp.config import TcpConfig
from userstack.tcp.reno_recovery import RenoRecovery
from userstack.tcp.sack_recovery import SackRecovery
from userstack.tcp.sender import Sender
from userstack.tcp.tcb import Tcb
from userstack.tcp.timers import Timer, Timers
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

ISS = SeqNum(1000)
MSS = 1000
ACK, PSH, FIN = int(TcpFlags.ACK), int(TcpFlags.PSH), int(TcpFlags.FIN)
D = ACK  # a data segment's flags
DP = ACK | PSH  # the last of the queued data


@dataclass
class Wire:
    """What the sender emitted: (offset from ISS, flags, length)."""

    sent: list[tuple[int, int, int]] = field(default_factory=list)

    def emit(self, seq: SeqNum, flags: int, payload: bytes, now: float) -> None:
        self.sent.append((seq - ISS, flags, len(payload)))

    def take(self) -> list[tuple[int, int, int]]:
        out, self.sent = self.sent, []
        return out


def make_sender(*, sack: bool, window: int = 60000) -> tuple[Sender, Wire, Timers]:
    """A Sender whose SYN was sent at 0.0 and acknowledged at 0.1 (SRTT 0.1 s), started."""
    tcb = Tcb(iss=ISS, snd_una=ISS, snd_nxt=ISS, snd_up=ISS)
    wire, timers = Wire(), Timers()
    sender = Sender(tcb, TcpConfig(mss=MSS, nagle=False), timers, wire, mss=MSS, now=0.0)
    sender.syn_sent(0.0)
    sender.syn_acked(ISS + 1, 0.1)
    tcb.snd_wnd = tcb.max_snd_wnd = window
    sender.start(sack=sack)
    return sender, wire, timers


def ack(n: int, *, window: int = 60000, sack: tuple[tuple[int, int], ...] = ()) -> TcpSegment:
    """The peer's ACK of everything below ISS + n, with SACK blocks as offsets."""
    blocks = tuple((ISS + a, ISS + b) for a, b in sack)
    return TcpSegment(
        80, 40000, SeqNum(1), ISS + n, TcpFlags.ACK, window, TcpOptions(sack_blocks=blocks)
    )


def snapshot(sender: Sender, timers: Timers) -> dict[str, object]:
    """The whole sending state, as offsets from ISS where it is a sequence number."""
    tcb, cc, rec = sender.tcb, sender.cc, sender.recovery
    state: dict[str, object] = {
        "una": tcb.snd_una - ISS,
        "nxt": tcb.snd_nxt - ISS,
        "tx_nxt": sender.tx_nxt - ISS,
        "queued": len(sender.buffer),
        "cwnd": cc.cwnd,
        "ssthresh": cc.ssthresh,
        "in_recovery": rec.in_recovery,
        "recover": rec.recover - ISS,
        "timers": {k.name: round(at, 6) for k in Timer if (at := timers.at(k)) is not None},
        "retries": sender.retries,
    }
    if isinstance(rec, RenoRecovery):
        state |= {"dupacks": rec.dupacks, "partial_acks": rec.partial_acks}
    if isinstance(rec, SackRecovery):
        board = sender.board
        state |= {"sacked": board.sacked, "lost": board.lost, "tlp_end": rec.tlp_end}
    return state


HIGH = 1 << 30  # the "arbitrarily high" initial ssthresh


# ---- the Sender itself ------------------------------------------------------------------


def test_the_handshake_leaves_a_sender_at_iss_plus_one_with_an_rtt_sample() -> None:
    sender, wire, timers = make_sender(sack=False)
    assert snapshot(sender, timers) == {
        "una": 1, "nxt": 1, "tx_nxt": 1, "queued": 0, "cwnd": 4000, "ssthresh": HIGH,
        "in_recovery": False, "recover": 1, "timers": {}, "retries": 0,
        "dupacks": 0, "partial_acks": 0,
    }
    assert sender.rtt.srtt == 0.1 and wire.take() == []


def test_output_sends_by_mss_within_cwnd_and_times_one_segment() -> None:
    sender, wire, timers = make_sender(sack=False)
    assert sender.write(b"x" * 5500, urgent=False) == 5500
    sender.output(1.0)
    assert wire.take() == [(1, D, 1000), (1001, D, 1000), (2001, D, 1000), (3001, D, 1000)]
    assert snapshot(sender, timers) == {
        "una": 1, "nxt": 4001, "tx_nxt": 4001, "queued": 5500, "cwnd": 4000, "ssthresh": HIGH,
        "in_recovery": False, "recover": 1, "timers": {"RETRANSMIT": 2.0}, "retries": 0,
        "dupacks": 0, "partial_acks": 0,
    }
    assert sender.rtt_seq == ISS + 1001 and sender.rtt_sent_at == 1.0  # RFC 6298: one timed


def test_an_ack_frees_the_buffer_grows_cwnd_and_restarts_the_timer() -> None:
    sender, wire, timers = make_sender(sack=False)
    sender.write(b"x" * 5500, urgent=False)
    sender.output(1.0)
    wire.take()
    assert sender.on_ack(ack(2001), 60000, 1.2) == 2000  # bytes freed
    assert snapshot(sender, timers) == {
        "una": 2001, "nxt": 4001, "tx_nxt": 4001, "queued": 3500,
        "cwnd": 5000,  # slow start: one SMSS for this ACK (RFC 3465 L = 1*SMSS)
        "ssthresh": HIGH, "in_recovery": False,
        "recover": 2001,  # covered, so it follows SND.UNA (it must never be left 2^31 behind)
        "timers": {"RETRANSMIT": 2.2}, "retries": 0, "dupacks": 0, "partial_acks": 0,
    }
    sender.output(1.2)
    assert wire.take() == [(4001, D, 1000), (5001, DP, 500)]


def test_retransmission_timeout_goes_back_to_snd_una_in_slow_start() -> None:
    sender, wire, timers = make_sender(sack=False)
    sender.write(b"x" * 3000, urgent=False)
    sender.output(1.0)
    wire.take()
    sender.back_off()
    sender.on_retransmit_timeout(2.0)
    assert snapshot(sender, timers) == {
        "una": 1, "nxt": 3001, "tx_nxt": 1, "queued": 3000,
        "cwnd": 1000, "ssthresh": 2000,  # LW = 1 SMSS; max(FlightSize/2, 2*SMSS)
        "in_recovery": False, "recover": 3001, "timers": {"RETRANSMIT": 2.0}, "retries": 1,
        "dupacks": 0, "partial_acks": 0,
    }
    sender.output(2.0)  # the first segment again (RFC 6298 (5.4)); the timer keeps running
    assert wire.take() == [(1, D, 1000)]
    assert sender.rtt_seq is None  # Karn: nothing timed from a retransmission


def test_zero_window_stops_the_retransmission_timer_and_probes() -> None:
    sender, wire, timers = make_sender(sack=False, window=0)
    sender.tcb.snd_wnd = 0
    sender.write(b"x" * 10, urgent=False)
    sender.output(1.0)
    assert wire.take() == []
    assert snapshot(sender, timers)["timers"] == {"PERSIST": 2.0}  # max(RTO, persist_min)
    assert sender.on_persist_timeout(2.0)
    assert wire.take() == [(1, D, 1)]  # one octet into the zero window (RFC 9293 3.8.6.1)
    assert (sender.probes_unanswered, sender.persist_backoff) == (1, 1)


# ---- RenoRecovery (RFC 5681 3.2, RFC 6582) ------------------------------------------------


def _reno_with_six_in_flight() -> tuple[Sender, Wire, Timers]:
    sender, wire, timers = make_sender(sack=False)
    sender.cc.cwnd = 6000
    sender.write(b"x" * 6000, urgent=False)
    sender.output(1.0)
    assert [s[0] for s in wire.take()] == [1, 1001, 2001, 3001, 4001, 5001]
    return sender, wire, timers


def test_reno_three_duplicate_acks_fast_retransmit_and_inflate() -> None:
    sender, wire, timers = _reno_with_six_in_flight()
    sender.on_ack(ack(1001), 60000, 1.1)  # segment 1001 is lost
    wire.take()
    for k in (1, 2):
        sender.on_ack(ack(1001), 60000, 1.1)
        assert snapshot(sender, timers)["dupacks"] == k and wire.take() == []
    sender.on_ack(ack(1001), 60000, 1.1)  # the third duplicate
    assert wire.take() == [(1001, D, 1000)]  # fast retransmit
    assert snapshot(sender, timers) == {
        "una": 1001, "nxt": 6001, "tx_nxt": 6001, "queued": 5000,
        "cwnd": 5500, "ssthresh": 2500,  # ssthresh = FlightSize/2; cwnd = ssthresh + 3 SMSS
        "in_recovery": True, "recover": 6001, "timers": {"RETRANSMIT": 2.1}, "retries": 0,
        "dupacks": 3, "partial_acks": 0,
    }
    sender.on_ack(ack(1001), 60000, 1.1)  # a fourth: cwnd += SMSS (RFC 6582 3.2 (4))
    assert snapshot(sender, timers)["cwnd"] == 6500


def test_reno_partial_then_full_ack() -> None:
    sender, wire, timers = _reno_with_six_in_flight()
    for _ in range(4):
        sender.on_ack(ack(1001), 60000, 1.1)
    wire.take()
    sender.on_ack(ack(3001), 60000, 1.2)  # partial: retransmit the next hole at once
    assert wire.take() == [(3001, D, 1000)]
    assert snapshot(sender, timers) == {
        "una": 3001, "nxt": 6001, "tx_nxt": 6001, "queued": 3000,
        "cwnd": 4500,  # deflated by 2000 acked, plus one SMSS back
        "ssthresh": 2500, "in_recovery": True, "recover": 6001,
        "timers": {"RETRANSMIT": 2.2},  # the first partial ACK restarts the timer
        "retries": 0, "dupacks": 0, "partial_acks": 1,
    }
    sender.on_ack(ack(6001), 60000, 1.3)  # full: cwnd = min(ssthresh, FlightSize + SMSS)
    assert snapshot(sender, timers) == {
        "una": 6001, "nxt": 6001, "tx_nxt": 6001, "queued": 0, "cwnd": 2000, "ssthresh": 2500,
        "in_recovery": False, "recover": 6001, "timers": {}, "retries": 0,
        "dupacks": 0, "partial_acks": 1,
    }


def test_no_fast_retransmit_for_dupacks_below_recover() -> None:
    """RFC 6582 3.2 (2): after a timeout, duplicate ACKs that do not cover `recover`
    (the highest sequence sent before the timeout) do not start fast retransmit."""
    sender, wire, _timers = _reno_with_six_in_flight()
    sender.back_off()
    sender.on_retransmit_timeout(2.0)
    sender.output(2.0)
    wire.take()
    sender.on_ack(ack(1001), 60000, 2.1)  # the retransmission arrived
    sender.output(2.1)
    wire.take()
    for _ in range(3):
        sender.on_ack(ack(1001), 60000, 2.2)
    assert wire.take() == [] and not sender.recovery.in_recovery  # 1001 < recover 6001


@pytest.mark.parametrize("sack", [False, True], ids=["newreno", "sack"])
def test_a_loss_after_2_gib_still_starts_a_recovery(sack: bool) -> None:
    """RFC 6582's recover (RFC 6675's RecoveryPoint) is a sequence number, compared modulo
    2^32. Left at its first value (ISS + 1), after 2 GiB it looks ahead of SND.UNA, and
    for the next 2 GiB no loss would start a recovery (nor would the fast path run). It
    follows SND.UNA instead while no recovery is under way."""
    sender, wire, _timers = make_sender(sack=sack, window=1 << 20)
    sender.max_packet = 64_000  # super-segments, so 2 GiB takes a few thousand rounds
    chunk = b"x" * sender.config.send_buffer
    sent = 1
    while sent < (1 << 31) + 100_000:
        sent += sender.write(chunk, urgent=False)
        sender.output(1.0)
        wire.take()
        sender.on_ack(ack(sent, window=1 << 20), 1 << 20, 1.1)
        assert sender.recovery.recover is sender.tcb.snd_una  # one object, no copy
    assert not sender.recovery.recovering(sender.tcb.snd_una)
    if sack:
        return
    sender.max_packet = 0
    sender.write(b"x" * 4000, urgent=False)
    sender.output(1.2)
    off = (ISS + sent) - ISS  # as Wire notes it: the signed distance, past 2^31 negative
    assert [o for o, _, _ in wire.take()] == [off, off + 1000, off + 2000, off + 3000]
    for _ in range(3):  # the first segment is lost: three duplicate ACKs
        sender.on_ack(ack(sent, window=1 << 20), 1 << 20, 1.3)
    assert wire.take() == [(off, D, 1000)]  # fast retransmit (RFC 5681 3.2, RFC 6582 3.2)
    assert sender.recovery.in_recovery


# ---- SackRecovery (RFC 6675, RFC 8985) ----------------------------------------------------


def test_sack_three_segments_sacked_mark_the_hole_lost_and_start_recovery() -> None:
    sender, wire, timers = make_sender(sack=True)
    sender.write(b"x" * 4000, urgent=False)
    sender.output(1.0)
    assert [s[0] for s in wire.take()] == [1, 1001, 2001, 3001]
    assert snapshot(sender, timers)["timers"] == {"RETRANSMIT": 2.0, "LOSS_PROBE": 1.2}
    # the first segment is lost; the peer SACKs the other three (RACK: reo_wnd 0 once
    # DupThresh segments are SACKed, RFC 8985 6.2 step 4)
    sender.on_ack(ack(1, sack=((1001, 4001),)), 60000, 1.1)
    assert wire.take() == [(1, D, 1000)]  # RFC 6675 5 (4.3): the first lost one at once
    assert snapshot(sender, timers) == {
        "una": 1, "nxt": 4001, "tx_nxt": 4001, "queued": 4000,
        "cwnd": 2000, "ssthresh": 2000,  # FlightSize 4000 / 2
        "in_recovery": True, "recover": 4001, "timers": {"RETRANSMIT": 2.0}, "retries": 0,
        "sacked": 3000, "lost": 0, "tlp_end": None,
    }
    sender.on_ack(ack(4001), 60000, 1.2)  # RecoveryPoint covered: recovery is over
    assert snapshot(sender, timers) == {
        "una": 4001, "nxt": 4001, "tx_nxt": 4001, "queued": 0, "cwnd": 2000, "ssthresh": 2000,
        "in_recovery": False, "recover": 4001, "timers": {}, "retries": 0,
        "sacked": 0, "lost": 0, "tlp_end": None,
    }


def test_sack_tail_loss_probe_resends_the_last_segment() -> None:
    """RFC 8985 7.3: nothing new to send, no ACK for a PTO: the last segment again."""
    sender, wire, timers = make_sender(sack=True)
    sender.write(b"x" * 2000, urgent=False)
    sender.output(1.0)
    wire.take()
    pto = timers.at(Timer.LOSS_PROBE)
    assert pto == 1.2  # 2 * SRTT
    timers.cancel(Timer.LOSS_PROBE)
    sender.recovery.on_timer(Timer.LOSS_PROBE, sender, pto)
    assert wire.take() == [(1001, DP, 1000)]
    state = snapshot(sender, timers)
    assert state["tlp_end"] == ISS + 2001
    assert state["timers"] == {"RETRANSMIT": 2.2}  # the RTO re-armed after the probe

"""Loss recovery with SACK: RFC 6675 driven by RACK-TLP's loss marks (RFC 8985).

Each ACK updates the scoreboard from its SACK blocks (sack.py) and tells RACK (rack.py)
which segments were delivered. RACK marks lost every segment sent before the most
recently delivered one that has stayed unacknowledged a reordering window longer (6.2),
or arms the reordering timer to look again (6.3). The first loss begins recovery
(RFC 6675 5 (4)): the controller reduces cwnd, RecoveryPoint = HighData, and the first
lost segment is resent at once; after that, lost segments are resent lowest first and
new data follows while pipe < cwnd (RFC 6675 5 (C), NextSeg (1)). How much may go out on
each ACK of the recovery is Proportional Rate Reduction's answer (RFC 6937, prr.py):
cwnd = pipe + sndcnt, so the reduction to ssthresh is spread over the round trip instead
of RFC 6675's silence followed by a burst; at the end of recovery cwnd = ssthresh.
With nothing SACKed and no recovery under way, a tail loss probe (RFC 8985 7) fires after
PTO ~= 2*SRTT and sends one segment to draw out an ACK that shows the losses.

RFC 9293 names nothing here; the names are RFC 6675's (pipe, RecoveryPoint, NextSeg)
and RFC 8985's (RACK.*, TLP.end_seq, TLP.is_retrans).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.seq import SeqNum
from ..wire.tcp import TcpSegment
from .prr import Prr
from .rack import Rack, probe_timeout, sent_after
from .recovery import Recovery
from .rules import Rule
from .sack import SentSegment
from .timers import Timer
from .undo import UndoEpisode

if TYPE_CHECKING:
    from .sender import Sender


class SackRecovery(Recovery):
    """RFC 6675 + RACK-TLP; see the module docstring."""

    __slots__ = ("prr", "rack", "tlp_end", "tlp_is_retrans")

    def __init__(self, snd_una: SeqNum) -> None:
        super().__init__(snd_una)
        # RFC 8985 loss detection, made when first needed (`_rack`): until a segment is
        # delivered RACK is in its initial state, so an idle connection keeps none (issue 13)
        self.rack: Rack | None = None
        self.tlp_end: SeqNum | None = None  # TLP.end_seq: a tail loss probe episode
        self.tlp_is_retrans = False  # TLP.is_retrans: the probe resent old data
        self.prr: Prr | None = None  # the sending rate during a recovery (RFC 6937)

    # ---- ACKs ------------------------------------------------------------------------

    def on_ack(self, sender: Sender, seg: TcpSegment, wnd: int, now: float) -> int:
        ack = seg.ack
        tcb = sender.tcb
        una, sacked = tcb.snd_una, sender.board.sacked
        freed = 0
        if ack > tcb.snd_una:
            result = sender.acknowledge(seg, now)
            if not self.in_recovery:
                cc = sender.cc
                cwnd = cc.cwnd
                cc.on_ack(result.acked, now, rtt=result.rtt)
                if sender.why is not None:
                    sender.why.decide(
                        Rule.SLOW_START if cwnd < cc.ssthresh else Rule.CONGESTION_AVOIDANCE,
                        changed={"cwnd": (cwnd, cc.cwnd)}, acked=result.acked,
                        ssthresh=cc.ssthresh,
                    )
            elif ack >= self.recover:
                self._end_recovery(sender)
            sender.restart_timer(ack, now)
            self._on_sack_ack(sender, seg, una, result.delivered, now)
            freed = result.freed
        elif ack == tcb.snd_una and (tcb.snd_nxt != ack or seg.options.sack_blocks):
            # a duplicate ACK: its SACK blocks matter; with nothing outstanding they can only
            # be a D-SACK (RFC 2883), the evidence a recovery was spurious (undo.py)
            self._on_sack_ack(sender, seg, una, [], now)
        if self.prr is not None:
            # RFC 6937 3: DeliveredData = change_in(snd.una) + change_in(SACKd)
            delivered = max((tcb.snd_una - una) + (sender.board.sacked - sacked), 0)
            self._pace(sender, delivered)
        return freed

    def _pace(self, sender: Sender, delivered: int) -> None:
        """RFC 6937 on one ACK of the recovery: let out sndcnt bytes beyond pipe."""
        assert self.prr is not None
        tcb = sender.tcb
        pipe = sender.board.pipe(tcb.snd_nxt - tcb.snd_una)
        sender.cc.cwnd = pipe + self.prr.on_ack(delivered, pipe)

    def _end_recovery(self, sender: Sender) -> None:
        """The cumulative ACK reached RecoveryPoint: cwnd = ssthresh (RFC 6937 3,
        RFC 6675 5)."""
        self.in_recovery = False
        self.prr = None
        sender.cc.cwnd = sender.cc.ssthresh
        self._try_undo(sender)

    def _try_undo(self, sender: Sender) -> None:
        """RFC 9438 4.9.2, once the recovery is over: every segment it resent came back
        D-SACKed, so its reduction was spurious: undo it (undo.py)."""
        undo = self.undo
        if undo is None or self.in_recovery or not undo.spurious:
            return
        self.undo = None
        cc = sender.cc
        cwnd, ssthresh = cc.cwnd, cc.ssthresh
        cc.undo(undo.state)
        if sender.why is not None:
            sender.why.decide(Rule.CC_UNDO, changed={
                "cwnd": (cwnd, cc.cwnd), "ssthresh": (ssthresh, cc.ssthresh)
            }, resent=undo.resent)

    def _resend(self, sender: Sender, start: SeqNum, end: SeqNum, now: float) -> None:
        """A repair: resend [start, end), and remember it for the undo's evidence."""
        if self.undo is not None:
            self.undo.on_resend(start, end)
        sender.resend(start, end, now)

    def sent(self, nbytes: int) -> None:
        if self.prr is not None:
            self.prr.on_sent(nbytes)  # prr_out += (data sent)

    def _rack(self, snd_una: SeqNum) -> Rack:
        """RACK's state, made the first time it is needed: no segment was delivered before,
        so it starts as it would have at the handshake, from `snd_una` (SND.UNA as this
        ACK found it: nothing delivered, nothing moved RACK's variables since)."""
        rack = self.rack
        if rack is None:
            rack = self.rack = Rack(snd_una)
        return rack

    def _on_sack_ack(
        self, sender: Sender, seg: TcpSegment, una: SeqNum, delivered: list[SentSegment],
        now: float,
    ) -> None:
        """RFC 6675, RFC 8985 6.2 and 7.4: update the scoreboard from the SACK blocks,
        let RACK see what was delivered, close a tail loss probe episode, look for losses.
        `una` is SND.UNA before this ACK."""
        tcb = sender.tcb
        board = sender.board
        blocks = seg.options.sack_blocks
        if blocks:
            delivered += board.sack(blocks, tcb.snd_una)
        # RFC 2018 8: the receiver dropped data it had SACKed; the marks go, and RACK or
        # the RTO will find the data lost and resend it
        board.reneged()
        if delivered:
            self._rack(una).delivered(delivered, now)
        dsack = bool(blocks) and blocks[0][1] <= seg.ack  # RFC 2883: a first block below SEG.ACK
        if dsack and self.undo is not None:
            self.undo.on_dsack(*blocks[0])
            self._try_undo(sender)
        if self.tlp_end is not None and tcb.snd_una >= self.tlp_end:
            # RFC 8985 7.4: the probe's episode is over. Had it resent old data that the
            # peer did not report as a duplicate (a D-SACK), the probe repaired a loss:
            # react to it
            if self.tlp_is_retrans and not dsack:
                sender.cc.on_loss(sender.flight_size(), now)  # RFC 8985 7.4.2
            self.tlp_end = None
        if tcb.snd_nxt == tcb.snd_una:
            sender.timers.cancel(Timer.REORDER)
            sender.timers.cancel(Timer.LOSS_PROBE)
            return
        self._detect_losses(sender, now)
        self._schedule_loss_probe(sender, now)

    def _detect_losses(self, sender: Sender, now: float) -> None:
        """RFC 8985 6.2 steps 4-5 and 6.3: mark what RACK deems lost, arm the reordering
        timer for what it may soon deem lost, and begin recovery (RFC 6675 5 (4))."""
        board = sender.board
        segments = board.segments
        timers = sender.timers
        timers.cancel(Timer.REORDER)
        if not segments:
            return
        rack = self._rack(sender.tcb.snd_una)
        first = segments[0]
        if not (board.sacked or board.lost) and sent_after(
            first.xmit_ts, first.end, rack.xmit_ts, rack.end_seq
        ):
            return  # nothing outstanding was sent before the latest delivered segment
        tcb = sender.tcb
        reo_wnd = rack.reo_wnd(board, self.in_recovery, sender.rtt.srtt)
        lost_before = board.lost
        timeout = rack.detect_loss(board, now, reo_wnd)
        if sender.why is not None and board.lost > lost_before:
            sender.why.decide(Rule.RACK_LOST, lost=board.lost - lost_before, reo_wnd=reo_wnd,
                              srtt=sender.rtt.srtt)
        if timeout:
            timers.arm(Timer.REORDER, now + timeout)
        if board.lost and not self.recovering(tcb.snd_una):
            # RFC 6675 5 (4): RecoveryPoint = HighData, the controller's reduction
            flight = sender.flight_size()  # without what Limited Transmit sent
            cwnd = sender.cc.cwnd
            self.undo = UndoEpisode(sender.cc.undo_state())  # RFC 9438 4.9.2
            sender.cc.on_loss(flight, now)
            if sender.why is not None:
                sender.why.decide(Rule.SACK_RECOVERY, changed={"cwnd": (cwnd, sender.cc.cwnd)},
                                  recover=tcb.snd_nxt, ssthresh=sender.cc.ssthresh)
            self.recover = tcb.snd_nxt
            self.in_recovery = True
            # RFC 6937 3: RecoverFS = snd.nxt - snd.una (the FlightSize the reduction
            # came from, as the RFC's examples count it), prr_delivered = prr_out = 0
            self.prr = Prr(sender.cc.ssthresh, flight, sender.mss)
            timers.cancel(Timer.LOSS_PROBE)
            self.tlp_end = None  # the recovery deals with the loss a probe found
            lost = board.first_lost(tcb.snd_una + tcb.snd_wnd)
            if lost is not None:
                # RFC 6675 5 (4.3): the first segment presumed lost goes out at once,
                # whatever pipe says; (C) in repair() sends the rest
                self._resend(sender, lost.start, lost.end, now)
            self._pace(sender, 0)  # nothing delivered yet: sndcnt follows on the ACKs

    def _schedule_loss_probe(self, sender: Sender, now: float) -> None:
        """RFC 8985 7.2: arm the PTO when data is outstanding, nothing is SACKed, we are
        not recovering and no probe is out; it fires no later than the RTO would."""
        timers = sender.timers
        rtx_at = timers.at(Timer.RETRANSMIT)
        if (
            rtx_at is None
            or sender.board.sacked
            or self.tlp_end is not None
            or self.recovering(sender.tcb.snd_una)
        ):
            timers.cancel(Timer.LOSS_PROBE)
            return
        config = sender.config
        at = now + probe_timeout(sender.rtt.srtt, len(sender.board.segments),
                                 config.tlp_timing, config.rto_min)
        timers.arm(Timer.LOSS_PROBE, min(at, rtx_at))

    # ---- sending -----------------------------------------------------------------------

    def send_edge(self, sender: Sender, nxt: SeqNum) -> SeqNum:
        # RFC 6675 (C): send while pipe < cwnd; SACKed and lost octets have left the
        # pipe, which also does what Limited Transmit does without SACK
        tcb = sender.tcb
        room = sender.cc.cwnd - sender.board.pipe(tcb.snd_nxt - tcb.snd_una)
        return min(tcb.snd_una + tcb.snd_wnd, nxt + max(room, 0))

    def repair(self, sender: Sender, now: float) -> None:
        """RFC 6675 4 NextSeg (1) and 5 (C): while cwnd - pipe allows, resend the
        segments RACK deemed lost, lowest first, before any new data; never the
        SACKed ones. (RACK's lost marks stand in for RFC 6675's IsLost and HighRxt.)
        A lost super-segment longer than the room cwnd leaves is resent in whole MSS
        parts (at least one), as many as fit."""
        board = sender.board
        if not board.lost:
            return
        tcb = sender.tcb
        edge = tcb.snd_una + tcb.snd_wnd
        cwnd, mss = sender.cc.cwnd, sender.mss
        while board.lost:
            s = board.first_lost(edge)
            if s is None:
                return
            room = cwnd - board.pipe(tcb.snd_nxt - tcb.snd_una)
            if room < min(s.length, mss):
                return
            if s.length > room:
                board.split(s, s.start + room // mss * mss)
            self._resend(sender, s.start, s.end, now)

    def after_new_data(self, sender: Sender, now: float) -> None:
        # RFC 8985 7.2: after sending new data. (If an ACK armed it, leave it: the ACK
        # that released this data restarted it a moment ago.)
        if not sender.timers.is_armed(Timer.LOSS_PROBE):
            self._schedule_loss_probe(sender, now)

    def go_back(self, sender: Sender) -> None:
        sender.board.mark_all_lost()  # repair() resends them in order

    def mss_lowered(self, sender: Sender) -> None:
        sender.board.split_lost(sender.mss)  # repair() resends the pieces

    def on_rto(self, sender: Sender, now: float) -> None:
        # RFC 6675 5.1, RFC 8985 6.3: everything not SACKed is lost, resent in order by
        # repair(); what the peer SACKed is not sent again (the scoreboard is kept, not
        # cleared as RFC 2018 8 once suggested; see sack.py on reneging)
        self.tlp_end = None
        self.prr = None
        super().on_rto(sender, now)

    # ---- RACK's and TLP's timers -------------------------------------------------------

    def on_timer(self, kind: Timer, sender: Sender, now: float) -> None:
        if kind is Timer.REORDER:
            # RFC 8985 6.3: the reordering window ran out: look for losses again
            if sender.why is not None:
                sender.why.decide(Rule.REORDER_TIMEOUT)
            self._detect_losses(sender, now)
        elif kind is Timer.LOSS_PROBE:
            self._on_probe_timeout(sender, now)

    def _on_probe_timeout(self, sender: Sender, now: float) -> None:
        """RFC 8985 7.3: no ACK for a PTO: send a tail loss probe, new data if the peer's
        window allows (regardless of cwnd), else the last segment again; re-arm the RTO."""
        tcb = sender.tcb
        if tcb.snd_nxt == tcb.snd_una:
            return
        if sender.why is not None:
            sender.why.decide(Rule.TLP_PROBE, snd_una=tcb.snd_una, snd_nxt=tcb.snd_nxt)
        end = sender.queued_end
        nxt = tcb.snd_nxt
        n = max(0, min(sender.mss, end - nxt, tcb.snd_una + tcb.snd_wnd - nxt))
        fin = sender.fin_queued and nxt + n == end
        if n or fin:
            sender.tx_nxt = sender.transmit(nxt, n, fin, now)
            self.tlp_is_retrans = False
        else:
            last = sender.board.last()
            if last is None:
                return
            sender.resend(last.start, last.end, now)
            self.tlp_is_retrans = True
        self.tlp_end = tcb.snd_nxt
        sender.timers.arm(Timer.RETRANSMIT, now + sender.rtt.rto)

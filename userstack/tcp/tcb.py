"""The Transmission Control Block's sequence variables, as RFC 9293 3.3.1 draws them.

    Send Sequence Space                    Receive Sequence Space

         1         2          3          4        1          2          3
    ----------|----------|----------|----------  ----------|----------|----------
           SND.UNA    SND.NXT    SND.UNA                RCV.NXT    RCV.NXT
                                +SND.WND                          +RCV.WND
    1 - old sequence numbers that have been acknowledged      1 - old, acknowledged
    2 - sequence numbers of unacknowledged data               2 - may be received
    3 - sequence numbers allowed for new data transmission    3 - not yet allowed
    4 - future sequence numbers that are not yet allowed

Window sizes here are always in bytes (already scaled by RFC 7323); only the
16-bit header field is unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.seq import SeqNum

_ZERO = SeqNum(0)


@dataclass(slots=True)
class Tcb:
    iss: SeqNum  # ISS: initial send sequence number
    snd_una: SeqNum  # SND.UNA: oldest unacknowledged sequence number
    snd_nxt: SeqNum  # SND.NXT: next new sequence number (one past the highest ever sent)
    snd_wnd: int = 0  # SND.WND: the peer's window, in bytes
    snd_up: SeqNum = _ZERO  # SND.UP: send urgent pointer (the octet after our urgent data)
    snd_wl1: SeqNum = _ZERO  # SND.WL1: segment sequence number used for the last window update
    snd_wl2: SeqNum = _ZERO  # SND.WL2: segment acknowledgment number used for it
    irs: SeqNum | None = None  # IRS: initial receive sequence number (None until the peer's SYN)
    rcv_nxt: SeqNum = _ZERO  # RCV.NXT: next sequence number expected (meaningful once irs is set)
    rcv_wnd: int = 0  # RCV.WND: what we last offered, measured from rcv_nxt, in bytes
    rcv_up: SeqNum = _ZERO  # RCV.UP: receive urgent pointer (urgent data is read in line)
    snd_wscale: int = 0  # Snd.Wind.Shift (RFC 7323 2.2): applied to the peer's window field
    rcv_wscale: int = 0  # Rcv.Wind.Shift (RFC 7323 2.2): applied to the window field we send
    max_snd_wnd: int = 0  # MAX.SND.WND (RFC 5961 5.2): the largest window the peer offered

    def window_is_newer(self, seq: SeqNum, ack: SeqNum) -> bool:
        """RFC 9293 3.10.7.4 fifth step: a segment may set the send window only if it is
        newer than the one that set it last, "(SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
        SND.WL2 =< SEG.ACK))". The general path and header prediction both ask here."""
        wl1 = self.snd_wl1
        return wl1 < seq or (wl1 == seq and self.snd_wl2 <= ack)

    def share_equal_numbers(self) -> None:
        """Let equal sequence numbers be one object: SND.UNA and SND.WL2 that of SND.NXT,
        SND.WL1 that of RCV.NXT. Once, on entering ESTABLISHED: a SeqNum and its int cost
        72 bytes, and an idle connection would otherwise keep three more (issue 13)."""
        if self.snd_una == self.snd_nxt:
            self.snd_una = self.snd_nxt
        if self.snd_wl2 == self.snd_nxt:
            self.snd_wl2 = self.snd_nxt
        if self.snd_wl1 == self.rcv_nxt:
            self.snd_wl1 = self.rcv_nxt


def segment_acceptable(seq: SeqNum, seg_len: int, rcv_nxt: SeqNum, rcv_wnd: int) -> bool:
    """The four-case acceptability test of RFC 9293 3.10.7.4 (first step).

    Segment Length  Receive Window  Test
    0               0               SEG.SEQ = RCV.NXT
    0               >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
    >0              0               not acceptable
    >0              >0              RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
                                 or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND
    """
    if seg_len == 0:
        if rcv_wnd == 0:
            return seq == rcv_nxt
        return seq.in_window(rcv_nxt, rcv_wnd)
    if rcv_wnd == 0:
        return False
    return seq.in_window(rcv_nxt, rcv_wnd) or (seq + (seg_len - 1)).in_window(rcv_nxt, rcv_wnd)

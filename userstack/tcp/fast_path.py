"""Header prediction: a short way through SEGMENT ARRIVES for the two common segments.

RFC 9293 3.10.7.4 processes a segment in a synchronized state by eight steps (sequence
number, RST, security, SYN, ACK, URG, text, FIN; connection.py runs them in that order).
In the middle of a transfer nearly every segment is one of two kinds whose outcome is
known before the steps run, and Van Jacobson's "header prediction" (4.3BSD-Reno's
tcp_input, 1990; TCP/IP Illustrated vol. 2, 28.4) tests for exactly those two and does
only what the steps would have done:

(a) a pure ACK of new data, at the sender of a bulk transfer (ESTABLISHED, or CLOSE-WAIT:
    the peer has closed its half and we still send);
(b) in-order data with an ACK that says nothing new, at its receiver (ESTABLISHED, or
    FIN-WAIT-2: we have closed our half, and the peer still sends).

The prediction, all of which must hold (else the general path runs, nothing changed):

- the state is one of those and explanations are off (below);
- the flags are ACK, perhaps PSH: no SYN, FIN, RST or URG, so the second, fourth, sixth
  and eighth steps have nothing to do;
- SEG.SEQ = RCV.NXT, so the first step finds the segment acceptable with nothing to trim;
- no TCP options at all, or with timestamps agreed (RFC 7323) the timestamps alone and a
  TSval not older than TS.Recent (PAWS would pass it, as BSD predicts it too); TS.Recent
  then takes it as the general path does after the first step (4.3 (2)), and the Sender
  reads the TSecr for its RTT sample. No SACK blocks for the scoreboard;
- no loss recovery under way (RFC 6582 fast recovery, RFC 6675 recovery, or resending
  after a timeout), as BSD also asks of its ACK prediction.

(a) also: no text, and SND.UNA < SEG.ACK =< SND.NXT. It then does the first step's
bookkeeping (the peer was heard from), hands the ACK to the Sender as the fifth step does
(`Sender.on_ack`: the recovery strategy's ACK processing, the RTT sample, cwnd growth
through the congestion controller, RACK and the loss probe, the timers), takes the
window as the fifth step does and says SendSpace when the buffer freed. Skipped: the
acceptability test, steps two to four, the fifth step's checks of an ACK too old or
beyond SND.NXT, and the sixth to eighth steps, whose tests would all fail.

(b) also: SEG.ACK = SND.UNA = SND.NXT (nothing of ours in flight, so the ACK can mean
nothing to the recovery strategy: with data in flight, SACK recovery reads even an ACK
that acknowledges nothing, to rearm RACK's timers), 0 < SEG.LEN =< RCV.WND, no
out-of-order data held (no reassembly queue) and no FIN held ahead of RCV.NXT. It then
does the first step's bookkeeping, takes the window, and runs the seventh step itself
(`_process_segment_text`: ECN's CE echo, then `Receiver.take_text`: the buffer, RCV.NXT,
RCV.WND and the ACK policy). BSD asks only SEG.ACK = SND.UNA and that the text fits the buffer.

BSD also asks that SEG.WND be the window it already has, because its short path leaves
the window update out. Here the update is kept, exactly as the fifth step does it, so a
segment with a new window goes the short way too: a receiver's window shrinks with every
segment until its reader catches up, so nearly every ACK a bulk sender gets carries a new
one.

What follows is the same either way: `Connection.on_segment` then sends what the windows
allow and any ACK owed.

Explanations. When the connection explains itself (`explain`, rules.py), this path is
never taken: the general path names every Rule it applies, step by step as RFC 9293 reads,
and an explanation must not depend on a shortcut. A connection runs the same with
explanations on and off, only slower on; tests/tcp/test_tcp_fast_path.py replays recorded
transfers through a connection with the prediction and one without
(`TcpConfig(header_prediction=False)`) and finds every segment sent, every event, every
timer and the whole TCB, Sender and Receiver state the same after every input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment
from .events import SendSpace
from .state import State
from .timestamps import ts_before

# The fast path is the state machine's own shortcut: it reads and moves the Connection's
# private parts (_why, _events, its steps' helpers) as its steps do.

if TYPE_CHECKING:
    from .connection import Connection

ACK = int(TcpFlags.ACK)
PSH = int(TcpFlags.PSH)
_ACK_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT})  # where (a) is predicted
_DATA_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_2})  # where (b) is
_PREDICTED = _ACK_STATES | _DATA_STATES


def segment_arrives(conn: Connection, seg: TcpSegment, now: float) -> bool:
    """Process `seg` the short way if it is one of the two predicted kinds, and count it
    in the connection's `fast_acks` or `fast_data`. False: it is not, nothing was changed,
    and the eight steps must run. (Functions, not an object per connection: an idle
    connection pays for two counters, not for a prediction object too; issue 13.)"""
    state = conn.state
    if state not in _PREDICTED or conn._why is not None:
        return False
    if int(seg.flags) & ~PSH != ACK or not _options_predicted(conn, seg.options):
        return False
    tcb = conn.tcb
    if seg.seq.value != tcb.rcv_nxt.value:
        return False
    sender = conn.sender
    if sender.recovery.recovering(tcb.snd_una):
        return False
    if seg.payload:
        return state in _DATA_STATES and _in_order_data(conn, seg, now)
    ack = seg.ack
    if state not in _ACK_STATES or not tcb.snd_una < ack <= tcb.snd_nxt:
        return False
    # (a) a pure ACK of new data: the fifth step, as _check_ack hands it to the Sender
    _take_tsval(conn, seg, now)
    conn._heard_from_peer(now)
    if sender.on_ack(seg, seg.window << tcb.snd_wscale, now) > 0:
        conn._event(SendSpace())
    _take_window(conn, seg)
    conn.fast_acks += 1
    return True


def _in_order_data(conn: Connection, seg: TcpSegment, now: float) -> bool:
    """(b): the text is next in sequence, fits the window, and the ACK says nothing."""
    tcb = conn.tcb
    una = tcb.snd_una.value
    buffer = conn.receiver.buffer
    if (
        seg.ack.value != una
        or tcb.snd_nxt.value != una
        or len(seg.payload) > tcb.rcv_wnd
        or buffer.has_gaps
        or buffer.fin_at is not None
    ):
        return False
    _take_tsval(conn, seg, now)
    conn._heard_from_peer(now)
    _take_window(conn, seg)
    conn._process_segment_text(seg, now)  # the seventh step itself (and ECN's echo)
    conn.fast_data += 1
    return True


def _options_predicted(conn: Connection, options: TcpOptions) -> bool:
    """No options without timestamps; with them agreed, timestamps alone, and a TSval not
    older than TS.Recent (else PAWS, RFC 7323 5.3, or 3.2's drop: the general path)."""
    ts = conn._ts
    if ts is None:
        return options is NO_OPTIONS
    tsopt = options.timestamps
    return (
        tsopt is not None
        and not ts_before(tsopt[0], ts.ts_recent)
        and not options.sack_blocks
        and options.mss is None
        and options.window_scale is None
        and not options.sack_permitted
        and not options.unknown
    )


def _take_tsval(conn: Connection, seg: TcpSegment, now: float) -> None:
    """RFC 7323 4.3 (2), as the general path does after the first step (the segment is at
    RCV.NXT and not older: TS.Recent takes its TSval unless ACKs were delayed)."""
    ts, tsopt = conn._ts, seg.options.timestamps
    if ts is not None and tsopt is not None:
        ts.update_recent(tsopt[0], seg.seq, now)


def _take_window(conn: Connection, seg: TcpSegment) -> None:
    """The fifth step's window update (RFC 9293 3.10.7.4), SEG.ACK being acceptable."""
    if conn.tcb.window_is_newer(seg.seq, seg.ack):
        conn._take_send_window(seg, seg.ack, scaled=True)

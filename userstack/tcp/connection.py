"""One TCP connection (one TCB), sans I/O: RFC 9293's state machine.

How to read this beside RFC 9293
--------------------------------
Nothing here reads a clock or draws a random number: every call carries `now`
(float seconds), the ISN comes from the caller (stack/isn.py, RFC 6528), and segments
go in and out as `TcpSegment` values.

    RFC 9293                            here
    3.3.1  sequence variables           tcb.py: Tcb.snd_una, snd_nxt, snd_wnd, snd_wl1, ...
    3.3.2  states, Figure 5             state.py; every transition goes through _set_state()
    3.4.1  ISN selection                stack/isn.py (RFC 6528)
    3.5    opening (Figures 6-10)       open_active(), open_passive(), the SEGMENT ARRIVES steps
    3.5.2  reset generation             _reset_for(), _segment_arrives_closed()
    3.6    closing (Figures 12-14)      close(), _check_fin(), _enter_time_wait()
    3.7.1  MSS option                   _syn_options(), _take_syn_options()
    3.7.4  Nagle                        _send_queued()
    3.8.1  retransmission timeout       rtt.py (RFC 6298), _on_retransmit_timeout()
    3.8.4  keep-alives                  set_keepalive(), _on_keepalive_timeout()
    3.8.5  urgent information           send(urgent=True), _emit(), _check_urg(), urgent_pending
    3.8.6  window management            _window_field() (receiver SWS 3.8.6.2.2),
                                        _send_queued() (sender SWS 3.8.6.2.1),
                                        _zero_window() / _on_persist_timeout() (3.8.6.1)
    3.10.1 OPEN                         open_active(), open_passive()
    3.10.2 SEND                         send()
    3.10.3 RECEIVE                      receive()
    3.10.4 CLOSE                        close()
    3.10.5 ABORT                        abort()
    3.10.6 STATUS                       info()
    3.10.7 SEGMENT ARRIVES              on_segment(), which dispatches to:
      3.10.7.1 CLOSED                     _segment_arrives_closed()
      3.10.7.2 LISTEN                     _segment_arrives_listen()
      3.10.7.3 SYN-SENT                   _segment_arrives_syn_sent()
      3.10.7.4 all other states           _segment_arrives_synchronized(), which runs in order:
                first   check sequence number    _check_sequence()
                second  check the RST bit        _check_rst()     (+ RFC 5961 3)
                third   check security           _check_security()
                fourth  check the SYN bit        _check_syn()     (+ RFC 5961 4)
                fifth   check the ACK field      _check_ack()     (+ RFC 5961 5, RFC 5681/6582)
                sixth   check the URG bit        _check_urg()
                seventh process the segment text _process_segment_text()
                eighth  check the FIN bit        _check_fin()
    3.10.8 timeouts                     on_timer(): _on_retransmit_timeout(), _on_persist_timeout(),
                                        delayed ACK (RFC 1122 4.2.3.2), TIME-WAIT, keep-alive
    3.9.2.1 ICMP errors                 on_icmp_error() (icmp_errors.py: RFC 1122 4.2.3.9,
                                        RFC 5927 checks, RFC 1191 path MTU: _lower_mss())

    Beyond RFC 9293, when both SYNs carry SACK-permitted (RFC 2018):
    receiver: SACK blocks          ReceiveBuffer.sack_blocks(), _send_sack()
              D-SACK (RFC 2883)    ReceiveBuffer.dsack, _check_sequence()
    sender: scoreboard, pipe       sack.py (RFC 6675 2, 4), _transmit() records every segment
    loss detection                 rack.py (RFC 8985 6), _on_sack_ack(), _detect_losses()
    recovery                       _retransmit_lost() (RFC 6675 NextSeg), congestion.py
    tail loss probe                _schedule_loss_probe(), _on_probe_timeout() (RFC 8985 7)
    Without SACK, NewReno (RFC 5681 3.2, RFC 6582) as before: _is_duplicate_ack(),
    _retransmit_first().

One deliberate departure in naming: `snd_nxt` is exactly RFC 9293's SND.NXT (one past
the highest sequence number ever sent; it never moves back), and every RFC test on
SND.NXT uses it. The separate cursor `_tx_nxt` says where the *next transmission*
starts: it equals snd_nxt except after a retransmission timeout (go back to SND.UNA
and resend under slow start, RFC 5681 3.1) and while probing a zero window.
(BSD calls these two snd_max and snd_nxt.)

Outgoing segments are queued in take_outgoing() order; ACKs owed by several steps are
coalesced into one (a data segment carries it when one goes out).
"""

from __future__ import annotations

import dataclasses

from ..wire.addr import Endpoint
from ..wire.seq import SeqNum
from ..wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment
from .buffers import ReceiveBuffer, SendBuffer
from .config import TcpConfig
from .congestion import NewReno
from .errors import ConnectionFailed, ConnectionStateError
from .events import (
    Closed,
    Connected,
    DataReadable,
    Eof,
    Error,
    ErrorReason,
    Event,
    SendSpace,
    StateChanged,
    Urgent,
)
from .icmp_errors import IcmpErrorKind, Severity, acceptable, mss_for_mtu
from .info import TcbInfo, TimerKind
from .rack import Rack, probe_timeout, sent_after
from .rtt import RttEstimator
from .rules import Explainer, Rule
from .sack import Scoreboard, SentSegment
from .state import State
from .tcb import Tcb, segment_acceptable

# Flags as plain ints on the hot path: IntFlag arithmetic is slow in CPython, so each
# step tests `int(seg.flags)` and _emit() turns the result back into a TcpFlags.
SYN = int(TcpFlags.SYN)
ACK = int(TcpFlags.ACK)
FIN = int(TcpFlags.FIN)
RST = int(TcpFlags.RST)
PSH = int(TcpFlags.PSH)
URG = int(TcpFlags.URG)
_AS_FLAGS = tuple(TcpFlags(i) for i in range(256))
_ZERO = SeqNum(0)

DEFAULT_MSS = 536  # RFC 9293 3.7.1: assumed when the peer's SYN carries no MSS option
MAX_WINDOW_SHIFT = 14  # RFC 7323 2.3
SYN_RTO_AFTER_LOSS = 3.0  # RFC 6298 (5.7)
# RFC 2018 3: a SACK option of n blocks takes 8n + 2 bytes; with two NOPs, 4 fit in 40.
# They ride on pure ACKs only, so a full-sized data segment never outgrows the MTU.
MAX_SACK_BLOCKS = 4

# States in which we may (re)transmit data or our FIN.
_SENDING = frozenset(
    {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK}
)
# States in which the peer's data and FIN are still processed (RFC 9293 3.10.7.4 seventh step).
_RECEIVING = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
# States in which ABORT sends a RST (RFC 9293 3.10.5).
_PEER_HAS_TCB = frozenset(
    {State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT}
)


def window_shift_for(buffer: int) -> int:
    """The smallest Rcv.Wind.Shift that lets a 16-bit field describe `buffer` bytes."""
    shift = 0
    while (buffer >> shift) > 0xFFFF and shift < MAX_WINDOW_SHIFT:
        shift += 1
    return shift


class Connection:
    """One TCB and the RFC 9293 machinery around it. Create with open_active/open_passive."""

    def __init__(
        self, local: Endpoint, remote: Endpoint, *, iss: SeqNum, now: float, config: TcpConfig,
        passive: bool, explain: Explainer | None = None,
    ) -> None:
        self._why = explain  # who is told each rule applied (rules.py), or None: off
        self.local = local
        self.remote = remote
        self.config = config
        self.state = State.CLOSED
        self.tcb = Tcb(iss=iss, snd_una=iss, snd_nxt=iss, snd_up=iss)
        self._passive = passive  # opened by a LISTEN: an RST in SYN-RECEIVED returns there
        self._tx_nxt = iss  # where the next transmission starts (see the module docstring)
        self._sndbuf = SendBuffer(config.send_buffer)
        self._buf_seq = iss + 1  # sequence number of the send buffer's first byte
        self._rcvbuf = ReceiveBuffer(config.recv_buffer)
        self._mss = min(config.mss, DEFAULT_MSS)  # Eff.snd.MSS, fixed by the peer's SYN
        self._our_shift = window_shift_for(config.recv_buffer) if config.window_scale else None
        self._scaling = False  # both SYNs carried the window scale option
        self._sack = False  # both SYNs carried SACK-permitted (RFC 2018 2)
        self._board = Scoreboard()  # what is in flight, segment by segment (sack.py)
        self._rack = Rack(iss)  # RFC 8985 loss detection (used with SACK)
        self._tlp_end: SeqNum | None = None  # TLP.end_seq: a tail loss probe episode
        self._tlp_is_retrans = False  # TLP.is_retrans: the probe resent old data
        self._rtt = RttEstimator(config.rto_initial, config.rto_min, config.rto_max)
        self._cc = NewReno(self._mss, iss)
        self._nodelay = not config.nagle
        self._fin_queued = False  # CLOSE was called: our FIN follows the queued data
        self._eof = False  # the peer's FIN was reached in sequence
        self._snd_urgent = False  # urgent data sent and not yet acknowledged (SND.UP valid)
        self._rcv_urgent = False  # "urgent mode": urgent data up to RCV.UP not yet read
        self._failure: ErrorReason | None = None
        self._soft_error: ErrorReason | None = None  # the last soft ICMP error (MUST-47)
        # timers: absolute deadlines in `now` units, None when off
        self._rtx_at: float | None = None
        self._persist_at: float | None = None
        self._delack_at: float | None = None
        self._timewait_at: float | None = None
        self._keepalive = config.keepalive  # RFC 9293 3.8.4: on or off per connection
        self._keepalive_at: float | None = None
        self._pto_at: float | None = None  # RFC 8985 7.2 tail loss probe timeout
        self._reo_at: float | None = None  # RFC 8985 6.3 RACK reordering timer
        self._fin_wait_2_at: float | None = None  # FIN-WAIT-2 timeout (config.fin_wait_2_timeout)
        self._fully_closed = False  # CLOSE without half: nobody will read any more
        self._retries = 0  # consecutive retransmission timeouts (RFC 1122 4.2.3.5 R2)
        self._persist_backoff = 0
        self._probes_unanswered = 0  # zero-window or keep-alive probes without any reply
        self._rtt_seq: SeqNum | None = None  # the timed segment ends here (one at a time)
        self._rtt_sent_at = 0.0
        self._last_sent_at = now  # when data (or a FIN) last went out (RFC 5681 4.1)
        self._syn_retransmitted = False
        self._ack_now = False  # an ACK is owed and must go out with the next output
        self._challenge_acks = 0  # sent in the current one-second window (RFC 5961 7)
        self._challenge_acks_until = now
        self.challenge_acks_suppressed = 0  # challenge ACKs the limit left out
        self._unacked_segments = 0  # data segments received since our last ACK
        self._outgoing: list[TcpSegment] = []
        self._events: list[Event] = []
        self._now = now

    # ------------------------------------------------------------------ OPEN (3.10.1)

    @classmethod
    def open_active(
        cls, local: Endpoint, remote: Endpoint, *, iss: SeqNum, now: float,
        config: TcpConfig | None = None, explain: Explainer | None = None,
    ) -> Connection:
        """Active OPEN: send <SEQ=ISS><CTL=SYN>, enter SYN-SENT (RFC 9293 3.10.1)."""
        conn = cls(local, remote, iss=iss, now=now, config=config or TcpConfig(), passive=False,
                   explain=explain)
        if explain is not None:
            explain.decide(Rule.OPEN_ACTIVE, iss=iss)
        conn._send_syn()
        conn._set_state(State.SYN_SENT)
        return conn

    @classmethod
    def open_passive(
        cls, local: Endpoint, remote: Endpoint, *, iss: SeqNum, now: float,
        config: TcpConfig | None = None, explain: Explainer | None = None,
    ) -> Connection:
        """Fully specified passive OPEN: enter LISTEN and wait for the peer's SYN.

        The stack creates one per arriving SYN and feeds it that SYN; if the handshake
        fails with an RST the connection returns to LISTEN and the stack drops it.
        """
        conn = cls(local, remote, iss=iss, now=now, config=config or TcpConfig(), passive=True,
                   explain=explain)
        if explain is not None:
            explain.decide(Rule.OPEN_PASSIVE, iss=iss)
        conn._set_state(State.LISTEN)
        return conn

    # ------------------------------------------------------------------ properties

    @property
    def readable(self) -> int:
        """Bytes received in order and not yet read."""
        return len(self._rcvbuf)

    @property
    def send_space(self) -> int:
        """How many bytes send() would accept now."""
        if self._fin_queued or not self.state.can_send or self._failure is not None:
            return 0
        return self._sndbuf.space

    @property
    def eof_received(self) -> bool:
        """The peer's FIN was reached: once `readable` is 0, no more data will come."""
        return self._eof

    @property
    def urgent_pending(self) -> int:
        """RFC 9293 3.8.5 (MUST-33): how many octets must still be read to get past the
        urgent data (up to RCV.UP, some perhaps not yet arrived); 0 when there is none.
        Urgent data stays in line (RFC 6093 4: SO_OOBINLINE)."""
        if not self._rcv_urgent:
            return 0
        tcb = self.tcb
        return tcb.rcv_up - (tcb.rcv_nxt - len(self._rcvbuf))

    @property
    def failure(self) -> ErrorReason | None:
        """Why the connection failed, or None."""
        return self._failure

    @property
    def nodelay(self) -> bool:
        """True while Nagle's algorithm is off (set_nodelay)."""
        return self._nodelay

    @property
    def keepalive(self) -> bool:
        """True while keep-alives are on for this connection (set_keepalive)."""
        return self._keepalive

    def set_nodelay(self, nodelay: bool, now: float) -> None:
        """Turn Nagle's algorithm (RFC 9293 3.7.4) off (True) or back on."""
        self._now = now
        self._nodelay = nodelay
        if nodelay and self.state in _SENDING:
            self._output()

    def set_keepalive(self, on: bool, now: float) -> None:
        """Turn keep-alives on or off for this connection (RFC 9293 3.8.4, MUST-24)."""
        self._now = now
        self._keepalive = on
        if not on:
            self._keepalive_at = None
        elif self._keepalive_at is None and self.state in _SENDING | _RECEIVING:
            self._keepalive_at = now + self.config.keepalive_idle

    def set_tos(self, tos: int) -> None:
        """The TOS byte (DiffServ codepoint << 2) of this connection's packets from now on
        (RFC 9293 3.9.1 MUST-48); ValueError if it is not a byte."""
        self.config = dataclasses.replace(self.config, tos=tos)

    def fail(self, reason: ErrorReason, now: float) -> None:
        """The user's side gives up on the connection for `reason` (the stack, when this
        connection's processing raised): as ABORT, a RST where the peer has a TCB, then
        Error(reason) and CLOSED. `failure` is the one place the reason is kept."""
        self._now = now
        if self.state is State.CLOSED:
            return
        self._fail(reason, send_rst=self.state in _PEER_HAS_TCB)

    def take_outgoing(self) -> list[TcpSegment]:
        out = self._outgoing
        self._outgoing = []
        return out

    def take_events(self) -> list[Event]:
        events = self._events
        self._events = []
        return events

    # ------------------------------------------------------------------ SEND (3.10.2)

    def send(
        self, data: bytes | bytearray | memoryview, now: float, *, urgent: bool = False
    ) -> int:
        """SEND: queue as much of `data` as the send buffer takes; return that count.

        With `urgent`, the octets taken are urgent data: SND.UP moves to the octet after
        them (RFC 9293 3.10.2, 3.8.5 MUST-62), and every segment sent before that is
        acknowledged carries URG and the urgent pointer (_emit)."""
        self._now = now
        self._raise_if_failed()
        state = self.state
        if state is State.CLOSED:
            raise ConnectionStateError("connection does not exist")
        if self._fin_queued or not state.can_send:
            raise ConnectionStateError("connection closing: send after close")
        n = self._sndbuf.write(data)
        if self._why is not None:
            self._why.decide(Rule.SEND, queued=n, send_q=len(self._sndbuf))
        if urgent and n:
            self.tcb.snd_up = self._buf_seq + len(self._sndbuf)
            self._snd_urgent = True
        if state is State.LISTEN and n:
            # RFC 9293 3.10.2: SEND in LISTEN with the foreign socket known turns the
            # passive open into an active one (Figure 5: LISTEN --SEND--> SYN-SENT)
            self._passive = False
            self._send_syn()
            self._set_state(State.SYN_SENT)
        elif state in _SENDING:
            tcb = self.tcb
            if tcb.snd_nxt == tcb.snd_una and now - self._last_sent_at > self._rtt.rto:
                self._cc.restart_after_idle()  # RFC 5681 4.1: idle for more than an RTO
            self._output()
        return n

    # ------------------------------------------------------------------ RECEIVE (3.10.3)

    def receive(self, max_bytes: int, now: float) -> bytes:
        """RECEIVE: up to max_bytes of in-order data; b"" when none is buffered.

        Reading opens the window; the update is announced only once it has grown by
        min(buffer/2, MSS) (receiver SWS avoidance, RFC 9293 3.8.6.2.2).
        """
        self._now = now
        self._raise_if_failed()
        data = self._rcvbuf.read(max_bytes)
        if self._rcv_urgent and self.urgent_pending <= 0:
            self._rcv_urgent = False  # read past RCV.UP: urgent mode is over
        if data and self.state in _RECEIVING and self._window_update_due():
            self._ack_now = True
            self._output()
        return data

    # ------------------------------------------------------------------ CLOSE (3.10.4)

    def close(self, now: float, *, half: bool = False) -> None:
        """CLOSE: no more data from us; our FIN follows the queued data (a half-close).

        Idempotent once our FIN is queued (RFC 9293 3.10.4 allows "ok" in FIN-WAIT).
        Closing with unread received data aborts with RST instead (RFC 1122 4.2.2.13),
        unless `half`: the user only shuts down sending (shutdown(SHUT_WR), a stream's
        send_eof) and will still read, so no data is lost. Data arriving after a full
        CLOSE is still buffered (DataReadable); answering it with RST is the stack's call.
        """
        self._now = now
        self._raise_if_failed()
        state = self.state
        if not half:
            self._fully_closed = True
            if state is State.FIN_WAIT_2:
                self._arm_fin_wait_2()
        if self._fin_queued or state in (State.CLOSED, State.TIME_WAIT):
            return
        if state in (State.LISTEN, State.SYN_SENT):
            # RFC 9293 3.10.4: delete the TCB (queued SENDs get "error: closing")
            self._set_state(State.CLOSED)
            return
        if not half and (len(self._rcvbuf) or (self._rcvbuf.has_gaps and not self._eof)):
            # RFC 1122 4.2.2.13: data would be lost, so tell the peer with a RST
            if self._why is not None:
                self._why.decide(Rule.CLOSE_WITH_UNREAD_DATA, recv_q=len(self._rcvbuf))
            self.abort(now)
            return
        if self._why is not None:
            self._why.decide(Rule.CLOSE, send_q=len(self._sndbuf), half=half)
        self._fin_queued = True
        if state is State.SYN_RECEIVED:
            # RFC 9293 3.10.4: with nothing queued, send the FIN now (FIN-WAIT-1);
            # otherwise queue it until ESTABLISHED (_enter_established moves on then)
            if len(self._sndbuf) == 0:
                self._set_state(State.FIN_WAIT_1)
                self._send_queued()
            return
        if state is State.ESTABLISHED:
            self._set_state(State.FIN_WAIT_1)
        elif state is State.CLOSE_WAIT:
            self._set_state(State.LAST_ACK)
        self._output()

    # ------------------------------------------------------------------ ABORT (3.10.5)

    def abort(self, now: float) -> None:
        """ABORT: send <SEQ=SND.NXT><CTL=RST> where the peer has a TCB; enter CLOSED."""
        self._now = now
        state = self.state
        if state is State.CLOSED:
            return
        if self._why is not None:
            self._why.decide(Rule.ABORT, snd_nxt=self.tcb.snd_nxt)
        if state in _PEER_HAS_TCB:
            self._emit_rst(self.tcb.snd_nxt)
        self._set_state(State.CLOSED)

    # ------------------------------------------------------------------ TIME-WAIT reuse

    def accepts_new_syn(self, seg: TcpSegment) -> bool:
        """May this SYN, arriving for our four-tuple, start a new incarnation of it?

        RFC 9293 3.6.1 (MAY-2) after RFC 1122 4.2.2.13: in TIME-WAIT, a bare SYN whose
        SEG.SEQ is beyond RCV.NXT cannot be mistaken for an old duplicate of this
        connection. (RFC 6191 decides by timestamps instead; we keep none.) If True, the
        stack deletes this TCB and gives the SYN to its listener, with an ISS from
        new_incarnation_iss(); otherwise the SYN goes to on_segment(), which answers it
        with a challenge ACK (RFC 5961 4).
        """
        return (
            self.state is State.TIME_WAIT
            and int(seg.flags) & (SYN | ACK | RST | FIN) == SYN
            and seg.seq > self.tcb.rcv_nxt
        )

    def new_incarnation_iss(self, isn: SeqNum) -> SeqNum:
        """RFC 1122 4.2.2.13 (a): the new incarnation's ISS must be larger than any
        sequence number this one used; `isn` is the generator's choice (RFC 6528)."""
        snd_nxt = self.tcb.snd_nxt
        return isn if isn > snd_nxt else snd_nxt + 1

    # ------------------------------------------------------------------ ICMP errors (3.9.2.1)

    def on_icmp_error(
        self, kind: IcmpErrorKind, seq: SeqNum, now: float, *, mtu: int = 0
    ) -> bool:
        """An ICMP error quoting our segment with sequence number `seq` (the stack found
        us by the quoted four-tuple; icmp_errors.py says what each kind means). Returns
        False, changing nothing, unless SND.UNA =< seq < SND.NXT (RFC 5927 4.1)."""
        self._now = now
        tcb = self.tcb
        if not acceptable(seq, tcb.snd_una, tcb.snd_nxt):
            return False
        severity = kind.severity
        if severity is Severity.PACKET_TOO_BIG:
            if self.state in _SENDING:  # a SYN is far below any MTU: nothing to resize
                self._lower_mss(mss_for_mtu(mtu, self._mss))
        elif severity is Severity.HARD and self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            assert kind.reason is not None
            self._fail(kind.reason, send_rst=False)  # RFC 1122 4.2.3.9, SHLD-26
        else:
            # RFC 1122 4.2.3.9 (MUST-56): a soft error never aborts; nor, once
            # synchronized, does a hard one (RFC 5927 5.2, as Linux). Remember it for
            # the application (MUST-47, SHLD-25): a timeout reports it (_fail).
            self._soft_error = kind.reason
        return True

    @property
    def send_mss(self) -> int:
        """Eff.snd.MSS (RFC 9293 3.7.1): the most payload one packet on the wire carries."""
        return self._mss

    def _lower_mss(self, mss: int) -> None:
        """The path MTU fell (RFC 1191): send at most `mss` from now on, and resend at
        once, at the new size and without slow start, what was too big (RFC 1191 6.5)."""
        if mss >= self._mss:
            return
        self._mss = mss
        self._cc.smss = mss
        if self._sack:
            self._board.split_lost(mss)  # _retransmit_lost() resends the pieces
        else:
            self._tx_nxt = self.tcb.snd_una  # go back N, as after a timeout
        self._output()

    # ------------------------------------------------------------------ STATUS (3.10.6)

    def info(self, now: float) -> TcbInfo:
        tcb = self.tcb
        kind, at = self._earliest_timer()
        return TcbInfo(
            state=self.state,
            local=self.local,
            remote=self.remote,
            recv_q=len(self._rcvbuf),
            send_q=len(self._sndbuf),
            timer=kind,
            timer_left=None if at is None else max(0.0, at - now),
            retransmits=self._retries,
            iss=tcb.iss.value,
            irs=None if tcb.irs is None else tcb.irs.value,
            snd_una=tcb.snd_una.value,
            snd_nxt=tcb.snd_nxt.value,
            snd_wnd=tcb.snd_wnd,
            rcv_nxt=None if tcb.irs is None else tcb.rcv_nxt.value,
            rcv_wnd=tcb.rcv_wnd,
            mss=self._mss,
            cwnd=self._cc.cwnd,
            ssthresh=self._cc.ssthresh,
            srtt=self._rtt.srtt,
            rto=self._rtt.rto,
            soft_error=None if self._soft_error is None else self._soft_error.value,
        )

    # ------------------------------------------------------------------ timers (3.10.8)

    def next_deadline(self) -> float | None:
        """When on_timer() next has work to do, or None."""
        return self._earliest_timer()[1]

    def _earliest_timer(self) -> tuple[TimerKind | None, float | None]:
        best: tuple[TimerKind | None, float | None] = (None, None)
        for kind, at in (
            (TimerKind.TIME_WAIT, self._timewait_at),
            (TimerKind.TIME_WAIT, self._fin_wait_2_at),  # as Linux's ss shows it
            (TimerKind.RETRANSMIT, self._rtx_at),
            (TimerKind.RETRANSMIT, self._pto_at),  # loss probe and RACK timers: "on" too
            (TimerKind.RETRANSMIT, self._reo_at),
            (TimerKind.PERSIST, self._persist_at),
            (TimerKind.DELAYED_ACK, self._delack_at),
            (TimerKind.KEEPALIVE, self._keepalive_at),
        ):
            if at is not None and (best[1] is None or at < best[1]):
                best = (kind, at)
        return best

    def on_timer(self, now: float) -> None:
        """Fire every timer due at `now` (RFC 9293 3.10.8)."""
        self._now = now
        if self.state is State.CLOSED:
            return
        if self._timewait_at is not None and now >= self._timewait_at:
            # RFC 9293 3.10.8 time-wait timeout: delete the TCB
            self._set_state(State.CLOSED)
            return
        if self._fin_wait_2_at is not None and now >= self._fin_wait_2_at:
            # the application is gone and the peer never sent its FIN: delete the TCB
            self._set_state(State.CLOSED)
            return
        if self._rtx_at is not None and now >= self._rtx_at:
            self._on_retransmit_timeout()
            if self.state is State.CLOSED:
                return
        if self._reo_at is not None and now >= self._reo_at:
            self._on_reorder_timeout()
        if self._pto_at is not None and now >= self._pto_at:
            self._on_probe_timeout()
        if self._persist_at is not None and now >= self._persist_at:
            self._on_persist_timeout()
            if self.state is State.CLOSED:
                return
        if self._delack_at is not None and now >= self._delack_at:
            self._ack_now = True  # RFC 1122 4.2.3.2: the delay is over
        if self._keepalive_at is not None and now >= self._keepalive_at:
            self._on_keepalive_timeout()
            if self.state is State.CLOSED:
                return
        self._output()

    def _on_retransmit_timeout(self) -> None:
        """RFC 6298 (5.4)-(5.6); RFC 1122 4.2.3.5 gives up after R2 retransmissions."""
        self._rtx_at = None
        state = self.state
        tcb = self.tcb
        handshake = tcb.snd_una == tcb.iss  # our SYN is not acknowledged yet
        limit = self.config.syn_retries if handshake else self.config.max_retries
        if self._retries >= limit:
            # RFC 1122 4.2.3.5: close the connection. A peer that never synchronized has
            # nothing to reset; any other peer is told with a RST.
            self._fail(ErrorReason.TIMED_OUT, send_rst=state is not State.SYN_SENT)
            return
        self._retries += 1
        self._rtt.back_off()  # RFC 6298 (5.5)
        self._rtt_seq = None  # Karn: no sample from a retransmitted segment
        if handshake:
            self._syn_retransmitted = True
            self._send_syn()  # (5.4) the earliest unacknowledged segment is our SYN
            return
        # RFC 5681 3.1 eq. (4) and the loss window; then resend from SND.UNA in slow
        # start. _output() retransmits the first segment (5.4) and restarts the timer
        # with the doubled RTO (5.6).
        self._cc.on_timeout(tcb.snd_nxt - tcb.snd_una, tcb.snd_nxt, first=self._retries == 1)
        self._pto_at = self._reo_at = None
        self._tlp_end = None
        if self._sack:
            # RFC 6675 5.1, RFC 8985 6.3: everything not SACKed is lost, resent in order
            # by _retransmit_lost(); what the peer SACKed is not sent again (the scoreboard
            # is kept, not cleared as RFC 2018 8 once suggested; see sack.py on reneging)
            self._board.mark_all_lost()
        else:
            self._tx_nxt = tcb.snd_una  # go back N

    def _on_reorder_timeout(self) -> None:
        """RFC 8985 6.3: the RACK reordering window ran out: look for losses again."""
        self._reo_at = None
        if self.state in _SENDING:
            self._detect_losses()

    def _on_probe_timeout(self) -> None:
        """RFC 8985 7.3: no ACK for a PTO: send a tail loss probe, new data if the peer's
        window allows (regardless of cwnd), else the last segment again; re-arm the RTO."""
        self._pto_at = None
        tcb = self.tcb
        if self.state not in _SENDING or tcb.snd_nxt == tcb.snd_una:
            return
        end = self._buf_seq + len(self._sndbuf)
        nxt = tcb.snd_nxt
        n = max(0, min(self._mss, end - nxt, tcb.snd_una + tcb.snd_wnd - nxt))
        fin = self._fin_queued and nxt + n == end
        if n or fin:
            self._tx_nxt = self._transmit(nxt, n, fin)
            self._tlp_is_retrans = False
        else:
            last = self._board.last()
            if last is None:
                return
            self._resend(last.start, last.end)
            self._tlp_is_retrans = True
        self._tlp_end = tcb.snd_nxt
        self._rtx_at = self._now + self._rtt.rto

    def _on_persist_timeout(self) -> None:
        """Probe a zero window (RFC 9293 3.8.6.1), or the SWS override (3.8.6.2.1)."""
        self._persist_at = None
        if self.state not in _SENDING:
            return  # everything was acknowledged meanwhile (FIN-WAIT-2, TIME-WAIT)
        if self._probes_unanswered >= self.config.max_retries:
            # the peer stopped answering even our probes (RFC 1122 4.2.2.17 only forbids
            # giving up while it still answers)
            self._fail(ErrorReason.TIMED_OUT, send_rst=True)
            return
        self._probes_unanswered += 1
        self._persist_backoff += 1
        tcb = self.tcb
        end = self._buf_seq + len(self._sndbuf)
        if tcb.snd_wnd == 0:
            # "transmit at least one octet of new data (if available), or retransmit"
            una = tcb.snd_una
            if end - una > 0:
                self._transmit(una, 1, False, probe=True)
            elif self._fin_queued and una == end:
                self._transmit(una, 0, True, probe=True)
            return
        # The override timeout: send what the window allows even if it is small
        nxt = self._tx_nxt
        n = min(end - nxt, tcb.snd_una + tcb.snd_wnd - nxt, self._mss)
        if n > 0:
            fin = self._fin_queued and nxt + n == end
            self._tx_nxt = self._transmit(nxt, n, fin)

    def _on_keepalive_timeout(self) -> None:
        """RFC 1122 4.2.3.6: probe an idle connection with <SEQ=SND.NXT-1><ACK=RCV.NXT>.
        RFC 9293 3.8.4: only when no sent data is outstanding (MUST-26), and only
        keepalive_probes unanswered probes in a row end the connection (MUST-29)."""
        cfg = self.config
        tcb = self.tcb
        if tcb.snd_nxt != tcb.snd_una:
            # not idle: the retransmission timer watches the peer
            self._keepalive_at = self._now + cfg.keepalive_idle
            return
        if self._probes_unanswered >= cfg.keepalive_probes:
            self._fail(ErrorReason.TIMED_OUT, send_rst=True)
            return
        self._probes_unanswered += 1
        self._emit(tcb.snd_nxt - 1, ACK)
        self._keepalive_at = self._now + cfg.keepalive_interval

    def _persist_interval(self) -> float:
        cfg = self.config
        base = max(self._rtt.rto, cfg.persist_min)
        return min(base * (1 << min(self._persist_backoff, 16)), cfg.rto_max)

    # ------------------------------------------------------------------ SEGMENT ARRIVES

    def on_segment(self, seg: TcpSegment, now: float) -> None:
        """SEGMENT ARRIVES (RFC 9293 3.10.7). Never raises on anything the peer sends."""
        self._now = now
        state = self.state
        if state is State.CLOSED:
            self._segment_arrives_closed(seg)
            return
        if state is State.LISTEN:
            self._segment_arrives_listen(seg)
        elif state is State.SYN_SENT:
            self._segment_arrives_syn_sent(seg)
        else:
            self._segment_arrives_synchronized(seg)
        if self.state is not State.CLOSED and self.state is not State.LISTEN:
            self._output()

    def _segment_arrives_closed(self, seg: TcpSegment) -> None:
        """RFC 9293 3.10.7.1: CLOSED. Answer anything but a RST with a RST."""
        if self._why is not None:
            self._why.decide(
                Rule.CLOSED_RST_DROPPED if seg.flags & TcpFlags.RST else Rule.CLOSED_RESET,
            )
        self._reset_for(seg)

    def _segment_arrives_listen(self, seg: TcpSegment) -> None:
        """RFC 9293 3.10.7.2: LISTEN."""
        flags = int(seg.flags)
        if flags & RST:
            if self._why is not None:
                self._why.decide(Rule.LISTEN_RST_IGNORED)
            return  # first: an incoming RST is ignored
        if flags & ACK:
            # second: "any acknowledgment is bad if it arrives on a connection still in
            # the LISTEN state": <SEQ=SEG.ACK><CTL=RST>
            if self._why is not None:
                self._why.decide(Rule.LISTEN_ACK_RESET, seg_ack=seg.ack)
            self._emit_rst(seg.ack)
            return
        if not flags & SYN:
            if self._why is not None:
                self._why.decide(Rule.LISTEN_DROP)
            return  # fourth: "other text or control ... drop the segment"
        if self._why is not None:
            self._why.decide(Rule.LISTEN_SYN, irs=seg.seq)
        # third: a SYN. (Security/compartment checks are not applicable, 3.10.7.2.)
        tcb = self.tcb
        tcb.irs = seg.seq
        tcb.rcv_nxt = seg.seq + 1
        self._take_syn_options(seg.options)
        tcb.snd_wnd = seg.window  # a SYN's window is never scaled (RFC 7323 2.2)
        tcb.max_snd_wnd = seg.window
        tcb.snd_wl1 = seg.seq
        tcb.snd_wl2 = tcb.snd_una
        # "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> is sent ... SND.NXT is set to ISS+1 and
        # SND.UNA to ISS". Text and FIN on the SYN are not kept: the peer will resend
        # them once we have acknowledged its SYN.
        self._send_syn()
        self._set_state(State.SYN_RECEIVED)

    def _segment_arrives_syn_sent(self, seg: TcpSegment) -> None:
        """RFC 9293 3.10.7.3: SYN-SENT."""
        tcb = self.tcb
        flags = int(seg.flags)
        # first: check the ACK bit
        if flags & ACK and not (tcb.iss < seg.ack <= tcb.snd_nxt):
            # "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is
            # set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>"
            if self._why is not None:
                self._why.decide(
                    Rule.SYN_SENT_BAD_ACK, seg_ack=seg.ack, iss=tcb.iss, snd_nxt=tcb.snd_nxt,
                )
            if not flags & RST:
                self._emit_rst(seg.ack)
            return
        # second: check the RST bit
        if flags & RST:
            # RFC 5961 3.2 / RFC 9293: an RST is acceptable here only if it acknowledges
            # our SYN; then "error: connection reset" (refused) and CLOSED
            if self._why is not None:
                self._why.decide(
                    Rule.SYN_SENT_REFUSED if flags & ACK else Rule.SYN_SENT_RST_DROPPED,
                )
            if flags & ACK:
                self._fail(ErrorReason.CONNECTION_REFUSED, send_rst=False)
            return
        # third: security (not applicable)
        # fourth: check the SYN bit
        if not flags & SYN:
            if self._why is not None:
                self._why.decide(Rule.SYN_SENT_DROP)
            return  # fifth: "if neither of the SYN or RST bits is set, drop the segment"
        tcb.irs = seg.seq
        tcb.rcv_nxt = seg.seq + 1
        self._take_syn_options(seg.options)
        if flags & ACK:
            tcb.snd_una = seg.ack
            self._take_rtt_sample(seg.ack)
            self._retries = 0
            self._rtx_at = None
            if tcb.snd_una > tcb.iss:
                # our SYN has been ACKed: ESTABLISHED, send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
                if self._why is not None:
                    self._why.decide(
                        Rule.SYN_SENT_ESTABLISHED, seg_ack=seg.ack, iss=tcb.iss, irs=seg.seq
                    )
                tcb.snd_wnd = seg.window  # never scaled in a SYN
                tcb.max_snd_wnd = seg.window
                tcb.snd_wl1 = seg.seq
                tcb.snd_wl2 = seg.ack
                self._tx_nxt = tcb.snd_nxt
                self._enter_established()
                self._ack_now = True
                # "If there are other controls or text in the segment, continue processing
                # at the sixth step below where the URG bit is checked"
                if seg.payload or flags & (FIN | URG):
                    self._check_urg(seg)
                    self._process_segment_text(seg)
                    self._check_fin(seg)
                return
        # Simultaneous open (Figure 8): enter SYN-RECEIVED, form <SEQ=ISS><ACK=RCV.NXT>
        # <CTL=SYN,ACK>. Text on the SYN is not kept (the peer resends it).
        if self._why is not None:
            self._why.decide(Rule.SYN_SENT_SIMULTANEOUS, irs=seg.seq)
        tcb.snd_wnd = seg.window
        tcb.max_snd_wnd = seg.window
        tcb.snd_wl1 = seg.seq
        tcb.snd_wl2 = tcb.snd_una
        self._set_state(State.SYN_RECEIVED)
        self._send_syn()

    def _segment_arrives_synchronized(self, seg: TcpSegment) -> None:
        """RFC 9293 3.10.7.4: SYN-RECEIVED and the synchronized states, step by step."""
        checked = self._check_sequence(seg)
        if checked is None:
            return
        seg = checked
        self._probes_unanswered = 0
        self._soft_error = None  # the peer answered: the path works (Linux clears sk_err_soft)
        if self._keepalive_at is not None:  # RFC 9293 3.8.4: idle again from now
            self._keepalive_at = self._now + self.config.keepalive_idle
        if not self._check_rst(seg):
            return
        if not self._check_security(seg):
            return
        if not self._check_syn(seg):
            return
        if not self._check_ack(seg):
            return
        self._check_urg(seg)
        self._process_segment_text(seg)
        self._check_fin(seg)

    def _check_sequence(self, seg: TcpSegment) -> TcpSegment | None:
        """First step (RFC 9293 3.10.7.4): is the segment acceptable?

        Returns the segment to go on with, or None when it was dropped (after the ACK
        the RFC asks for, unless it was a RST).
        """
        tcb = self.tcb
        flags = int(seg.flags)
        seg_len = len(seg.payload) + bool(flags & SYN) + bool(flags & FIN)  # SEG.LEN
        if segment_acceptable(seg.seq, seg_len, tcb.rcv_nxt, tcb.rcv_wnd):
            if self._why is not None:
                self._why.decide(
                    Rule.ACCEPTABLE, seg_seq=seg.seq, seg_len=seg_len, rcv_nxt=tcb.rcv_nxt,
                    rcv_wnd=tcb.rcv_wnd,
                )
            return seg
        if tcb.rcv_wnd == 0 and seg.seq == tcb.rcv_nxt:
            # "If the RCV.WND is zero, no segments will be acceptable, but special
            # allowance should be made to accept valid ACKs, URGs, and RSTs": keep the
            # control part, drop the text (and the FIN behind it), tell the peer.
            # A bare FIN needs no buffer space, so it is taken too.
            if self._why is not None:
                self._why.decide(
                    Rule.ZERO_WINDOW_CONTROL, seg_seq=seg.seq, seg_len=seg_len, rcv_wnd=0,
                )
            if not seg.payload:
                return seg
            self._ack_now = True
            return TcpSegment(
                seg.src_port, seg.dst_port, seg.seq, seg.ack, _AS_FLAGS[flags & ~FIN], seg.window,
                seg.options, b"", seg.urgent,
            )
        if flags & RST:
            if self._why is not None:
                self._why.decide(Rule.NOT_ACCEPTABLE_RST, seg_seq=seg.seq, rcv_nxt=tcb.rcv_nxt,
                                 rcv_wnd=tcb.rcv_wnd)
            return None
        state = self.state
        if state is State.TIME_WAIT and flags & FIN and seg.seq + seg_len == tcb.rcv_nxt:
            # The peer retransmitted its FIN (our last ACK was lost): ACK it again and
            # restart the 2 MSL timeout (RFC 9293 3.10.7.4 eighth step, TIME-WAIT).
            if self._why is not None:
                self._why.decide(Rule.TIME_WAIT_FIN_AGAIN, seg_seq=seg.seq, rcv_nxt=tcb.rcv_nxt,
                                 msl=self.config.msl)
            self._timewait_at = self._now + 2 * self.config.msl
        elif state is State.SYN_RECEIVED and flags & SYN and not flags & ACK and tcb.irs == seg.seq:
            # The peer resent its SYN: our SYN,ACK was lost. The RFC's reply is an ACK;
            # like most stacks we resend the SYN,ACK (which is that ACK plus our SYN),
            # so the peer need not wait for our retransmission timer.
            if self._why is not None:
                self._why.decide(Rule.SYN_RECEIVED_SYN_AGAIN, seg_seq=seg.seq, irs=tcb.irs)
            self._rtt_seq = None  # Karn
            self._syn_retransmitted = True
            self._send_syn()
            return None
        if self._sack and seg.payload and seg.seq + len(seg.payload) <= tcb.rcv_nxt:
            # all old: a duplicate, reported in the ACK's first SACK block (RFC 2883 4.1.1)
            self._rcvbuf.note_duplicate(seg.seq - tcb.rcv_nxt, len(seg.payload))
        self._ack_now = True  # "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>", then drop
        if self._why is not None:
            self._why.decide(
                Rule.NOT_ACCEPTABLE, seg_seq=seg.seq, seg_len=seg_len, rcv_nxt=tcb.rcv_nxt,
                rcv_wnd=tcb.rcv_wnd,
            )
        return None

    def _check_rst(self, seg: TcpSegment) -> bool:
        """Second step: check the RST bit (RFC 9293 3.10.7.4, RFC 5961 3). True: go on."""
        if not int(seg.flags) & RST:
            return True
        state = self.state
        if state is State.TIME_WAIT:
            # RFC 1337 ("TIME-WAIT assassination"): a RST, perhaps an old duplicate, must
            # not cut TIME-WAIT short, or old segments could corrupt a new incarnation of
            # this connection. Ignore it; the 2 MSL timer ends TIME-WAIT.
            return False
        if seg.seq != self.tcb.rcv_nxt:
            # RFC 5961 3.2: in the window but not exactly RCV.NXT: challenge ACK
            self._challenge_ack()
            return False
        if state is State.SYN_RECEIVED:
            if self._passive:
                # "If this connection was initiated with a passive OPEN, then return this
                # connection to the LISTEN state and return. The user need not be informed."
                self._return_to_listen()
            else:
                self._fail(ErrorReason.CONNECTION_REFUSED, send_rst=False)
            return False
        if state in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT):
            # "any outstanding RECEIVEs and SEND should receive 'reset' responses ...
            # signal 'connection reset'. Enter the CLOSED state, delete the TCB"
            self._fail(ErrorReason.CONNECTION_RESET, send_rst=False)
            return False
        # CLOSING, LAST-ACK: "enter the CLOSED state, delete the TCB, and return"
        self._set_state(State.CLOSED)
        return False

    def _check_security(self, seg: TcpSegment) -> bool:
        """Third step: security/compartment (RFC 9293 3.10.7.4). RFC 9293 deprecates the
        IP security option for TCP's purposes (3.7.5), so there is nothing to check."""
        return True

    def _check_syn(self, seg: TcpSegment) -> bool:
        """Fourth step: check the SYN bit (RFC 9293 3.10.7.4, RFC 5961 4). True: go on."""
        if not int(seg.flags) & SYN:
            return True
        if self.state is State.SYN_RECEIVED and self._passive:
            # "If the connection was initiated with a passive OPEN, then return this
            # connection to the LISTEN state and return."
            self._return_to_listen()
            return False
        # "irrespective of the sequence number, TCP endpoints MUST send a 'challenge ACK'
        # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> ... and stop processing". In TIME-WAIT too:
        # a SYN that may start a new incarnation (accepts_new_syn(), RFC 1122 4.2.2.13)
        # is the stack's to hand to its listener before it ever gets here.
        self._challenge_ack()
        return False

    def _check_ack(self, seg: TcpSegment) -> bool:
        """Fifth step: check the ACK field (RFC 9293 3.10.7.4, RFC 5961 5). True: go on."""
        if not int(seg.flags) & ACK:
            return False  # "if the ACK bit is off, drop the segment and return"
        tcb = self.tcb
        ack = seg.ack
        state = self.state
        if state is State.SYN_RECEIVED:
            if not (tcb.snd_una < ack <= tcb.snd_nxt):
                self._emit_rst(ack)  # "form a reset segment <SEQ=SEG.ACK><CTL=RST>"
                return False
            # "enter ESTABLISHED state and continue processing with the variables below
            # set to: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK"
            tcb.snd_wnd = seg.window << tcb.snd_wscale
            tcb.max_snd_wnd = max(tcb.max_snd_wnd, tcb.snd_wnd)
            tcb.snd_wl1 = seg.seq
            tcb.snd_wl2 = ack
            tcb.snd_una = ack
            self._take_rtt_sample(ack)
            self._retries = 0
            self._rtx_at = None
            self._tx_nxt = tcb.snd_nxt
            self._enter_established()
            if self.state is not State.FIN_WAIT_1:
                return True
            # a FIN queued in SYN-RECEIVED went out with it; fall through to see if this
            # ACK covers it
        if ack > tcb.snd_nxt:
            # "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an
            # ACK, drop the segment, and return" (also RFC 5961 5.2)
            self._challenge_ack()
            return False
        if ack < tcb.snd_una - tcb.max_snd_wnd:
            # RFC 5961 5.2: too old to be a plausible duplicate: challenge ACK, drop
            self._challenge_ack()
            return False
        wnd = seg.window << tcb.snd_wscale
        if self._sack:
            if ack > tcb.snd_una:
                self._on_sack_ack(seg, self._on_new_ack(ack))
            elif ack == tcb.snd_una and tcb.snd_nxt != ack:
                self._on_sack_ack(seg, [])  # a duplicate ACK: its SACK blocks matter
        elif ack > tcb.snd_una:
            self._on_new_ack(ack)
        elif self._is_duplicate_ack(seg, wnd) and self._cc.on_duplicate_ack(
            ack, tcb.snd_nxt - tcb.snd_una, tcb.snd_nxt
        ):
            self._retransmit_first()  # RFC 5681 3.2 (3): fast retransmit
        # "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated. If
        # (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)), set
        # SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK."
        if ack >= tcb.snd_una and (
            tcb.snd_wl1 < seg.seq or (tcb.snd_wl1 == seg.seq and tcb.snd_wl2 <= ack)
        ):
            tcb.snd_wnd = wnd
            tcb.snd_wl1 = seg.seq
            tcb.snd_wl2 = ack
            if wnd > tcb.max_snd_wnd:
                tcb.max_snd_wnd = wnd
        fin_acked = self._fin_acked()
        if state is State.FIN_WAIT_1:
            # "if the FIN segment is now acknowledged, then enter FIN-WAIT-2". If this
            # segment carries the peer's FIN too, the eighth step goes straight to
            # TIME-WAIT ("If our FIN has been ACKed (perhaps in this segment)").
            if fin_acked and not int(seg.flags) & FIN:
                self._set_state(State.FIN_WAIT_2)
        elif state is State.CLOSING:
            # "if the ACK acknowledges our FIN, then enter the TIME-WAIT state;
            # otherwise, ignore the segment"
            if fin_acked:
                self._enter_time_wait()
            return False
        elif state is State.LAST_ACK:
            # "If our FIN is now acknowledged, delete the TCB, enter the CLOSED state"
            if fin_acked:
                self._set_state(State.CLOSED)
            return False
        return True

    def _check_urg(self, seg: TcpSegment) -> None:
        """Sixth step: the URG bit (RFC 9293 3.10.7.4). "RCV.UP <- max(RCV.UP,SEG.UP),
        and signal the user that the remote side has urgent data if the urgent pointer
        (RCV.UP) is in advance of the data consumed", once per run of urgent data. The
        pointer names the first octet after the urgent data (3.8.5, RFC 6093); the
        urgent data itself is delivered in line with the rest."""
        if not int(seg.flags) & URG or self.state not in _RECEIVING:
            return
        tcb = self.tcb
        up = seg.seq + seg.urgent
        if self._rcv_urgent:
            if up > tcb.rcv_up:
                tcb.rcv_up = up  # more urgent data in the same run: no new signal
        elif up > tcb.rcv_nxt - len(self._rcvbuf):  # beyond what the user has read
            tcb.rcv_up = up
            self._rcv_urgent = True
            self._events.append(Urgent())

    def _process_segment_text(self, seg: TcpSegment) -> None:
        """Seventh step: process the segment text (RFC 9293 3.10.7.4).

        In ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2 the text goes into the receive buffer;
        segments ahead of RCV.NXT are held for later (out-of-order reassembly). Other
        states ignore text (the peer's FIN already came).
        """
        payload = seg.payload
        if not payload or self.state not in _RECEIVING:
            return
        tcb = self.tcb
        rcvbuf = self._rcvbuf
        data_seq = seg.seq + 1 if int(seg.flags) & SYN else seg.seq
        rel = data_seq - tcb.rcv_nxt
        had_gaps = rcvbuf.has_gaps
        delivered = rcvbuf.insert(rel, payload, tcb.rcv_wnd)
        if delivered:
            tcb.rcv_nxt = tcb.rcv_nxt + delivered
            tcb.rcv_wnd = max(0, tcb.rcv_wnd - delivered)
            self._events.append(DataReadable())
        if rel != 0 or had_gaps or delivered < len(payload):
            # RFC 5681 4.2: ACK at once for out-of-order data and for data filling a gap
            # (and for anything we could not take)
            self._ack_now = True
        else:  # a segment longer than the MSS is a coalesced train (TSO/GRO): its count
            self._ack_delayed(segments=len(payload) // self.config.mss or 1)

    def _check_fin(self, seg: TcpSegment) -> None:
        """Eighth step: check the FIN bit (RFC 9293 3.10.7.4).

        A FIN ahead of RCV.NXT (out of order) is held by the receive buffer and processed
        here once the data before it has arrived.
        """
        state = self.state
        if state not in _RECEIVING:
            return
        tcb = self.tcb
        rcvbuf = self._rcvbuf
        if int(seg.flags) & FIN:
            fin_seq = (seg.seq + 1 if int(seg.flags) & SYN else seg.seq) + len(seg.payload)
            rel = fin_seq - tcb.rcv_nxt
            if 0 < rel <= tcb.rcv_wnd:
                rcvbuf.hold_fin(rel)
            elif rel == 0:
                rcvbuf.hold_fin(0)
        if not rcvbuf.fin_reached:
            if state is State.FIN_WAIT_1 and self._fin_acked():
                self._set_state(State.FIN_WAIT_2)
            return
        # "advance RCV.NXT over the FIN, and send an acknowledgment for the FIN ...
        # signal the user 'connection closing'"
        rcvbuf.fin_at = None
        tcb.rcv_nxt = tcb.rcv_nxt + 1
        self._eof = True
        self._events.append(Eof())
        if state is State.ESTABLISHED:
            # -> CLOSE-WAIT. The ACK is delayed: if the application closes soon, our FIN
            # carries it (FIN+ACK, the "three-way close" seen with real peers).
            self._set_state(State.CLOSE_WAIT)
            self._ack_delayed(force_timer=True)
        elif state is State.FIN_WAIT_1:
            self._ack_now = True
            if self._fin_acked():
                self._enter_time_wait()  # "perhaps in this segment": FIN-WAIT-1 -> TIME-WAIT
            else:
                self._set_state(State.CLOSING)
        else:  # FIN-WAIT-2
            self._ack_now = True
            self._enter_time_wait()

    # ------------------------------------------------------------------ the steps' helpers

    def _challenge_ack(self) -> None:
        """Owe the peer a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 5961
        3.2, 4.2, 5.2), but at most config.challenge_ack_limit in any one second
        (RFC 5961 7); the ones left out are counted in challenge_acks_suppressed."""
        limit = self.config.challenge_ack_limit
        if limit is not None:
            if self._now >= self._challenge_acks_until:
                self._challenge_acks_until = self._now + 1.0  # a new one-second window
                self._challenge_acks = 0
            if self._challenge_acks >= limit:
                self.challenge_acks_suppressed += 1
                return
            self._challenge_acks += 1
        self._ack_now = True

    def _is_duplicate_ack(self, seg: TcpSegment, wnd: int) -> bool:
        """RFC 5681 2: data outstanding, no text, no SYN/FIN, SEG.ACK = SND.UNA and the
        same window as before. Never while the peer's window is zero (we are probing)."""
        tcb = self.tcb
        return (
            seg.ack == tcb.snd_una
            and not seg.payload
            and not int(seg.flags) & (SYN | FIN)
            and tcb.snd_nxt != tcb.snd_una
            and wnd == tcb.snd_wnd
            and wnd != 0
        )

    def _on_new_ack(self, ack: SeqNum) -> list[SentSegment]:
        """SND.UNA < SEG.ACK =< SND.NXT: "set SND.UNA <- SEG.ACK", drop acknowledged
        data, take an RTT sample, manage the timer and the congestion window. Returns
        the segments this ACK delivered (for RACK)."""
        tcb = self.tcb
        flight = tcb.snd_nxt - tcb.snd_una
        acked = ack - tcb.snd_una
        freed = min(ack - self._buf_seq, len(self._sndbuf))
        if freed > 0:
            self._sndbuf.consume(freed)
            self._buf_seq = self._buf_seq + freed
            self._events.append(SendSpace())
        tcb.snd_una = ack
        if self._snd_urgent and ack >= tcb.snd_up:
            self._snd_urgent = False  # the urgent data is delivered (RFC 9293 3.8.5)
        if self._tx_nxt < ack:
            self._tx_nxt = ack
        delivered = self._board.acked(ack)
        self._take_rtt_sample(ack)
        self._retries = 0
        self._persist_backoff = 0
        cc = self._cc
        partial = cc.on_new_ack(ack, acked, flight - acked)
        if ack == tcb.snd_nxt:
            self._rtx_at = None  # RFC 6298 (5.2): all data acknowledged, stop the timer
        elif self._sack or not cc.in_recovery or cc.partial_acks <= 1:
            # RFC 6298 (5.3): restart it. In NewReno recovery only on the first partial
            # ACK (RFC 6582 3.2 (5), the "Impatient" variant): a long recovery that needs
            # many partial ACKs gives way to the RTO rather than crawl one hole per RTT.
            self._rtx_at = self._now + self._rtt.rto
        if partial:
            self._retransmit_first()  # RFC 6582 3.2 (5): partial ACK
        return delivered

    def _on_sack_ack(self, seg: TcpSegment, delivered: list[SentSegment]) -> None:
        """An acceptable ACK on a SACK connection (RFC 6675, RFC 8985 6.2 and 7.4):
        update the scoreboard from the SACK blocks, let RACK see what was delivered,
        close a tail loss probe episode, and look for losses."""
        tcb = self.tcb
        board = self._board
        blocks = seg.options.sack_blocks
        if blocks:
            delivered += board.sack(blocks, tcb.snd_una)
        # RFC 2018 8: the receiver dropped data it had SACKed; the marks go, and RACK or
        # the RTO will find the data lost and resend it
        board.reneged()
        self._rack.delivered(delivered, self._now)
        if self._tlp_end is not None and tcb.snd_una >= self._tlp_end:
            # RFC 8985 7.4: the probe's episode is over. Had it resent old data that the
            # peer did not report as a duplicate (D-SACK, RFC 2883: a first block below
            # SEG.ACK), the probe repaired a loss: react to it
            dsack = bool(blocks) and blocks[0][1] <= seg.ack
            if self._tlp_is_retrans and not dsack:
                self._cc.on_loss_repaired(tcb.snd_nxt - tcb.snd_una)
            self._tlp_end = None
        if tcb.snd_nxt == tcb.snd_una:
            self._reo_at = self._pto_at = None
            return
        self._detect_losses()
        self._schedule_loss_probe()

    def _detect_losses(self) -> None:
        """RFC 8985 6.2 steps 4-5 and 6.3: mark what RACK deems lost, arm the reordering
        timer for what it may soon deem lost, and begin recovery (RFC 6675 5 (4))."""
        board = self._board
        rack = self._rack
        segments = board.segments
        self._reo_at = None
        if not segments:
            return
        first = segments[0]
        if not (board.sacked or board.lost) and sent_after(
            first.xmit_ts, first.end, rack.xmit_ts, rack.end_seq
        ):
            return  # nothing outstanding was sent before the latest delivered segment
        tcb = self.tcb
        cc = self._cc
        reo_wnd = rack.reo_wnd(board, cc.in_recovery, self._rtt.srtt)
        timeout = rack.detect_loss(board, self._now, reo_wnd)
        if timeout:
            self._reo_at = self._now + timeout
        if board.lost and not cc.recovering(tcb.snd_una):
            cc.enter_recovery(tcb.snd_nxt - tcb.snd_una, tcb.snd_nxt)
            self._pto_at = None
            self._tlp_end = None  # the recovery deals with the loss a probe found
            first = board.first_lost(tcb.snd_una + tcb.snd_wnd)
            if first is not None:
                # RFC 6675 5 (4.3): the first segment presumed lost goes out at once,
                # whatever pipe says; (C) in _retransmit_lost() sends the rest
                self._resend(first.start, first.end)

    def _schedule_loss_probe(self) -> None:
        """RFC 8985 7.2: arm the PTO when data is outstanding, nothing is SACKed, we are
        not recovering and no probe is out; it fires no later than the RTO would."""
        tcb = self.tcb
        board = self._board
        if (
            self._rtx_at is None
            or board.sacked
            or self._tlp_end is not None
            or self._cc.recovering(tcb.snd_una)
        ):
            self._pto_at = None
            return
        at = self._now + probe_timeout(self._rtt.srtt, len(board.segments))
        self._pto_at = min(at, self._rtx_at)

    def _take_rtt_sample(self, ack: SeqNum) -> None:
        """RFC 6298 (2.2)/(2.3) for the one timed segment, if this ACK covers it."""
        if self._rtt_seq is not None and ack >= self._rtt_seq:
            self._rtt.sample(self._now - self._rtt_sent_at)
            self._rtt_seq = None

    def _fin_acked(self) -> bool:
        return self._fin_queued and self.tcb.snd_una > self._buf_seq + len(self._sndbuf)

    def _ack_delayed(self, *, force_timer: bool = False, segments: int = 1) -> None:
        """RFC 1122 4.2.3.2 / RFC 5681 4.2: delay the ACK, but ACK at least every second
        full-sized segment, and never wait longer than config.delayed_ack. `segments`:
        how many full-sized segments the data was (a coalesced train counts in MSS units)."""
        delay = self.config.delayed_ack
        if delay <= 0:
            self._ack_now = True
            return
        if not force_timer:
            self._unacked_segments += segments
            if self._unacked_segments >= 2:
                self._ack_now = True
                return
        if self._delack_at is None:
            self._delack_at = self._now + delay

    def _window_update_due(self) -> bool:
        """RFC 9293 3.8.6.2.2: would we now offer a window larger by min(buffer/2, MSS)?"""
        grow = self._rcvbuf.space - self.tcb.rcv_wnd
        return grow >= min(self._rcvbuf.capacity // 2, self._mss)

    def _take_syn_options(self, options: TcpOptions) -> None:
        """The peer's SYN: MSS (RFC 9293 3.7.1) and window scale (RFC 7323 2.2)."""
        peer_mss = options.mss if options.mss else DEFAULT_MSS
        self._mss = max(1, min(peer_mss, self.config.mss))
        tcb = self.tcb
        # Scaling is used only when both SYNs carry the option: ours carries it whenever
        # it is configured (a SYN,ACK only in reply to a SYN that had it).
        ours, theirs = self._our_shift, options.window_scale
        self._scaling = ours is not None and theirs is not None
        # RFC 2018 2: SACK only if both SYNs carried SACK-permitted
        self._sack = self.config.sack and options.sack_permitted
        if ours is not None and theirs is not None:
            # RFC 7323 2.3: a shift above 14 is treated as 14
            tcb.snd_wscale = min(theirs, MAX_WINDOW_SHIFT)
            tcb.rcv_wscale = ours
        else:
            tcb.snd_wscale = 0
            tcb.rcv_wscale = 0

    def _syn_options(self) -> TcpOptions:
        """MSS always; window scale and SACK-permitted in our SYN if configured, in a
        SYN,ACK only if the peer's SYN offered them (RFC 7323 2.2, RFC 2018 2)."""
        reply = self.tcb.irs is not None
        scale = self._our_shift if self._our_shift is not None and (
            self._scaling or not reply) else None
        sack = self._sack if reply else self.config.sack
        return TcpOptions(mss=self.config.mss, window_scale=scale, sack_permitted=sack)

    def _send_syn(self) -> None:
        """<SEQ=ISS><CTL=SYN> (or SYN,ACK once the peer's SYN is known); arms the timer."""
        tcb = self.tcb
        self._emit(tcb.iss, SYN, options=self._syn_options())
        if tcb.snd_nxt == tcb.iss:
            tcb.snd_nxt = tcb.iss + 1
            self._tx_nxt = tcb.snd_nxt
        if self._rtt_seq is None and not self._syn_retransmitted:
            self._rtt_seq = tcb.iss + 1
            self._rtt_sent_at = self._now
        self._rtx_at = self._now + self._rtt.rto  # RFC 6298 (5.1)/(5.6)

    def _enter_established(self) -> None:
        """Both SYNs acknowledged: set up congestion control for the agreed MSS."""
        tcb = self.tcb
        # RFC 5681 3.1: after a lost SYN or SYN,ACK the initial window is one segment;
        # RFC 6298 (5.7): and the RTO starts at 3 s
        iw = self._mss if self._syn_retransmitted else None
        if self._syn_retransmitted:
            self._rtt.at_least(SYN_RTO_AFTER_LOSS)
        self._cc = NewReno(self._mss, tcb.iss, iw=iw, sack=self._sack)
        self._rack = Rack(tcb.snd_una)
        self._retries = 0
        if self._keepalive:
            self._keepalive_at = self._now + self.config.keepalive_idle
        self._set_state(State.ESTABLISHED)
        if self._fin_queued:
            # CLOSE was called in SYN-RECEIVED with data queued (RFC 9293 3.10.4)
            self._set_state(State.FIN_WAIT_1)

    def _enter_time_wait(self) -> None:
        """TIME-WAIT: only the 2 MSL timer runs (RFC 9293 3.10.7.4, 3.10.8)."""
        self._set_state(State.TIME_WAIT)
        self._rtx_at = self._pto_at = self._reo_at = None
        self._persist_at = None
        self._keepalive_at = None
        self._fin_wait_2_at = None
        self._timewait_at = self._now + 2 * self.config.msl

    def _return_to_listen(self) -> None:
        """A passive open's handshake failed: back to LISTEN with a fresh TCB."""
        tcb = self.tcb
        self.tcb = Tcb(iss=tcb.iss, snd_una=tcb.iss, snd_nxt=tcb.iss, snd_up=tcb.iss)
        self._tx_nxt = tcb.iss
        self._board.clear()
        self._rtx_at = self._pto_at = self._reo_at = None
        self._delack_at = None
        self._ack_now = False
        self._retries = 0
        self._rtt_seq = None
        self._set_state(State.LISTEN)

    def _set_state(self, new: State) -> None:
        old = self.state
        self.state = new
        self._events.append(StateChanged(old, new))
        if new is State.ESTABLISHED:
            self._events.append(Connected())
        elif new is State.FIN_WAIT_2:
            if self._fully_closed:
                self._arm_fin_wait_2()
        elif new is State.CLOSED:
            self._rtx_at = self._pto_at = self._reo_at = None
            self._fin_wait_2_at = None
            self._persist_at = None
            self._delack_at = None
            self._timewait_at = None
            self._keepalive_at = None
            self._ack_now = False
            self._events.append(Closed())

    def _arm_fin_wait_2(self) -> None:
        """The application closed completely and our FIN is acknowledged: wait for the
        peer's FIN at most config.fin_wait_2_timeout (as Linux's tcp_fin_timeout).
        RFC 9293 does not require this, but a peer that never closes would otherwise
        keep the TCB forever; 3.6 lets the closing side go once it has nothing to send."""
        timeout = self.config.fin_wait_2_timeout
        if timeout is not None and self._fin_wait_2_at is None:
            self._fin_wait_2_at = self._now + timeout

    def _fail(self, reason: ErrorReason, *, send_rst: bool) -> None:
        """Error(reason), then CLOSED (and Closed). A timeout after a soft ICMP error
        reports that error instead (RFC 1122 4.2.3.9, as Linux does)."""
        if reason is ErrorReason.TIMED_OUT and self._soft_error is not None:
            reason = self._soft_error
        if send_rst:
            self._emit_rst(self.tcb.snd_nxt)
        self._failure = reason
        self._events.append(Error(reason))
        self._set_state(State.CLOSED)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise ConnectionFailed(self._failure)

    # ------------------------------------------------------------------ output

    def _output(self) -> None:
        """Send what the windows allow, then any ACK still owed."""
        rcvbuf = self._rcvbuf
        sack_blocks = self._sack and (rcvbuf.has_gaps or rcvbuf.dsack is not None)
        if self._ack_now and sack_blocks:
            self._send_sack()  # before any data, which carries no SACK option
        if self.state in _SENDING:
            if self.tcb.snd_wnd == 0:
                self._zero_window()
            else:
                if self._board.lost:
                    self._retransmit_lost()
                self._send_queued()
        if self._ack_now:
            if sack_blocks:
                self._send_sack()
            else:
                self._emit(self._tx_nxt if self.tcb.snd_wnd == 0 else self.tcb.snd_nxt, ACK)

    def _send_sack(self) -> None:
        """An ACK with the SACK blocks of the out-of-order data we hold (RFC 2018 4:
        the block of the latest segment first)."""
        rcvbuf = self._rcvbuf
        base = self.tcb.rcv_nxt - rcvbuf.next  # the sequence number of stream offset 0
        options = TcpOptions(sack_blocks=tuple(
            (base + left, base + right) for left, right in rcvbuf.sack_blocks(MAX_SACK_BLOCKS)
        ))
        self._emit(self._tx_nxt if self.tcb.snd_wnd == 0 else self.tcb.snd_nxt, ACK,
                   options=options)

    def _send_queued(self) -> None:
        """Segment the queued data by MSS within min(SND.WND, cwnd), with sender SWS
        avoidance (RFC 9293 3.8.6.2.1) and Nagle (3.7.4); our FIN rides on the last
        data segment when it fits."""
        tcb = self.tcb
        mss = self._mss
        end = self._buf_seq + len(self._sndbuf)  # sequence number after the queued data
        fin = self._fin_queued
        nxt = self._tx_nxt
        if end - nxt <= 0 and not (fin and nxt == end):
            self._persist_at = None  # all sent (the FIN too, if any)
            return
        cc = self._cc
        if self._sack:
            # RFC 6675 (C): send while pipe < cwnd; SACKed and lost octets have left
            # the pipe, which also does what Limited Transmit does without SACK
            room = cc.cwnd - self._board.pipe(tcb.snd_nxt - tcb.snd_una)
            edge = min(tcb.snd_una + tcb.snd_wnd, nxt + max(room, 0))
        else:
            # Limited Transmit (RFC 3042) is for new data only, not for going back N
            cwnd = cc.send_limit if nxt >= tcb.snd_nxt else cc.cwnd
            edge = tcb.snd_una + min(tcb.snd_wnd, cwnd)
        held = False
        while True:
            unsent = end - nxt
            usable = edge - nxt
            if unsent > 0:
                n = min(unsent, mss, usable)
                if n <= 0:
                    held = True
                    break
                with_fin = fin and n == unsent and usable > n
                if n < mss and nxt >= tcb.snd_nxt and not with_fin:
                    # new data, less than a full segment, no FIN to carry it:
                    # send only if it is all we have, or at least half the largest
                    # window the peer offered; and, with Nagle, nothing is in flight
                    if n < unsent and n < tcb.max_snd_wnd // 2:
                        held = True
                        break
                    if not self._nodelay and tcb.snd_nxt != tcb.snd_una:
                        held = True
                        break
                nxt = self._transmit(nxt, n, with_fin)
                continue
            if fin and unsent == 0 and usable > 0:
                nxt = self._transmit(nxt, 0, True)  # the FIN alone
            break
        if nxt != self._tx_nxt and self._sack and self._pto_at is None:
            # RFC 8985 7.2: after sending new data. (If an ACK armed it, leave it: the
            # ACK that released this data restarted it a moment ago.)
            self._schedule_loss_probe()
        self._tx_nxt = nxt
        if held and tcb.snd_nxt == tcb.snd_una:
            # data waits but no ACK will come to release it: the SWS override timer
            if self._persist_at is None:
                self._persist_at = self._now + self._persist_interval()
        else:
            self._persist_at = None

    def _zero_window(self) -> None:
        """SND.WND is zero: stop retransmitting into it and probe with the persist
        timer instead (RFC 9293 3.8.6.1; RFC 1122 4.2.2.17)."""
        tcb = self.tcb
        pending = self._buf_seq + len(self._sndbuf) + self._fin_queued - tcb.snd_una
        if pending <= 0:
            self._persist_at = None
            return
        # nothing beyond a zero window can be delivered: send it again once it opens
        if self._sack:
            self._board.mark_all_lost()
        else:
            self._tx_nxt = tcb.snd_una
        self._rtx_at = self._pto_at = self._reo_at = None
        if self._persist_at is None:
            self._persist_at = self._now + self._persist_interval()

    def _retransmit_first(self) -> None:
        """Resend the first unacknowledged segment (fast retransmit, partial ACK)."""
        tcb = self.tcb
        una = tcb.snd_una
        end = self._buf_seq + len(self._sndbuf)
        n = max(0, min(self._mss, end - una, tcb.snd_nxt - una))
        fin = self._fin_queued and una + n == end and tcb.snd_nxt > end
        if n or fin:
            self._rtt_seq = None  # Karn's algorithm
            self._transmit(una, n, fin)

    def _retransmit_lost(self) -> None:
        """RFC 6675 4 NextSeg (1) and 5 (C): while cwnd - pipe allows, resend the
        segments RACK deemed lost, lowest first, before any new data; never the
        SACKed ones. (RACK's lost marks stand in for RFC 6675's IsLost and HighRxt.)"""
        tcb = self.tcb
        board = self._board
        edge = tcb.snd_una + tcb.snd_wnd
        cwnd = self._cc.cwnd
        while board.lost:
            s = board.first_lost(edge)
            if s is None or cwnd - board.pipe(tcb.snd_nxt - tcb.snd_una) < s.length:
                return
            self._resend(s.start, s.end)

    def _resend(self, start: SeqNum, end: SeqNum) -> None:
        """Send [start, end) of what was sent before again (our FIN if it lies inside)."""
        data_end = self._buf_seq + len(self._sndbuf)
        self._transmit(start, min(end, data_end) - start, end > data_end)

    def _transmit(self, seq: SeqNum, n: int, fin: bool, *, probe: bool = False) -> SeqNum:
        """Send n bytes of queued data starting at `seq` (plus our FIN); return the
        sequence number after it. New data advances SND.NXT and may be timed."""
        payload = self._sndbuf.peek(seq - self._buf_seq, n) if n else b""
        flags = ACK
        if fin:
            flags |= FIN
        elif n and seq + n == self._buf_seq + len(self._sndbuf):
            flags |= PSH  # the last of the queued data
        self._emit(seq, flags, payload)
        self._last_sent_at = self._now
        end = seq + (n + fin)
        tcb = self.tcb
        board = self._board
        snd_nxt = tcb.snd_nxt
        if end > snd_nxt:
            if seq < snd_nxt:  # partly sent before
                board.resent(seq, snd_nxt, self._now)
                board.sent(snd_nxt, end, self._now)
            else:
                board.sent(seq, end, self._now)
                if self._rtt_seq is None and not probe:
                    self._rtt_seq = end
                    self._rtt_sent_at = self._now
            tcb.snd_nxt = end
        else:
            board.resent(seq, end, self._now)
            if self._rtt_seq is not None and seq < self._rtt_seq:
                self._rtt_seq = None  # Karn: this range is now ambiguous
        if self._rtx_at is None and not probe:
            self._rtx_at = self._now + self._rtt.rto  # RFC 6298 (5.1)
        return end

    def _window_field(self, syn: bool) -> int:
        """The window field to send, and RCV.WND to match.

        Receiver SWS avoidance (RFC 9293 3.8.6.2.2): the right edge RCV.NXT+RCV.WND only
        moves right once the free buffer exceeds it by min(buffer/2, MSS); it never moves
        left. A SYN's window is never scaled (RFC 7323 2.2).
        """
        tcb = self.tcb
        free = self._rcvbuf.space
        if syn:
            field = min(free, 0xFFFF)
            tcb.rcv_wnd = field
            return field
        shift = tcb.rcv_wscale
        cur = tcb.rcv_wnd
        keep = (cur + (1 << shift) - 1) >> shift  # round up: never shrink (RFC 7323 2.4)
        if free - cur >= min(self._rcvbuf.capacity // 2, self._mss):
            field = max(free >> shift, keep)
        else:
            field = keep
        if field > 0xFFFF:
            field = 0xFFFF
        tcb.rcv_wnd = field << shift
        return field

    def _emit(
        self, seq: SeqNum, flags: int, payload: bytes = b"", options: TcpOptions = NO_OPTIONS
    ) -> None:
        """Queue one segment; once the peer's SYN is known it carries <ACK=RCV.NXT>.
        While urgent data is unacknowledged, a segment before SND.UP carries URG and
        the offset of SND.UP from its SEG.SEQ (at most 0xFFFF: RFC 9293 3.8.5)."""
        tcb = self.tcb
        urgent = 0
        if self._snd_urgent and tcb.snd_up > seq:
            flags |= URG
            urgent = min(tcb.snd_up - seq, 0xFFFF)
        if tcb.irs is not None:
            flags |= ACK
            ack = tcb.rcv_nxt
            self._ack_now = False
            self._delack_at = None
            self._unacked_segments = 0
        else:
            ack = _ZERO
        self._outgoing.append(
            TcpSegment(
                self.local.port, self.remote.port, seq, ack, _AS_FLAGS[flags],
                self._window_field(bool(flags & SYN)), options, payload, urgent,
            )
        )

    def _emit_rst(self, seq: SeqNum) -> None:
        """<SEQ=seq><CTL=RST>. Never sent in reply to a RST (RFC 9293 3.5.2)."""
        self._outgoing.append(
            TcpSegment(self.local.port, self.remote.port, seq, _ZERO, _AS_FLAGS[RST], 0)
        )

    def _reset_for(self, seg: TcpSegment) -> None:
        """RFC 9293 3.10.7.1 / 3.5.2: the reset for a segment that has no connection."""
        self._outgoing.extend(reset_for(seg))


def reset_for(seg: TcpSegment) -> list[TcpSegment]:
    """The reply to `seg` arriving where no connection exists (RFC 9293 3.10.7.1).

    "If the ACK bit is off, sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
    <CTL=RST,ACK>. If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>." A RST gets no reply.
    Used by `Stack._segment_arrives` for a segment that matches no connection and no
    listener, and by `Connection._segment_arrives_closed` for one that finds a TCB
    already CLOSED.
    """
    if seg.flags & TcpFlags.RST:
        return []
    if seg.flags & TcpFlags.ACK:
        return [TcpSegment(seg.dst_port, seg.src_port, seg.ack, _ZERO, TcpFlags.RST, 0)]
    return [
        TcpSegment(
            seg.dst_port, seg.src_port, _ZERO, seg.seq + seg.seg_len, TcpFlags.RST | TcpFlags.ACK, 0
        )
    ]

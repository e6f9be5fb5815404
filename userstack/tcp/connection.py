"""One TCP connection (one TCB), sans I/O: RFC 9293's state machine.

How to read this beside RFC 9293
--------------------------------
Nothing here reads a clock or draws a random number: every call carries `now` (float
seconds), the ISN comes from the caller (stack/isn.py, RFC 6528), and segments go in and
out as `TcpSegment` values. This file is the state machine: the user calls, the SEGMENT
ARRIVES steps, the transitions and the events. What happens to data on its way out lives
in the Sender (sender.py: buffer, cursors, RTT, congestion control, loss recovery), on
its way in in the Receiver (receiver.py: buffer, ACK policy, window), and the deadlines
in Timers (timers.py).

    RFC 9293                            here
    3.3.1  sequence variables           tcb.py: Tcb.snd_una, snd_nxt, snd_wnd, snd_wl1, ...
    3.3.2  states, Figure 5             state.py; every transition goes through _set_state()
    3.4.1  ISN selection                stack/isn.py (RFC 6528)
    3.5    opening (Figures 6-10)       open_active(), open_passive(), the SEGMENT ARRIVES steps
    3.5.2  reset generation             _emit_rst(), reset_for()
    3.6    closing (Figures 12-14)      close(), _check_fin(), _enter_time_wait()
    3.7.1  MSS option                   syn_options.py: _send_syn(), _take_syn_options()
    3.7.4  Nagle                        Sender.send_queued()
    3.8.1  retransmission timeout       rtt.py (RFC 6298), _on_retransmit_timeout()
    3.8.4  keep-alives                  set_keepalive(), _on_keepalive_timeout()
    3.8.5  urgent information           send(urgent=True), _emit(), _check_urg(), urgent_pending
    3.8.6  window management            Receiver.window_field() (receiver SWS 3.8.6.2.2),
                                        Sender.send_queued() (sender SWS 3.8.6.2.1),
                                        Sender.zero_window() / on_persist_timeout() (3.8.6.1)
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
      3.10.7.4 all other states           _segment_arrives_synchronized(), which runs in order
                (unless header prediction, fast_path.py, takes a pure ACK or in-order data):
                first   check sequence number    _check_sequence()
                second  check the RST bit        _check_rst()     (+ RFC 5961 3)
                third   check security           _check_security()
                fourth  check the SYN bit        _check_syn()     (+ RFC 5961 4)
                fifth   check the ACK field      _check_ack()     (+ RFC 5961 5; the Sender
                                                                   and its recovery strategy)
                sixth   check the URG bit        _check_urg()
                seventh process the segment text _process_segment_text() (Receiver.take_text)
                eighth  check the FIN bit        _check_fin()
    3.10.8 timeouts                     on_timer(): one handler per Timer (timers.py):
                                        _on_retransmit_timeout(), Sender.on_persist_timeout(),
                                        delayed ACK (RFC 1122 4.2.3.2), TIME-WAIT, keep-alive,
                                        RACK and TLP (sack_recovery.py)
    3.9.2.1 ICMP errors                 on_icmp_error() (icmp_errors.py: RFC 1122 4.2.3.9,
                                        RFC 5927 checks, RFC 1191 path MTU: Sender.lower_mss())

    Beyond RFC 9293, when both SYNs agree on ECN (RFC 3168 6.1): ecn.py, from
    _send_syn() and _take_syn() (negotiation), Sender.transmit() and Sender.on_ack()
    (ECT(0), CWR, the reduction), _process_segment_text() and _emit() (the ECE echo).

    Beyond RFC 9293, when both SYNs carry SACK-permitted (RFC 2018):
    receiver: SACK blocks          Receiver.sack_option(), _send_sack()
              D-SACK (RFC 2883)    ReceiveBuffer.dsack, _check_sequence()
    sender                         sack_recovery.py: scoreboard (sack.py, RFC 6675 2, 4),
                                   RACK (rack.py, RFC 8985 6), tail loss probe (RFC 8985 7)
    Without SACK, NewReno (RFC 5681 3.2, RFC 6582): reno_recovery.py.

    When both SYNs carry timestamps (RFC 7323, tcp/timestamps.py): every segment _emit()s
    carries TSval and TSecr; PAWS and the 3.2 check before the first step (_check_paws),
    TS.Recent after it (_segment_arrives_synchronized); RTTM in Sender.take_rtt_sample.

Outgoing segments are queued in take_outgoing() order; ACKs owed by several steps are
coalesced into one (a data segment carries it when one goes out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from ..wire.addr import Endpoint
from ..wire.ipv4 import Ecn
from ..wire.seq import SeqNum
from ..wire.tcp import NO_OPTIONS, TcpFlags, TcpOptions, TcpSegment
from . import fast_path
from .challenge_acks import ChallengeAckLimit
from .config import TcpConfig
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
from .info import TcbInfo
from .receiver import Receiver
from .rules import Explainer, Rule
from .sender import Sender
from .state import State
from .syn_options import SynOptions
from .tcb import Tcb, segment_acceptable
from .time_wait import drops_old_syn, is_new_incarnation_syn, iss_above
from .timers import Timer, Timers
from .timestamps import TSOPT_LEN, Timestamps, agreed

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
_T = TypeVar("_T")

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


class Connection:
    """One TCB and the RFC 9293 machinery around it. Create with open_active/open_passive."""

    # Slots, not a __dict__: ten thousand idle connections are ten thousand of these
    # (issue 13: 2 KiB per idle end). A new attribute goes here too. `__weakref__`: the
    # stack keeps a TIME-WAIT TCB the application still holds in a WeakValueDictionary.
    __slots__ = (
        "__weakref__",
        "_challenge_limit",
        "_events",
        "_failure",
        "_fully_closed",
        "_keepalive",
        "_outgoing",
        "_passive",
        "_soft_error",
        "_syn_options",
        "_timers",
        "_ts",
        "_why",
        "config",
        "fast_acks",
        "fast_data",
        "local",
        "owner",
        "receiver",
        "remote",
        "sender",
        "state",
        "tcb",
    )

    def __init__(
        self, local: Endpoint, remote: Endpoint, *, iss: SeqNum, now: float, config: TcpConfig,
        passive: bool, explain: Explainer | None = None, ts_offset: int = 0,
    ) -> None:
        self._why = explain  # who is told each rule applied (rules.py), or None: off
        # whoever holds this connection for an application (the stack: its handle), or
        # None; the core never reads it (a slot, not an entry in a table of the stack's)
        self.owner: object | None = None
        self.local = local
        self.remote = remote
        self.config = config
        self.state = State.CLOSED
        self.tcb = Tcb(iss=iss, snd_una=iss, snd_nxt=iss, snd_up=iss)
        self._passive = passive  # opened by a LISTEN: an RST in SYN-RECEIVED returns there
        self._timers = Timers()
        # what the SYNs offer and agree (3.7.1); let go in ESTABLISHED, where the Sender
        # and the Receiver keep what was agreed
        self._syn_options: SynOptions | None
        self._syn_options = syn = SynOptions(config, ipv6=local.ip.version == 6)
        self.sender = Sender(
            self.tcb, config, self._timers, self, mss=min(config.mss, syn.default_mss),
            now=now, why=explain,
        )
        self.receiver = Receiver(config, self._timers, self.sender.rtt, why=explain)
        # RFC 7323 timestamps: offered in our SYN, kept only if the peer's SYN has them too;
        # `ts_offset` is the connection's random clock offset (7.1, stack/isn.py)
        self._ts = Timestamps(ts_offset, 0, now) if config.timestamps else None
        self._keepalive = config.keepalive  # RFC 9293 3.8.4: on or off per connection
        self._fully_closed = False  # CLOSE without half: nobody will read any more
        self._failure: ErrorReason | None = None
        self._soft_error: ErrorReason | None = None  # the last soft ICMP error (MUST-47)
        # RFC 5961 7's rate limit, from the first challenge ACK on (challenge_acks.py)
        self._challenge_limit: ChallengeAckLimit | None = None
        # what take_outgoing() and take_events() hand over; None while there is nothing,
        # so an idle connection keeps no empty lists (issue 13)
        self._outgoing: list[TcpSegment] | None = None
        self._events: list[Event] | None = None
        # segments header prediction took (fast_path.py): pure ACKs (a), in-order data (b)
        self.fast_acks = 0
        self.fast_data = 0

    # ------------------------------------------------------------------ OPEN (3.10.1)

    @classmethod
    def open_active(
        cls, local: Endpoint, remote: Endpoint, *, iss: SeqNum, now: float,
        config: TcpConfig | None = None, explain: Explainer | None = None, ts_offset: int = 0,
    ) -> Connection:
        """Active OPEN: send <SEQ=ISS><CTL=SYN>, enter SYN-SENT (RFC 9293 3.10.1).
        `ts_offset`: the TSval clock's offset (RFC 7323 7.1), the stack's keyed choice."""
        conn = cls(local, remote, iss=iss, now=now, config=config or TcpConfig(), passive=False,
                   explain=explain, ts_offset=ts_offset)
        if explain is not None:
            explain.decide(Rule.OPEN_ACTIVE, iss=iss)
        conn._send_syn(now)
        conn._set_state(State.SYN_SENT, now)
        return conn

    @classmethod
    def open_passive(
        cls, local: Endpoint, remote: Endpoint, *, iss: SeqNum, now: float,
        config: TcpConfig | None = None, explain: Explainer | None = None, ts_offset: int = 0,
    ) -> Connection:
        """Fully specified passive OPEN: enter LISTEN and wait for the peer's SYN.

        The stack creates one per arriving SYN and feeds it that SYN; if the handshake
        fails with an RST the connection returns to LISTEN and the stack drops it.
        """
        conn = cls(local, remote, iss=iss, now=now, config=config or TcpConfig(), passive=True,
                   explain=explain, ts_offset=ts_offset)
        if explain is not None:
            explain.decide(Rule.OPEN_PASSIVE, iss=iss)
        conn._set_state(State.LISTEN, now)
        return conn

    @classmethod
    def from_syn_cookie(
        cls, local: Endpoint, remote: Endpoint, *, ack: TcpSegment,
        syn_options: TcpOptions, now: float, config: TcpConfig | None = None,
        ts_offset: int = 0,
    ) -> Connection:
        """A passive OPEN completed by a valid SYN cookie (RFC 4987 3.6): the stack kept
        no TCB for the SYN; the `ack` echoing ISS + 1 proves the peer got our SYN,ACK.
        The TCB starts in ESTABLISHED from what the cookie kept (stack/syncookies.py):
        ISS = SEG.ACK - 1, IRS = SEG.SEQ - 1 and the options of the peer's SYN (with
        timestamps, TS.Recent from the ACK's TSval, on the clock `ts_offset` the cookie's
        TSval came from). RCV.NXT and SND.NXT are the ACK's own numbers (no copies). The
        stack then hands it `ack`."""
        conn = cls(local, remote, iss=ack.ack - 1, now=now, config=config or TcpConfig(),
                   passive=True, ts_offset=ts_offset)
        tcb, sender = conn.tcb, conn.sender
        tcb.irs, tcb.rcv_nxt = ack.seq - 1, ack.seq
        tcb.snd_una = tcb.snd_nxt = sender.tx_nxt = sender.buf_seq = ack.ack  # ISS + 1
        tcb.snd_wl1 = tcb.irs  # the ACK (SEG.SEQ = IRS + 1) sets SND.WND (3.10.7.4 fifth)
        conn._take_syn_options(syn_options, now)
        conn.receiver.window_field(tcb, syn=True, mss=conn.sender.mss)  # RCV.WND, as offered
        conn._enter_established(now)
        return conn

    # ------------------------------------------------------------------ properties

    @property
    def challenge_acks_suppressed(self) -> int:
        """Challenge ACKs RFC 5961 7's limit left out (challenge_acks.py)."""
        return 0 if self._challenge_limit is None else self._challenge_limit.suppressed

    @property
    def readable(self) -> int:
        """Bytes received in order and not yet read."""
        return len(self.receiver.buffer)

    @property
    def send_space(self) -> int:
        """How many bytes send() would accept now."""
        if self.sender.fin_queued or not self.state.can_send or self._failure is not None:
            return 0
        return self.sender.space

    @property
    def eof_received(self) -> bool:
        """The peer's FIN was reached: once `readable` is 0, no more data will come."""
        return self.receiver.eof

    @property
    def urgent_pending(self) -> int:
        """RFC 9293 3.8.5 (MUST-33): how many octets must still be read to get past the
        urgent data (up to RCV.UP, some perhaps not yet arrived); 0 when there is none.
        Urgent data stays in line (RFC 6093 4: SO_OOBINLINE)."""
        if not self.receiver.urgent:
            return 0
        tcb = self.tcb
        return tcb.rcv_up - (tcb.rcv_nxt - len(self.receiver.buffer))

    @property
    def failure(self) -> ErrorReason | None:
        """Why the connection failed, or None."""
        return self._failure

    @property
    def send_mss(self) -> int:
        """Eff.snd.MSS (RFC 9293 3.7.1): the most payload one packet on the wire carries."""
        return self.sender.mss

    def allow_super_segments(self, max_packet: int) -> None:
        """The link cuts TCP super-segments of up to `max_packet` bytes into MSS-sized
        packets (TSO/GSO): send segments that large where the windows and Nagle allow."""
        self.sender.max_packet = max_packet

    @property
    def nodelay(self) -> bool:
        """True while Nagle's algorithm is off (set_nodelay)."""
        return self.sender.nodelay

    @property
    def keepalive(self) -> bool:
        """True while keep-alives are on for this connection (set_keepalive)."""
        return self._keepalive

    def set_nodelay(self, nodelay: bool, now: float) -> None:
        """Turn Nagle's algorithm (RFC 9293 3.7.4) off (True) or back on."""
        self.sender.nodelay = nodelay
        if nodelay and self.state in _SENDING:
            self._output(now)

    def set_keepalive(self, on: bool, now: float) -> None:
        """Turn keep-alives on or off for this connection (RFC 9293 3.8.4, MUST-24)."""
        self._keepalive = on
        if not on:
            self._timers.cancel(Timer.KEEPALIVE)
        elif self.state in _SENDING | _RECEIVING:
            self._timers.arm_if_off(Timer.KEEPALIVE, now + self.config.keepalive_idle)

    def set_tos(self, tos: int) -> None:
        """The TOS byte (DiffServ codepoint << 2) of this connection's packets from now on
        (RFC 9293 3.9.1 MUST-48); ValueError if it is not a byte."""
        self.config = dataclasses.replace(self.config, tos=tos)

    def fail(self, reason: ErrorReason, now: float) -> None:
        """The user's side gives up on the connection for `reason` (the stack, when this
        connection's processing raised): as ABORT, a RST where the peer has a TCB, then
        Error(reason) and CLOSED. `failure` is the one place the reason is kept."""
        if self.state is not State.CLOSED:
            self._fail(reason, now, send_rst=self.state in _PEER_HAS_TCB)

    def take_outgoing(self) -> list[TcpSegment]:
        out = self._outgoing
        if out is None:
            return []
        self._outgoing = None
        return out

    def take_events(self) -> list[Event]:
        events = self._events
        if events is None:
            return []
        self._events = None
        return events

    # ------------------------------------------------------------------ SEND (3.10.2)

    def send(
        self, data: bytes | bytearray | memoryview, now: float, *, urgent: bool = False
    ) -> int:
        """SEND: queue as much of `data` as the send buffer takes; return that count.

        With `urgent`, the octets taken are urgent data: SND.UP moves to the octet after
        them (RFC 9293 3.10.2, 3.8.5 MUST-62), and every segment sent before that is
        acknowledged carries URG and the urgent pointer (_emit)."""
        self._raise_if_failed()
        state = self.state
        if state is State.CLOSED:
            raise ConnectionStateError("connection does not exist")
        if self.sender.fin_queued or not state.can_send:
            raise ConnectionStateError("connection closing: send after close")
        n = self.sender.write(data, urgent=urgent)
        if self._why is not None:
            self._why.decide(Rule.SEND, queued=n, send_q=len(self.sender.buffer))
        if state is State.LISTEN and n:
            # RFC 9293 3.10.2: SEND in LISTEN with the foreign socket known turns the
            # passive open into an active one (Figure 5: LISTEN --SEND--> SYN-SENT)
            self._passive = False
            self._send_syn(now)
            self._set_state(State.SYN_SENT, now)
        elif state in _SENDING:
            self.sender.restart_if_idle(now)  # RFC 5681 4.1
            self._output(now)
        return n

    # ------------------------------------------------------------------ RECEIVE (3.10.3)

    def receive(self, max_bytes: int, now: float) -> bytes:
        """RECEIVE: up to max_bytes of in-order data; b"" when none is buffered.

        Reading opens the window; an update of its own is sent only once the right edge
        can move by min(buffer/2, MSS) (receiver SWS avoidance, RFC 9293 3.8.6.2.2) and
        the window at least doubles (else the next ACK carries it: window_update_due).
        """
        self._raise_if_failed()
        receiver = self.receiver
        data = receiver.buffer.read(max_bytes)
        if receiver.urgent and self.urgent_pending <= 0:
            receiver.urgent = False  # read past RCV.UP: urgent mode is over
        if (
            data
            and self.state in _RECEIVING
            and receiver.window_update_due(self.tcb, self.sender.mss)
        ):
            if self._why is not None:
                self._why.decide(Rule.WINDOW_UPDATE_SENT, rcv_wnd=self.tcb.rcv_wnd,
                                 free=receiver.buffer.space)
            receiver.ack_now = True
            self._output(now)
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
        self._raise_if_failed()
        state = self.state
        sender, received = self.sender, self.receiver.buffer
        if not half:
            self._fully_closed = True
            if state is State.FIN_WAIT_2:
                self._arm_fin_wait_2(now)
        if sender.fin_queued or state in (State.CLOSED, State.TIME_WAIT):
            return
        if state in (State.LISTEN, State.SYN_SENT):
            # RFC 9293 3.10.4: delete the TCB (queued SENDs get "error: closing")
            self._set_state(State.CLOSED, now)
            return
        if not half and (len(received) or (received.has_gaps and not self.receiver.eof)):
            # RFC 1122 4.2.2.13: data would be lost, so tell the peer with a RST
            if self._why is not None:
                self._why.decide(Rule.CLOSE_WITH_UNREAD_DATA, recv_q=len(received))
            self.abort(now)
            return
        if self._why is not None:
            self._why.decide(Rule.CLOSE, send_q=len(sender.buffer), half=half)
        sender.fin_queued = True
        if state is State.SYN_RECEIVED:
            # RFC 9293 3.10.4: with nothing queued, send the FIN now (FIN-WAIT-1);
            # otherwise queue it until ESTABLISHED (_enter_established moves on then)
            if len(sender.buffer) == 0:
                self._set_state(State.FIN_WAIT_1, now)
                sender.send_queued(now)
            return
        if state is State.ESTABLISHED:
            self._set_state(State.FIN_WAIT_1, now)
        elif state is State.CLOSE_WAIT:
            self._set_state(State.LAST_ACK, now)
        self._output(now)

    # ------------------------------------------------------------------ ABORT (3.10.5)

    def abort(self, now: float) -> None:
        """ABORT: send <SEQ=SND.NXT><CTL=RST> where the peer has a TCB; enter CLOSED."""
        state = self.state
        if state is State.CLOSED:
            return
        if self._why is not None:
            self._why.decide(Rule.ABORT, snd_nxt=self.tcb.snd_nxt)
        if state in _PEER_HAS_TCB:
            self._emit_rst(self.tcb.snd_nxt, now)
        self._set_state(State.CLOSED, now)

    # ------------------------------------------------------------------ TIME-WAIT reuse

    def accepts_new_syn(self, seg: TcpSegment) -> bool:
        """May this SYN, arriving for our four-tuple, start a new incarnation of it?

        RFC 9293 3.6.1 (MAY-2) after RFC 1122 4.2.2.13: in TIME-WAIT, a bare SYN whose
        SEG.SEQ is beyond RCV.NXT cannot be mistaken for an old duplicate of this
        connection (time_wait.py has the rule, shared with the stack's TIME-WAIT
        records); with timestamps, RFC 6191 decides by the SYN's TSval instead. If True,
        the new incarnation gets an ISS from new_incarnation_iss(); otherwise on_segment()
        answers the SYN with a challenge ACK (RFC 5961 4), or with timestamps drops it
        silently (RFC 6191 2).
        """
        recent = None if self._ts is None else self._ts.ts_recent
        return self.state is State.TIME_WAIT and is_new_incarnation_syn(
            seg, self.tcb.rcv_nxt, recent)

    def new_incarnation_iss(self, isn: SeqNum) -> SeqNum:
        """RFC 1122 4.2.2.13 (a): the new incarnation's ISS must be larger than any
        sequence number this one used; `isn` is the generator's choice (RFC 6528)."""
        return iss_above(isn, self.tcb.snd_nxt)

    @property
    def timestamps(self) -> Timestamps | None:
        """The RFC 7323 state (clock offset, TS.Recent) once both SYNs agreed, or None:
        the stack's TIME-WAIT record keeps it."""
        return self._ts if self.tcb.irs is not None else None

    @property
    def explainer(self) -> Explainer | None:
        """Who hears this connection's decisions: the stack's TIME-WAIT record goes on
        naming its rules to the same one once the connection is gone."""
        return self._why

    # ------------------------------------------------------------------ ICMP errors (3.9.2.1)

    def on_icmp_error(
        self, kind: IcmpErrorKind, seq: SeqNum, now: float, *, mtu: int = 0
    ) -> bool:
        """An ICMP error quoting our segment with sequence number `seq` (the stack found
        us by the quoted four-tuple; icmp_errors.py says what each kind means). Returns
        False, changing nothing, unless SND.UNA =< seq < SND.NXT (RFC 5927 4.1)."""
        tcb = self.tcb
        if not acceptable(seq, tcb.snd_una, tcb.snd_nxt):
            return False
        severity = kind.severity
        if severity is Severity.PACKET_TOO_BIG:
            # a SYN is far below any MTU: nothing to resize before ESTABLISHED. If the MSS
            # fell, resend at once, at the new size and without slow start (RFC 1191 6.5)
            options = TSOPT_LEN if self._ts is not None else 0
            if self.state in _SENDING and self.sender.lower_mss(
                    mss_for_mtu(mtu, self.sender.mss, options=options)):
                self._output(now)
        elif severity is Severity.HARD and self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            assert kind.reason is not None
            self._fail(kind.reason, now, send_rst=False)  # RFC 1122 4.2.3.9, SHLD-26
        else:
            # RFC 1122 4.2.3.9 (MUST-56): a soft error never aborts; nor, once
            # synchronized, does a hard one (RFC 5927 5.2, as Linux). Remember it for
            # the application (MUST-47, SHLD-25): a timeout reports it (_fail).
            self._soft_error = kind.reason
        return True

    # ------------------------------------------------------------------ STATUS (3.10.6)

    def info(self, now: float) -> TcbInfo:
        """A snapshot of the TCB at `now` (what `ss` shows)."""
        sender, earliest = self.sender, self._timers.earliest()
        cc, rtt, tcb = sender.cc, sender.rtt, self.tcb
        return TcbInfo(
            state=self.state, local=self.local, remote=self.remote,
            recv_q=len(self.receiver.buffer), send_q=len(sender.buffer),
            timer=None if earliest is None else earliest[0].ss_name,
            timer_left=None if earliest is None else max(0.0, earliest[1] - now),
            retransmits=sender.retries, iss=tcb.iss.value,
            irs=None if tcb.irs is None else tcb.irs.value,
            snd_una=tcb.snd_una.value, snd_nxt=tcb.snd_nxt.value, snd_wnd=tcb.snd_wnd,
            rcv_nxt=None if tcb.irs is None else tcb.rcv_nxt.value, rcv_wnd=tcb.rcv_wnd,
            mss=sender.mss, cwnd=cc.cwnd, ssthresh=cc.ssthresh, srtt=rtt.srtt, rto=rtt.rto,
            soft_error=None if self._soft_error is None else self._soft_error.value,
            ts=self._ts is not None and tcb.irs is not None,  # agreed: the peer's SYN had it
            sack=self.receiver.sack_blocks > 0, ecn=sender.ecn is not None,
            ecn_seen=sender.ecn is not None and sender.ecn.seen, snd_wscale=tcb.snd_wscale,
            rcv_wscale=tcb.rcv_wscale, congestion=self.config.congestion.value,
            rttvar=rtt.rttvar,
        )

    # ------------------------------------------------------------------ timers (3.10.8)

    def next_deadline(self) -> float | None:
        """When on_timer() next has work to do, or None."""
        earliest = self._timers.earliest()
        return None if earliest is None else earliest[1]

    def on_timer(self, now: float) -> None:
        """Fire every timer due at `now` (RFC 9293 3.10.8), in Timer order."""
        if self.state is State.CLOSED:
            return
        for kind in self._timers.due(now):
            self._timers.cancel(kind)
            _TIMER_HANDLERS[kind](self, now)
            if self.state is State.CLOSED:
                return
        self._output(now)

    def _delete_tcb(self, now: float) -> None:
        """RFC 9293 3.10.8 time-wait timeout, or the FIN-WAIT-2 timeout (the application
        is gone and the peer never sent its FIN): delete the TCB."""
        if self._why is not None:
            self._why.decide(Rule.TIME_WAIT_EXPIRED if self.state is State.TIME_WAIT
                             else Rule.FIN_WAIT_2_TIMEOUT, msl=self.config.msl)
        self._set_state(State.CLOSED, now)

    def _on_retransmit_timeout(self, now: float) -> None:
        """RFC 6298 (5.4)-(5.6); RFC 1122 4.2.3.5 gives up after R2 retransmissions."""
        tcb = self.tcb
        sender = self.sender
        handshake = tcb.snd_una == tcb.iss  # our SYN is not acknowledged yet
        cfg = self.config
        limit = cfg.max_retries
        if handshake:  # RFC 4987 3.2: a half-open TCB gives up sooner than our own SYN
            limit = cfg.synack_retries if self.state is State.SYN_RECEIVED else cfg.syn_retries
        if sender.retries == 0:
            sender.stalled_since = now - sender.rtt.rto  # the head went out one RTO ago
        user_timeout = cfg.user_timeout  # RFC 5482: replaces the retry count
        if (sender.retries >= limit if user_timeout is None
                else now - sender.stalled_since >= user_timeout):
            # RFC 1122 4.2.3.5: close the connection. A peer that never synchronized has
            # nothing to reset; any other peer is told with a RST.
            if self._why is not None:
                self._why.decide(Rule.RTO_GIVE_UP, retries=sender.retries, limit=limit)
            self._fail(ErrorReason.TIMED_OUT, now, send_rst=self.state is not State.SYN_SENT)
            return
        rto = sender.rtt.rto
        sender.back_off()
        if self._why is not None:
            self._why.decide(Rule.RTO_BACKOFF, changed={"rto": (rto, sender.rtt.rto)},
                             snd_una=tcb.snd_una, retries=sender.retries)
        if handshake:
            sender.syn_retransmitted = True
            self._send_syn(now)  # (5.4) the earliest unacknowledged segment is our SYN
            return
        sender.on_retransmit_timeout(now)

    def _on_recovery_timer(self, now: float, kind: Timer) -> None:
        """RACK's reordering timer and TLP's probe timeout (RFC 8985 6.3, 7.3)."""
        if self.state in _SENDING:
            self.sender.recovery.on_timer(kind, self.sender, now)

    def _on_persist_timeout(self, now: float) -> None:
        """RFC 9293 3.8.6.1 zero-window probe, or the sender SWS override (3.8.6.2.1)."""
        if self.state in _SENDING and not self.sender.on_persist_timeout(now):
            if self._why is not None:
                self._why.decide(Rule.PERSIST_GIVE_UP, probes=self.sender.probes_unanswered)
            self._fail(ErrorReason.TIMED_OUT, now, send_rst=True)

    def _on_delayed_ack_timeout(self, now: float) -> None:
        if self._why is not None:
            self._why.decide(Rule.DELAYED_ACK_TIMEOUT, delayed_ack=self.config.delayed_ack)
        self.receiver.ack_now = True  # RFC 1122 4.2.3.2: the delay is over

    def _on_keepalive_timeout(self, now: float) -> None:
        """RFC 1122 4.2.3.6: probe an idle connection with <SEQ=SND.NXT-1><ACK=RCV.NXT>.
        RFC 9293 3.8.4: only when no sent data is outstanding (MUST-26), and only
        keepalive_probes unanswered probes in a row end the connection (MUST-29)."""
        cfg = self.config
        tcb = self.tcb
        sender = self.sender
        if tcb.snd_nxt != tcb.snd_una:
            # not idle: the retransmission timer watches the peer
            self._timers.arm(Timer.KEEPALIVE, now + cfg.keepalive_idle)
            return
        if sender.probes_unanswered >= cfg.keepalive_probes:
            if self._why is not None:
                self._why.decide(Rule.KEEPALIVE_GIVE_UP, probes=sender.probes_unanswered)
            self._fail(ErrorReason.TIMED_OUT, now, send_rst=True)
            return
        if self._why is not None:
            self._why.decide(Rule.KEEPALIVE_PROBE, snd_nxt=tcb.snd_nxt)
        sender.probes_unanswered += 1
        self._emit(tcb.snd_nxt - 1, ACK, b"", now)
        self._timers.arm(Timer.KEEPALIVE, now + cfg.keepalive_interval)

    # ------------------------------------------------------------------ SEGMENT ARRIVES

    def on_segment(self, seg: TcpSegment, now: float) -> None:
        """SEGMENT ARRIVES (RFC 9293 3.10.7). Never raises on anything the peer sends."""
        state = self.state
        if state is State.CLOSED:
            self._segment_arrives_closed(seg)
            return
        if state is State.LISTEN:
            self._segment_arrives_listen(seg, now)
        elif state is State.SYN_SENT:
            self._segment_arrives_syn_sent(seg, now)
        elif not (self.config.header_prediction and fast_path.segment_arrives(self, seg, now)):
            self._segment_arrives_synchronized(seg, now)  # not the fast path (fast_path.py)
        if self.state is not State.CLOSED and self.state is not State.LISTEN:
            self._output(now)

    def _segment_arrives_closed(self, seg: TcpSegment) -> None:
        """RFC 9293 3.10.7.1: CLOSED. Answer anything but a RST with a RST."""
        for rst in reset_for(seg, self._why):
            self._queue(rst)

    def _segment_arrives_listen(self, seg: TcpSegment, now: float) -> None:
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
            self._emit_rst(seg.ack, now)
            return
        if not flags & SYN:
            if self._why is not None:
                self._why.decide(Rule.LISTEN_DROP)
            return  # fourth: "other text or control ... drop the segment"
        if self._why is not None:
            self._why.decide(Rule.LISTEN_SYN, irs=seg.seq)
        # third: a SYN. (Security/compartment checks are not applicable, 3.10.7.2.)
        self._take_syn(seg, now)
        self._take_send_window(seg, self.tcb.snd_una, scaled=False)
        # "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> is sent ... SND.NXT is set to ISS+1 and
        # SND.UNA to ISS". Text and FIN on the SYN are not kept: the peer will resend
        # them once we have acknowledged its SYN.
        self._send_syn(now)
        self._set_state(State.SYN_RECEIVED, now)

    def _segment_arrives_syn_sent(self, seg: TcpSegment, now: float) -> None:
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
                self._emit_rst(seg.ack, now)
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
                self._fail(ErrorReason.CONNECTION_REFUSED, now, send_rst=False)
            return
        # third: security (not applicable)
        # fourth: check the SYN bit
        if not flags & SYN:
            if self._why is not None:
                self._why.decide(Rule.SYN_SENT_DROP)
            return  # fifth: "if neither of the SYN or RST bits is set, drop the segment"
        self._take_syn(seg, now)
        if flags & ACK:
            # our SYN has been ACKed ("SND.UNA should be advanced to equal SEG.ACK"):
            # ESTABLISHED, send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            if self._why is not None:
                self._why.decide(
                    Rule.SYN_SENT_ESTABLISHED, seg_ack=seg.ack, iss=tcb.iss, irs=seg.seq
                )
            self.sender.syn_acked(seg.ack, now, seg.options.timestamps)
            self._take_send_window(seg, seg.ack, scaled=False)  # never scaled in a SYN
            self._enter_established(now)
            self.receiver.ack_now = True
            # "If there are other controls or text in the segment, continue processing
            # at the sixth step below where the URG bit is checked"
            if seg.payload or flags & (FIN | URG):
                self._check_urg(seg)
                self._process_segment_text(seg, now)
                self._check_fin(seg, now)
            return
        # Simultaneous open (Figure 8): enter SYN-RECEIVED, form <SEQ=ISS><ACK=RCV.NXT>
        # <CTL=SYN,ACK>. Text on the SYN is not kept (the peer resends it).
        if self._why is not None:
            self._why.decide(Rule.SYN_SENT_SIMULTANEOUS, irs=seg.seq)
        self._take_send_window(seg, tcb.snd_una, scaled=False)
        self._set_state(State.SYN_RECEIVED, now)
        self._send_syn(now)

    def _segment_arrives_synchronized(self, seg: TcpSegment, now: float) -> None:
        """RFC 9293 3.10.7.4: SYN-RECEIVED and the synchronized states, step by step."""
        ts = self._ts
        if ts is not None and not self._check_paws(seg, ts, now):
            return
        checked = self._check_sequence(seg, now)
        if checked is None:
            return
        seg = checked
        if ts is not None:
            self._record_ts_recent(seg, ts, now)
        self._heard_from_peer(now)
        if not self._check_rst(seg, now):
            return
        if not self._check_security(seg):
            return
        if not self._check_syn(seg, now):
            return
        if not self._check_ack(seg, now):
            return
        self._check_urg(seg)
        self._process_segment_text(seg, now)
        self._check_fin(seg, now)

    def _heard_from_peer(self, now: float) -> None:
        """An acceptable segment arrived: probes are answered, the path works."""
        self.sender.probes_unanswered = 0
        self._soft_error = None  # the peer answered: the path works (Linux clears sk_err_soft)
        if self._timers.is_armed(Timer.KEEPALIVE):  # RFC 9293 3.8.4: idle again from now
            self._timers.arm(Timer.KEEPALIVE, now + self.config.keepalive_idle)

    def _check_paws(self, seg: TcpSegment, ts: Timestamps, now: float) -> bool:
        """Before the first step, with timestamps agreed (tcp/timestamps.py): RFC 7323 3.2
        drops a segment without them; PAWS (5.3 R1) treats one with a TSval older than
        TS.Recent as not acceptable: an ACK in reply, then dropped. True: go on."""
        if self.state is State.TIME_WAIT and drops_old_syn(  # RFC 6191 2, first of all
                seg, self.tcb.rcv_nxt, ts.ts_recent, self._why):
            return False
        tsopt = seg.options.timestamps
        rule = ts.screen(tsopt, rst=bool(int(seg.flags) & RST), now=now)
        if rule is None:
            return True
        if self._why is not None:
            self._why.decide(rule, seg_tsval=None if tsopt is None else tsopt[0],
                             ts_recent=ts.ts_recent)
        if rule is Rule.PAWS_REJECT:
            self.receiver.ack_now = True
        return rule is Rule.PAWS_IDLE

    def _record_ts_recent(self, seg: TcpSegment, ts: Timestamps, now: float) -> None:
        """After the first step: RFC 7323 5.3 R3 (4.3 (2)) records SEG.TSval in TS.Recent
        unless it is older or the segment starts beyond Last.ACK.sent; never a RST's
        (5.2: its TSopt must not change the connection's state)."""
        tsopt = seg.options.timestamps
        if tsopt is None or int(seg.flags) & RST:
            return
        if not ts.update_recent(tsopt[0], seg.seq, now) and self._why is not None:
            self._why.decide(Rule.TS_RECENT_KEPT, seg_tsval=tsopt[0], seg_seq=seg.seq,
                             ts_recent=ts.ts_recent, last_ack_sent=ts.last_ack_sent)

    def _check_sequence(self, seg: TcpSegment, now: float) -> TcpSegment | None:
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
        receiver = self.receiver
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
            receiver.ack_now = True
            return TcpSegment(
                seg.src_port, seg.dst_port, seg.seq, seg.ack, _AS_FLAGS[flags & ~FIN], seg.window,
                seg.options, b"", seg.urgent,
            )
        self._not_acceptable(seg, seg_len, now)
        return None

    def _not_acceptable(self, seg: TcpSegment, seg_len: int, now: float) -> None:
        """The first step, for a segment that is not acceptable: "If an incoming segment
        is not acceptable, an acknowledgment should be sent in reply (unless the RST bit
        is set, if so drop the segment and return)" (RFC 9293 3.10.7.4)."""
        tcb = self.tcb
        flags = int(seg.flags)
        receiver = self.receiver
        if flags & RST:
            if self._why is not None:
                self._why.decide(Rule.NOT_ACCEPTABLE_RST, seg_seq=seg.seq, rcv_nxt=tcb.rcv_nxt,
                                 rcv_wnd=tcb.rcv_wnd)
            return
        state = self.state
        if state is State.TIME_WAIT and flags & FIN and seg.seq + seg_len == tcb.rcv_nxt:
            # The peer retransmitted its FIN (our last ACK was lost): ACK it again and
            # restart the 2 MSL timeout (RFC 9293 3.10.7.4 eighth step, TIME-WAIT).
            if self._why is not None:
                self._why.decide(Rule.TIME_WAIT_FIN_AGAIN, seg_seq=seg.seq, rcv_nxt=tcb.rcv_nxt,
                                 msl=self.config.msl)
            self._timers.arm(Timer.TIME_WAIT, now + 2 * self.config.msl)
        elif state is State.SYN_RECEIVED and flags & SYN and not flags & ACK and tcb.irs == seg.seq:
            # The peer resent its SYN: our SYN,ACK was lost. The RFC's reply is an ACK;
            # like most stacks we resend the SYN,ACK (which is that ACK plus our SYN),
            # so the peer need not wait for our retransmission timer.
            if self._why is not None:
                self._why.decide(Rule.SYN_RECEIVED_SYN_AGAIN, seg_seq=seg.seq, irs=tcb.irs)
            self.sender.rtt_seq = None  # Karn
            self.sender.syn_retransmitted = True
            self._send_syn(now)
            return
        if receiver.sack_blocks and seg.payload and seg.seq + len(seg.payload) <= tcb.rcv_nxt:
            # all old: a duplicate, reported in the ACK's first SACK block (RFC 2883 4.1.1)
            receiver.buffer.note_duplicate(seg.seq - tcb.rcv_nxt, len(seg.payload))
        receiver.ack_now = True  # "<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>", then drop
        if self._why is not None:
            self._why.decide(
                Rule.NOT_ACCEPTABLE, seg_seq=seg.seq, seg_len=seg_len, rcv_nxt=tcb.rcv_nxt,
                rcv_wnd=tcb.rcv_wnd,
            )

    def _check_rst(self, seg: TcpSegment, now: float) -> bool:
        """Second step: check the RST bit (RFC 9293 3.10.7.4, RFC 5961 3). True: go on."""
        if not int(seg.flags) & RST:
            return True
        state = self.state
        if state is State.TIME_WAIT:
            # RFC 1337 ("TIME-WAIT assassination"): a RST, perhaps an old duplicate, must
            # not cut TIME-WAIT short, or old segments could corrupt a new incarnation of
            # this connection. Ignore it; the 2 MSL timer ends TIME-WAIT.
            if self._why is not None:
                self._why.decide(Rule.RST_TIME_WAIT_IGNORED)
            return False
        if seg.seq != self.tcb.rcv_nxt:
            # RFC 5961 3.2: in the window but not exactly RCV.NXT: challenge ACK
            if self._why is not None:
                self._why.decide(Rule.RST_IN_WINDOW, seg_seq=seg.seq, rcv_nxt=self.tcb.rcv_nxt)
            self._challenge_ack(now)
            return False
        if state is State.SYN_RECEIVED:
            if self._passive:
                # "If this connection was initiated with a passive OPEN, then return this
                # connection to the LISTEN state and return. The user need not be informed."
                if self._why is not None:
                    self._why.decide(Rule.RST_BACK_TO_LISTEN)
                self._return_to_listen(now)
            else:
                if self._why is not None:
                    self._why.decide(Rule.RST_REFUSED)
                self._fail(ErrorReason.CONNECTION_REFUSED, now, send_rst=False)
            return False
        if self._why is not None:
            self._why.decide(Rule.RST_RESET, seg_seq=seg.seq, rcv_nxt=self.tcb.rcv_nxt)
        if state in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT):
            # "any outstanding RECEIVEs and SEND should receive 'reset' responses ...
            # signal 'connection reset'. Enter the CLOSED state, delete the TCB"
            self._fail(ErrorReason.CONNECTION_RESET, now, send_rst=False)
            return False
        # CLOSING, LAST-ACK: "enter the CLOSED state, delete the TCB, and return"
        self._set_state(State.CLOSED, now)
        return False

    def _check_security(self, seg: TcpSegment) -> bool:
        """Third step: security/compartment (RFC 9293 3.10.7.4). RFC 9293 deprecates the
        IP security option for TCP's purposes (3.7.5), so there is nothing to check."""
        return True

    def _check_syn(self, seg: TcpSegment, now: float) -> bool:
        """Fourth step: check the SYN bit (RFC 9293 3.10.7.4, RFC 5961 4). True: go on."""
        if not int(seg.flags) & SYN:
            return True
        if self.state is State.SYN_RECEIVED and self._passive:
            # "If the connection was initiated with a passive OPEN, then return this
            # connection to the LISTEN state and return."
            if self._why is not None:
                self._why.decide(Rule.SYN_BACK_TO_LISTEN)
            self._return_to_listen(now)
            return False
        # "irrespective of the sequence number, TCP endpoints MUST send a 'challenge ACK'
        # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> ... and stop processing". In TIME-WAIT too:
        # a SYN that may start a new incarnation (accepts_new_syn(), RFC 1122 4.2.2.13)
        # is the stack's to hand to its listener before it ever gets here.
        if self._why is not None:
            self._why.decide(Rule.SYN_CHALLENGE, seg_seq=seg.seq)
        self._challenge_ack(now)
        return False

    def _check_ack(self, seg: TcpSegment, now: float) -> bool:
        """Fifth step: check the ACK field (RFC 9293 3.10.7.4, RFC 5961 5). True: go on.

        The state machine checks the ACK's acceptability and makes the transitions; what
        an acceptable ACK means for the data in flight is the Sender's (Sender.on_ack and
        its recovery strategy: RFC 5681, 6582, 6675, 8985)."""
        if not int(seg.flags) & ACK:
            if self._why is not None:
                self._why.decide(Rule.ACK_MISSING)
            return False  # "if the ACK bit is off, drop the segment and return"
        tcb = self.tcb
        ack = seg.ack
        state = self.state
        if state is State.SYN_RECEIVED:
            ours = tcb.snd_una < ack <= tcb.snd_nxt
            if self._why is not None:
                self._why.decide(Rule.ACK_ESTABLISHES if ours else Rule.ACK_SYN_RECEIVED_RESET,
                                 seg_ack=ack, snd_una=tcb.snd_una, snd_nxt=tcb.snd_nxt)
            if not ours:
                self._emit_rst(ack, now)  # "form a reset segment <SEQ=SEG.ACK><CTL=RST>"
                return False
            # "enter ESTABLISHED state and continue processing with the variables below
            # set to: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK"
            self._take_send_window(seg, ack, scaled=True)
            self.sender.syn_acked(ack, now, seg.options.timestamps)
            self._enter_established(now)
            if self.state is not State.FIN_WAIT_1:
                return True
            # a FIN queued in SYN-RECEIVED went out with it; fall through to see if this
            # ACK covers it
        if ack > tcb.snd_nxt:
            # "If the ACK acks something not yet sent (SEG.ACK > SND.NXT), then send an
            # ACK, drop the segment, and return" (also RFC 5961 5.2)
            if self._why is not None:
                self._why.decide(Rule.ACK_NOT_SENT, seg_ack=ack, snd_nxt=tcb.snd_nxt)
            self._challenge_ack(now)
            return False
        if ack < tcb.snd_una - tcb.max_snd_wnd:
            # RFC 5961 5.2: too old to be a plausible duplicate: challenge ACK, drop
            if self._why is not None:
                self._why.decide(Rule.ACK_TOO_OLD, seg_ack=ack, snd_una=tcb.snd_una,
                                 max_snd_wnd=tcb.max_snd_wnd)
            self._challenge_ack(now)
            return False
        wnd = seg.window << tcb.snd_wscale
        if self._why is not None:
            self._explain_ack(seg, wnd)
        if ack >= tcb.snd_una and self.sender.on_ack(seg, wnd, now) > 0:
            self._event(SendSpace())
        # "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated. If
        # (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)), set
        # SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK."
        if ack >= tcb.snd_una and tcb.window_is_newer(seg.seq, ack):
            if self._why is not None and wnd != tcb.snd_wnd:
                self._why.decide(Rule.WINDOW_UPDATE, changed={"snd_wnd": (tcb.snd_wnd, wnd)},
                                 snd_wl1=tcb.snd_wl1, snd_wl2=tcb.snd_wl2)
            self._take_send_window(seg, ack, scaled=True)
        return self._check_ack_of_our_fin(seg, state, now)

    def _explain_ack(self, seg: TcpSegment, wnd: int) -> None:
        """Name the fifth step's verdict on an acceptable ACK (explanations on only)."""
        assert self._why is not None
        tcb = self.tcb
        self._why.decide(
            Rule.ACK_NEW if seg.ack > tcb.snd_una
            else Rule.ACK_DUPLICATE if self.sender.is_duplicate_ack(seg, wnd)
            else Rule.ACK_OLD,
            seg_ack=seg.ack, snd_una=tcb.snd_una, snd_nxt=tcb.snd_nxt,
        )

    def _check_ack_of_our_fin(self, seg: TcpSegment, state: State, now: float) -> bool:
        """The fifth step's last part: what an ACK of our FIN means in FIN-WAIT-1,
        CLOSING and LAST-ACK (RFC 9293 3.10.7.4). True: go on to the sixth step."""
        fin_acked = self.sender.fin_acked
        if state is State.FIN_WAIT_1:
            # "if the FIN segment is now acknowledged, then enter FIN-WAIT-2". If this
            # segment carries the peer's FIN too, the eighth step goes straight to
            # TIME-WAIT ("If our FIN has been ACKed (perhaps in this segment)").
            if fin_acked and not int(seg.flags) & FIN:
                if self._why is not None:
                    self._why.decide(Rule.FIN_WAIT_1_FIN_ACKED, seg_ack=seg.ack)
                self._set_state(State.FIN_WAIT_2, now)
        elif state is State.CLOSING:
            # "if the ACK acknowledges our FIN, then enter the TIME-WAIT state;
            # otherwise, ignore the segment"
            if fin_acked:
                if self._why is not None:
                    self._why.decide(Rule.CLOSING_FIN_ACKED, seg_ack=seg.ack)
                self._enter_time_wait(now)
            return False
        elif state is State.LAST_ACK:
            # "If our FIN is now acknowledged, delete the TCB, enter the CLOSED state"
            if fin_acked:
                if self._why is not None:
                    self._why.decide(Rule.LAST_ACK_FIN_ACKED, seg_ack=seg.ack)
                self._set_state(State.CLOSED, now)
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
        receiver = self.receiver
        up = seg.seq + seg.urgent
        if receiver.urgent:
            if up > tcb.rcv_up:
                tcb.rcv_up = up  # more urgent data in the same run: no new signal
        elif up > tcb.rcv_nxt - len(receiver.buffer):  # beyond what the user has read
            tcb.rcv_up = up
            receiver.urgent = True
            self._event(Urgent())
            if self._why is not None:
                self._why.decide(Rule.URGENT, rcv_up=up)

    def _process_segment_text(self, seg: TcpSegment, now: float) -> None:
        """Seventh step: process the segment text (RFC 9293 3.10.7.4).

        In ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2 the text goes into the receive buffer;
        segments ahead of RCV.NXT are held for later (out-of-order reassembly). Other
        states ignore text (the peer's FIN already came).
        """
        payload = seg.payload
        if not payload or self.state not in _RECEIVING:
            return
        data_seq = seg.seq + 1 if int(seg.flags) & SYN else seg.seq
        if self.sender.ecn is not None:
            self.sender.ecn.data_arrives(seg, self.receiver, self._why)  # RFC 3168 6.1.3
        if self.receiver.take_text(self.tcb, data_seq, payload, now):
            self._event(DataReadable())

    def _check_fin(self, seg: TcpSegment, now: float) -> None:
        """Eighth step: check the FIN bit (RFC 9293 3.10.7.4).

        A FIN ahead of RCV.NXT (out of order) is held by the receive buffer and processed
        here once the data before it has arrived.
        """
        state = self.state
        if state not in _RECEIVING:
            return
        tcb = self.tcb
        receiver = self.receiver
        received = receiver.buffer
        if int(seg.flags) & FIN:
            fin_seq = (seg.seq + 1 if int(seg.flags) & SYN else seg.seq) + len(seg.payload)
            rel = fin_seq - tcb.rcv_nxt
            if 0 <= rel <= tcb.rcv_wnd:
                received.hold_fin(rel)
        if not received.fin_reached:
            if state is State.FIN_WAIT_1 and self.sender.fin_acked:
                if self._why is not None:
                    self._why.decide(Rule.FIN_WAIT_1_FIN_ACKED, seg_ack=seg.ack)
                self._set_state(State.FIN_WAIT_2, now)
            return
        # "advance RCV.NXT over the FIN, and send an acknowledgment for the FIN ...
        # signal the user 'connection closing'"
        received.fin_at = None
        tcb.rcv_nxt = tcb.rcv_nxt + 1
        receiver.eof = True
        self._event(Eof())
        if state is State.ESTABLISHED:
            # -> CLOSE-WAIT. The ACK is delayed: if the application closes soon, our FIN
            # carries it (FIN+ACK, the "three-way close" seen with real peers).
            if self._why is not None:
                self._why.decide(Rule.FIN_CLOSE_WAIT, rcv_nxt=tcb.rcv_nxt)
            self._set_state(State.CLOSE_WAIT, now)
            receiver.fin_received(now)
        elif state is State.FIN_WAIT_1:
            receiver.ack_now = True
            if self._why is not None:
                self._why.decide(Rule.FIN_TIME_WAIT if self.sender.fin_acked else Rule.FIN_CLOSING,
                                 rcv_nxt=tcb.rcv_nxt, msl=self.config.msl)
            if self.sender.fin_acked:
                self._enter_time_wait(now)  # "perhaps in this segment": FIN-WAIT-1 -> TIME-WAIT
            else:
                self._set_state(State.CLOSING, now)
        else:  # FIN-WAIT-2
            if self._why is not None:
                self._why.decide(Rule.FIN_TIME_WAIT, rcv_nxt=tcb.rcv_nxt, msl=self.config.msl)
            receiver.ack_now = True
            self._enter_time_wait(now)

    # ------------------------------------------------------------------ the steps' helpers

    def _challenge_ack(self, now: float) -> None:
        """Owe the peer a challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (RFC 5961
        3.2, 4.2, 5.2), but at most config.challenge_ack_limit in any one second
        (RFC 5961 7); the ones left out are counted in challenge_acks_suppressed."""
        limit = self.config.challenge_ack_limit
        if limit is not None:
            if self._challenge_limit is None:
                self._challenge_limit = ChallengeAckLimit(now)
            if not self._challenge_limit.allow(limit, now):
                return
        self.receiver.ack_now = True

    def _take_syn(self, seg: TcpSegment, now: float) -> None:
        """The peer's SYN: IRS, RCV.NXT, and what its options offer."""
        tcb = self.tcb
        tcb.irs = seg.seq
        tcb.rcv_nxt = seg.seq + 1
        self._take_syn_options(seg.options, now)
        self._syn_options.take_ecn(int(seg.flags))  # RFC 3168 6.1.1

    def _take_send_window(self, seg: TcpSegment, ack: SeqNum, *, scaled: bool) -> None:
        """SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK (RFC 9293 3.10.7.3,
        3.10.7.4 fifth step); a SYN's window is never scaled (RFC 7323 2.2)."""
        tcb = self.tcb
        wnd = seg.window << tcb.snd_wscale if scaled else seg.window
        # equal numbers as one object where they are equal (an idle connection's memory,
        # issue 13): the largest window again, a segment at RCV.NXT, an ACK up to SND.UNA
        tcb.snd_wnd = wnd if wnd != tcb.max_snd_wnd else tcb.max_snd_wnd
        seq = seg.seq
        tcb.snd_wl1 = tcb.rcv_nxt if seq.value == tcb.rcv_nxt.value else seq
        tcb.snd_wl2 = tcb.snd_una if ack.value == tcb.snd_una.value else ack
        if wnd > tcb.max_snd_wnd:
            tcb.max_snd_wnd = wnd

    def _take_syn_options(self, options: TcpOptions, now: float) -> None:
        """The peer's SYN: MSS (RFC 9293 3.7.1), window scale (RFC 7323 2.2),
        SACK-permitted (RFC 2018 2) and timestamps (RFC 7323 3.2), as syn_options.py
        negotiates them."""
        syn = self._syn_options
        assert syn is not None  # a SYN state: not yet let go (_enter_established)
        self.sender.mss = syn.take(options, self.tcb)
        self._ts = self.sender.timestamps = agreed(self._ts, options.timestamps, now)
        self.receiver.agreed(sack=syn.sack, timestamps=self._ts is not None)

    def _send_syn(self, now: float) -> None:
        """<SEQ=ISS><CTL=SYN> (or SYN,ACK once the peer's SYN is known); arms the timer."""
        syn, reply = self._syn_options, self.tcb.irs is not None
        assert syn is not None  # a SYN state: not yet let go (_enter_established)
        options = syn.offer(reply=reply)
        ecn = syn.ecn_flags(reply=reply, again=self.sender.syn_retransmitted, why=self._why)
        self._emit(self.tcb.iss, SYN | ecn, b"", now, options)
        self.sender.syn_sent(now)

    # ------------------------------------------------------------------ transitions

    def _enter_established(self, now: float) -> None:
        """Both SYNs acknowledged: the sender starts for the agreed MSS and recovery."""
        syn = self._syn_options
        assert syn is not None  # a SYN state: not yet let go
        self.tcb.share_equal_numbers()
        self.sender.start(sack=syn.sack, ecn=syn.ecn)
        self._syn_options = None  # negotiated: nothing reads it again (memory, issue 13)
        if self._keepalive:
            self._timers.arm(Timer.KEEPALIVE, now + self.config.keepalive_idle)
        self._set_state(State.ESTABLISHED, now)
        if self.sender.fin_queued:
            # CLOSE was called in SYN-RECEIVED with data queued (RFC 9293 3.10.4)
            self._set_state(State.FIN_WAIT_1, now)

    def _enter_time_wait(self, now: float) -> None:
        """TIME-WAIT: only the 2 MSL timer runs (RFC 9293 3.10.7.4, 3.10.8)."""
        self._set_state(State.TIME_WAIT, now)
        self._timers.cancel_all()
        self._timers.arm(Timer.TIME_WAIT, now + 2 * self.config.msl)

    def _return_to_listen(self, now: float) -> None:
        """A passive open's handshake failed: back to LISTEN with a fresh TCB."""
        tcb = self.tcb
        self.tcb = Tcb(iss=tcb.iss, snd_una=tcb.iss, snd_nxt=tcb.iss, snd_up=tcb.iss)
        self.sender.reset(self.tcb)
        self._timers.cancel_all()
        self.receiver.ack_now = False
        self._set_state(State.LISTEN, now)

    def _set_state(self, new: State, now: float) -> None:
        old = self.state
        self.state = new
        self._event(StateChanged(old, new))
        if new is State.ESTABLISHED:
            self._event(Connected())
        elif new is State.FIN_WAIT_2:
            if self._fully_closed:
                self._arm_fin_wait_2(now)
        elif new is State.CLOSED:
            self._timers.cancel_all()
            self.receiver.ack_now = False
            self._event(Closed())

    def _arm_fin_wait_2(self, now: float) -> None:
        """The application closed completely and our FIN is acknowledged: wait for the
        peer's FIN at most config.fin_wait_2_timeout (as Linux's tcp_fin_timeout).
        RFC 9293 does not require this, but a peer that never closes would otherwise
        keep the TCB forever; 3.6 lets the closing side go once it has nothing to send."""
        timeout = self.config.fin_wait_2_timeout
        if timeout is not None:
            self._timers.arm_if_off(Timer.FIN_WAIT_2, now + timeout)

    def _fail(self, reason: ErrorReason, now: float, *, send_rst: bool) -> None:
        """Error(reason), then CLOSED (and Closed). A timeout after a soft ICMP error
        reports that error instead (RFC 1122 4.2.3.9, as Linux does)."""
        if reason is ErrorReason.TIMED_OUT and self._soft_error is not None:
            reason = self._soft_error
        if send_rst:
            self._emit_rst(self.tcb.snd_nxt, now)
        self._failure = reason
        self._event(Error(reason))
        self._set_state(State.CLOSED, now)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise ConnectionFailed(self._failure)

    # ------------------------------------------------------------------ output

    def _output(self, now: float) -> None:
        """Send what the windows allow, then any ACK still owed."""
        receiver = self.receiver
        sack_due = receiver.sack_due
        if receiver.ack_now and sack_due:
            self._send_sack(now)  # before any data, which carries no SACK option
        if self.state in _SENDING:
            self.sender.output(now)
        if receiver.ack_now:
            if sack_due:
                self._send_sack(now)
            else:
                self._emit(self._ack_seq(), ACK, b"", now)

    def _ack_seq(self) -> SeqNum:
        """SEG.SEQ of a pure ACK: SND.NXT, or where the next transmission starts while
        the peer's window is zero (so the ACK does not claim the probe's byte)."""
        tcb = self.tcb
        return self.sender.tx_nxt if tcb.snd_wnd == 0 else tcb.snd_nxt

    def _send_sack(self, now: float) -> None:
        """An ACK with the SACK blocks of the out-of-order data we hold (RFC 2018 4)."""
        self._emit(self._ack_seq(), ACK, b"", now, self.receiver.sack_option(self.tcb))

    def _emit(
        self, seq: SeqNum, flags: int, payload: bytes, now: float,
        options: TcpOptions = NO_OPTIONS, *, ecn: Ecn = Ecn.NOT_ECT,
    ) -> None:
        """Queue one segment; once the peer's SYN is known it carries <ACK=RCV.NXT>
        (and ECE while the ECN echo is on, RFC 3168 6.1.3). While urgent data is
        unacknowledged, a segment before SND.UP carries URG and the offset of SND.UP
        from its SEG.SEQ (at most 0xFFFF: RFC 9293 3.8.5). `ecn`: its ECN codepoint.
        With timestamps offered (our SYN) or agreed, it carries TSval and TSecr (RFC 7323
        3.2)."""
        tcb = self.tcb
        urgent = 0
        if self.sender.urgent and tcb.snd_up > seq:
            flags |= URG
            urgent = min(tcb.snd_up - seq, 0xFFFF)
        receiver = self.receiver
        if tcb.irs is not None:
            flags |= ACK
            ack = tcb.rcv_nxt
            receiver.ack_sent()
            if self.sender.ecn is not None:
                flags |= self.sender.ecn.ack_flags()
        else:
            ack = _ZERO
        ts = self._ts
        if ts is not None:  # only a SYN goes out before the peer's SYN said yes or no
            options = ts.stamp(options, now, ack if flags & ACK else None)
        window = receiver.window_field(tcb, syn=bool(flags & SYN), mss=self.sender.mss)
        self._queue(TcpSegment(
            self.local.port, self.remote.port, seq, ack, _AS_FLAGS[flags], window, options,
            payload, urgent, ecn,
        ))

    def _emit_rst(self, seq: SeqNum, now: float) -> None:
        """<SEQ=seq><CTL=RST>. Never sent in reply to a RST (RFC 9293 3.5.2). With
        timestamps agreed it carries TSval, TSecr 0 (no ACK bit), as RFC 7323 3.2 advises."""
        ts = self._ts
        options = NO_OPTIONS if ts is None or self.tcb.irs is None else ts.stamp(
            NO_OPTIONS, now, None)
        self._queue(
            TcpSegment(self.local.port, self.remote.port, seq, _ZERO, _AS_FLAGS[RST], 0, options)
        )

    def _queue(self, seg: TcpSegment) -> None:
        """One segment for take_outgoing()."""
        self._outgoing = _appended(self._outgoing, seg)

    def _event(self, event: Event) -> None:
        """One event for take_events()."""
        self._events = _appended(self._events, event)

    emit = _emit  # the Sender's way out (sender.Output): it holds the connection itself


def _appended(items: list[_T] | None, item: _T) -> list[_T]:
    """`items` with `item` at its end; the list is made by the first item (an idle
    connection keeps none, issue 13)."""
    if items is None:
        return [item]
    items.append(item)
    return items


_TIMER_HANDLERS: dict[Timer, Callable[[Connection, float], None]] = {
    Timer.TIME_WAIT: Connection._delete_tcb,
    Timer.FIN_WAIT_2: Connection._delete_tcb,
    Timer.RETRANSMIT: Connection._on_retransmit_timeout,
    Timer.REORDER: lambda conn, now: conn._on_recovery_timer(now, Timer.REORDER),
    Timer.LOSS_PROBE: lambda conn, now: conn._on_recovery_timer(now, Timer.LOSS_PROBE),
    Timer.PERSIST: Connection._on_persist_timeout,
    Timer.DELAYED_ACK: Connection._on_delayed_ack_timeout,
    Timer.KEEPALIVE: Connection._on_keepalive_timeout,
}
"""RFC 9293 3.10.8 and the timers beyond it: what each Timer does when it fires."""


def reset_for(seg: TcpSegment, explain: Explainer | None = None) -> list[TcpSegment]:
    """The reply to `seg` arriving where no connection exists (RFC 9293 3.10.7.1).

    "If the ACK bit is off, sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
    <CTL=RST,ACK>. If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>." A RST gets no reply.
    Used by `Stack._segment_arrives` for a segment that matches no connection and no
    listener, and by `Connection._segment_arrives_closed` for one that finds a TCB
    already CLOSED; `explain` is told the rule.
    """
    if explain is not None:
        explain.decide(
            Rule.CLOSED_RST_DROPPED if seg.flags & TcpFlags.RST else Rule.CLOSED_RESET,
            seg_seq=seg.seq, seg_ack=seg.ack,
        )
    if seg.flags & TcpFlags.RST:
        return []
    if seg.flags & TcpFlags.ACK:
        return [TcpSegment(seg.dst_port, seg.src_port, seg.ack, _ZERO, TcpFlags.RST, 0)]
    return [
        TcpSegment(
            seg.dst_port, seg.src_port, _ZERO, seg.seq + seg.seg_len, TcpFlags.RST | TcpFlags.ACK, 0
        )
    ]

"""Why the core did what it did: the table of rules it can name, and the recorder it names
them to (`userstack explain`, `userstack serve --trace --why`, `userstack view`).

The design
----------
- `Rule` is the table: one member per rule the core can apply, each with an id
  (``acceptability.not_acceptable``), the RFC and section that states it, and a one-line
  summary in this project's words. The enum is the only way the code can name a rule, so a
  rule the core emits is in the table by construction; tests/docs/test_rules_doc.py checks
  that every ``Rule.<NAME>`` written in userstack/ exists and that the ids are unique.
- `Decision` is what one application of a rule leaves behind: the rule, the variables it
  compared with their values, and the variables it changed (old -> new). Values are kept
  as they are (`SeqNum`, int, float, `State`); nothing is formatted until someone prints
  (observe/why.py).
- `Explainer` is the recorder. A `Connection` is given one (`open_active(...,
  explain=recorder)`) or none. Each decision point in the core reads

      if self._why is not None:
          self._why.decide(Rule.NOT_ACCEPTABLE, seg_seq=seg.seq, rcv_nxt=tcb.rcv_nxt)

  so with explanations off (the default, and always on the hot path of a stack nobody
  watches) a decision costs one attribute load and one ``is not None`` test: the keyword
  arguments are never evaluated, no object is built, nothing is formatted.
  ``scripts/bench`` measures that.
- Variable names are the RFC's, lower-cased with ``_`` for ``.`` (``seg_seq`` is SEG.SEQ,
  ``rcv_nxt`` RCV.NXT, ``snd_una`` SND.UNA); a name of another kind (``cwnd``, ``rto``) is
  the project's own. `variable_name` turns one into the RFC's spelling.
- What changed is passed as ``changed={"rto": (old, new)}`` where the rule itself changes
  something the TCB snapshot does not show; the TCB variables every input changed (SND.UNA,
  RCV.NXT, cwnd, ...) are found by whoever watches, by comparing `Connection.info()` before
  and after the input (observe/why.py), so the core need not repeat them at every point.
- A decision belongs to the input the core is handling (a segment, a user call, a timer):
  the watcher knows which input it passed in, so decisions carry no input of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

_RFC_EDITOR = "https://www.rfc-editor.org/rfc/"


class Rule(Enum):
    """Every rule the core can name: (id, RFC, section, summary)."""

    def __init__(self, rule_id: str, rfc: str, section: str, summary: str) -> None:
        self.rule_id = rule_id
        self.rfc = rfc
        self.section = section
        self.summary = summary

    @property
    def url(self) -> str:
        """The section on the RFC Editor's site (a link for the reader; never fetched)."""
        number = self.rfc.removeprefix("RFC ")
        return f"{_RFC_EDITOR}rfc{number}#section-{self.section}"

    @property
    def citation(self) -> str:
        return f"{self.rfc} {self.section}"

    # ---- SEGMENT ARRIVES in CLOSED, LISTEN, SYN-SENT (RFC 9293 3.10.7.1-3)
    CLOSED_RESET = (
        "closed.reset", "RFC 9293", "3.10.7.1",
        "no connection here: answer anything but a RST with a RST",
    )
    CLOSED_RST_DROPPED = (
        "closed.rst_dropped", "RFC 9293", "3.10.7.1",
        "no connection here and the segment is a RST: drop it, never answer a RST",
    )
    LISTEN_RST_IGNORED = (
        "listen.rst_ignored", "RFC 9293", "3.10.7.2",
        "LISTEN, first: an incoming RST is ignored",
    )
    LISTEN_ACK_RESET = (
        "listen.ack_reset", "RFC 9293", "3.10.7.2",
        "LISTEN, second: nothing was sent yet, so any ACK is bad: <SEQ=SEG.ACK><CTL=RST>",
    )
    LISTEN_SYN = (
        "listen.syn", "RFC 9293", "3.10.7.2",
        "LISTEN, third: a SYN: IRS <- SEG.SEQ, RCV.NXT <- SEG.SEQ+1, send SYN,ACK, "
        "enter SYN-RECEIVED",
    )
    LISTEN_DROP = (
        "listen.drop", "RFC 9293", "3.10.7.2",
        "LISTEN, fourth: neither SYN, ACK nor RST: drop it",
    )
    SYN_SENT_BAD_ACK = (
        "syn_sent.bad_ack", "RFC 9293", "3.10.7.3",
        "SYN-SENT, first: the ACK is not for our SYN (SEG.ACK =< ISS or > SND.NXT): "
        "reset it (drop it if it is a RST)",
    )
    SYN_SENT_REFUSED = (
        "syn_sent.refused", "RFC 9293", "3.10.7.3",
        "SYN-SENT, second: a RST acknowledging our SYN: connection refused, CLOSED",
    )
    SYN_SENT_RST_DROPPED = (
        "syn_sent.rst_dropped", "RFC 5961", "3.2",
        "SYN-SENT, second: a RST without an ACK of our SYN could be blind: drop it",
    )
    SYN_SENT_ESTABLISHED = (
        "syn_sent.established", "RFC 9293", "3.10.7.3",
        "SYN-SENT, fourth: a SYN that acknowledges ours: ESTABLISHED, ACK it",
    )
    SYN_SENT_SIMULTANEOUS = (
        "syn_sent.simultaneous_open", "RFC 9293", "3.10.7.3",
        "SYN-SENT, fourth: a SYN without ACK: both sides opened, SYN-RECEIVED, send SYN,ACK",
    )
    SYN_SENT_DROP = (
        "syn_sent.drop", "RFC 9293", "3.10.7.3",
        "SYN-SENT, fifth: neither SYN nor RST: drop it",
    )

    # ---- RFC 7323 timestamps, before the first step (tcp/timestamps.py)
    TS_MISSING = (
        "timestamps.missing", "RFC 7323", "3.2",
        "both SYNs agreed on timestamps but this segment (not a RST) has none: drop it silently",
    )
    PAWS_REJECT = (
        "paws.reject", "RFC 7323", "5.3",
        "R1: SEG.TSval is older than TS.Recent: an old duplicate, not acceptable: ACK and drop",
    )
    TS_RECENT_KEPT = (
        "timestamps.recent_kept", "RFC 7323", "4.3",
        "the segment starts beyond Last.ACK.sent (or is older): TS.Recent, the echo, stays",
    )
    PAWS_IDLE = (
        "paws.recent_invalid", "RFC 7323", "5.5",
        "SEG.TSval is older than TS.Recent, but TS.Recent is over 24 days old: accept it",
    )
    # ---- SEGMENT ARRIVES otherwise (RFC 9293 3.10.7.4), first step
    ACCEPTABLE = (
        "acceptability.acceptable", "RFC 9293", "3.10.7.4",
        "first: the segment starts or ends inside RCV.NXT..RCV.NXT+RCV.WND: go on",
    )
    NOT_ACCEPTABLE = (
        "acceptability.not_acceptable", "RFC 9293", "3.10.7.4",
        "first: the segment lies outside RCV.NXT..RCV.NXT+RCV.WND: send an ACK and drop it",
    )
    NOT_ACCEPTABLE_RST = (
        "acceptability.rst_dropped", "RFC 9293", "3.10.7.4",
        "first: an unacceptable RST is dropped without an answer",
    )
    ZERO_WINDOW_CONTROL = (
        "acceptability.zero_window", "RFC 9293", "3.10.7.4",
        "first: RCV.WND is zero: keep the segment's ACK and control bits, drop its text",
    )
    TIME_WAIT_FIN_AGAIN = (
        "time_wait.fin_again", "RFC 9293", "3.10.7.4",
        "TIME-WAIT: the peer's FIN came again (our ACK was lost): ACK it, restart 2*MSL",
    )
    SYN_RECEIVED_SYN_AGAIN = (
        "syn_received.syn_again", "RFC 9293", "3.10.7.4",
        "SYN-RECEIVED: the peer's SYN came again (our SYN,ACK was lost): send it again",
    )
    # ---- second step: the RST bit
    RST_TIME_WAIT_IGNORED = (
        "rfc1337.rst_in_time_wait", "RFC 1337", "3",
        "second: a RST in TIME-WAIT is ignored, so no old segment can cut TIME-WAIT short",
    )
    RST_IN_WINDOW = (
        "rfc5961.rst_in_window", "RFC 5961", "3.2",
        "second: a RST inside the window but not at RCV.NXT may be blind: challenge ACK",
    )
    RST_RESET = (
        "rst.reset", "RFC 9293", "3.10.7.4",
        "second: a RST exactly at RCV.NXT: the connection is reset, CLOSED",
    )
    RST_BACK_TO_LISTEN = (
        "rst.listen_again", "RFC 9293", "3.10.7.4",
        "second: a RST in SYN-RECEIVED of a passive open: back to LISTEN, the user is not told",
    )
    RST_REFUSED = (
        "rst.refused", "RFC 9293", "3.10.7.4",
        "second: a RST in SYN-RECEIVED of an active open: connection refused, CLOSED",
    )
    # ---- fourth step: the SYN bit
    SYN_CHALLENGE = (
        "rfc5961.syn_challenge", "RFC 5961", "4.2",
        "fourth: a SYN on a synchronized connection: challenge ACK, drop it",
    )
    SYN_BACK_TO_LISTEN = (
        "syn.listen_again", "RFC 9293", "3.10.7.4",
        "fourth: a SYN in SYN-RECEIVED of a passive open: back to LISTEN",
    )
    # ---- fifth step: the ACK field
    ACK_MISSING = (
        "ack.missing", "RFC 9293", "3.10.7.4",
        "fifth: the ACK bit is off: drop the segment",
    )
    ACK_ESTABLISHES = (
        "ack.syn_received", "RFC 9293", "3.10.7.4",
        "fifth: SYN-RECEIVED and SND.UNA < SEG.ACK =< SND.NXT: ESTABLISHED",
    )
    ACK_SYN_RECEIVED_RESET = (
        "ack.syn_received_reset", "RFC 9293", "3.10.7.4",
        "fifth: SYN-RECEIVED and the ACK is not for our SYN: <SEQ=SEG.ACK><CTL=RST>",
    )
    ACK_NOT_SENT = (
        "rfc5961.ack_not_sent", "RFC 5961", "5.2",
        "fifth: SEG.ACK > SND.NXT acknowledges what was never sent: challenge ACK, drop it",
    )
    ACK_TOO_OLD = (
        "rfc5961.ack_too_old", "RFC 5961", "5.2",
        "fifth: SEG.ACK < SND.UNA - MAX.SND.WND is too old to be a duplicate: challenge ACK",
    )
    ACK_NEW = (
        "ack.new", "RFC 9293", "3.10.7.4",
        "fifth: SND.UNA < SEG.ACK =< SND.NXT: new data acknowledged, SND.UNA <- SEG.ACK",
    )
    ACK_DUPLICATE = (
        "ack.duplicate", "RFC 5681", "2",
        "fifth: SEG.ACK = SND.UNA, no data, same window, data outstanding: a duplicate ACK",
    )
    ACK_OLD = (
        "ack.old", "RFC 9293", "3.10.7.4",
        "fifth: SEG.ACK =< SND.UNA acknowledges nothing new: ignore it, go on",
    )
    WINDOW_UPDATE = (
        "ack.window_update", "RFC 9293", "3.10.7.4",
        "fifth: a newer segment (SND.WL1, SND.WL2): SND.WND <- SEG.WND",
    )
    FIN_WAIT_1_FIN_ACKED = (
        "fin_wait_1.fin_acked", "RFC 9293", "3.10.7.4",
        "fifth: FIN-WAIT-1 and our FIN is acknowledged: FIN-WAIT-2",
    )
    CLOSING_FIN_ACKED = (
        "closing.fin_acked", "RFC 9293", "3.10.7.4",
        "fifth: CLOSING and our FIN is acknowledged: TIME-WAIT",
    )
    LAST_ACK_FIN_ACKED = (
        "last_ack.fin_acked", "RFC 9293", "3.10.7.4",
        "fifth: LAST-ACK and our FIN is acknowledged: delete the TCB, CLOSED",
    )
    # ---- sixth to eighth steps
    URGENT = (
        "urg.signal", "RFC 9293", "3.10.7.4",
        "sixth: URG: RCV.UP <- max(RCV.UP, SEG.UP), tell the user once per run of urgent data",
    )
    TEXT_IN_ORDER = (
        "text.in_order", "RFC 9293", "3.10.7.4",
        "seventh: the text starts at RCV.NXT: deliver it, RCV.NXT moves past it",
    )
    TEXT_OUT_OF_ORDER = (
        "text.out_of_order", "RFC 5681", "4.2",
        "seventh: text ahead of RCV.NXT, or filling a hole: keep it, ACK at once",
    )
    FIN_CLOSE_WAIT = (
        "fin.close_wait", "RFC 9293", "3.10.7.4",
        "eighth: the peer's FIN in ESTABLISHED: RCV.NXT moves over it, CLOSE-WAIT",
    )
    FIN_CLOSING = (
        "fin.closing", "RFC 9293", "3.10.7.4",
        "eighth: the peer's FIN in FIN-WAIT-1, ours not yet acknowledged: CLOSING",
    )
    FIN_TIME_WAIT = (
        "fin.time_wait", "RFC 9293", "3.10.7.4",
        "eighth: the peer's FIN after ours was acknowledged: ACK it, TIME-WAIT for 2*MSL",
    )
    # ---- ACK generation
    ACK_DELAYED = (
        "delack.delay", "RFC 1122", "4.2.3.2",
        "the ACK waits (at most the delayed-ACK time) for more data or a reply to carry it",
    )
    ACK_QUICK = (
        "delack.quickack", "RFC 5681", "4.2",
        "quick-ACK mode (the connection's start, or after idle): ACK this segment at once",
    )
    ACK_EVERY_SECOND = (
        "delack.second_segment", "RFC 5681", "4.2",
        "a second full segment arrived without an ACK: ACK now",
    )
    DELAYED_ACK_TIMEOUT = (
        "delack.timeout", "RFC 1122", "4.2.3.2",
        "the delayed-ACK timer ran out: send the ACK owed",
    )
    # ---- timers (RFC 9293 3.10.8)
    TIME_WAIT_EXPIRED = (
        "time_wait.expired", "RFC 9293", "3.10.8",
        "2*MSL in TIME-WAIT have passed: delete the TCB, CLOSED",
    )
    FIN_WAIT_2_TIMEOUT = (
        "fin_wait_2.timeout", "RFC 9293", "3.6",
        "the application is gone and the peer's FIN never came: delete the TCB",
    )
    RTO_BACKOFF = (
        "rto.backoff", "RFC 6298", "5",
        "the retransmission timer ran out: resend the oldest unacknowledged segment, "
        "double the RTO",
    )
    RTO_GIVE_UP = (
        "rto.give_up", "RFC 1122", "4.2.3.5",
        "R2 retransmissions went unanswered: close the connection",
    )
    PERSIST_PROBE = (
        "persist.probe", "RFC 9293", "3.8.6.1",
        "the peer's window is zero: probe it with one octet when the persist timer runs out",
    )
    KEEPALIVE_PROBE = (
        "keepalive.probe", "RFC 1122", "4.2.3.6",
        "idle for the keep-alive time: send <SEQ=SND.NXT-1><ACK=RCV.NXT>",
    )
    KEEPALIVE_GIVE_UP = (
        "keepalive.give_up", "RFC 9293", "3.8.4",
        "keepalive_probes probes in a row went unanswered: the peer is gone, close",
    )
    PERSIST_GIVE_UP = (
        "persist.give_up", "RFC 1122", "4.2.2.17",
        "the peer stopped answering even the zero-window probes: close",
    )
    TLP_PROBE = (
        "tlp.probe", "RFC 8985", "7.3",
        "no ACK for a probe timeout (PTO): send a tail loss probe, new data or the last segment",
    )
    REORDER_TIMEOUT = (
        "rack.reorder_timeout", "RFC 8985", "6.3",
        "the RACK reordering window ran out: look for lost segments again",
    )
    # ---- the sender: segmentation, windows, loss recovery, congestion control
    NAGLE_HOLD = (
        "nagle.hold", "RFC 9293", "3.7.4",
        "Nagle: a segment smaller than the MSS waits while sent data is unacknowledged",
    )
    SWS_HOLD = (
        "sws.sender_hold", "RFC 9293", "3.8.6.2.1",
        "sender SWS avoidance: less than a full segment, and less than half the largest "
        "window the peer offered: wait",
    )
    ZERO_WINDOW = (
        "persist.zero_window", "RFC 9293", "3.8.6.1",
        "the peer's window is zero: send nothing into it, probe it on the persist timer",
    )
    RTT_SAMPLE = (
        "rto.sample", "RFC 6298", "2",
        "the timed segment is acknowledged: a round-trip sample updates SRTT, RTTVAR and RTO",
    )
    RTTM_SAMPLE = (
        "rttm.sample", "RFC 7323", "4.1",
        "an ACK advancing SND.UNA echoes our TSval in TSecr: a round-trip sample for RFC 6298",
    )
    SLOW_START = (
        "cc.slow_start", "RFC 5681", "3.1",
        "cwnd < ssthresh: slow start, cwnd grows by the bytes acknowledged (at most SMSS)",
    )
    CONGESTION_AVOIDANCE = (
        "cc.congestion_avoidance", "RFC 5681", "3.1",
        "cwnd >= ssthresh: congestion avoidance, cwnd grows by about SMSS per round trip",
    )
    RESTART_AFTER_IDLE = (
        "cc.restart_after_idle", "RFC 5681", "4.1",
        "idle for longer than an RTO: cwnd falls back to the restart window",
    )
    CC_TIMEOUT = (
        "cc.timeout", "RFC 5681", "3.1",
        "a retransmission timeout: ssthresh <- max(FlightSize/2, 2*SMSS), cwnd <- 1 SMSS",
    )
    FAST_RETRANSMIT = (
        "cc.fast_retransmit", "RFC 5681", "3.2",
        "the third duplicate ACK: resend the first unacknowledged segment at once, "
        "ssthresh <- max(FlightSize/2, 2*SMSS)",
    )
    PARTIAL_ACK = (
        "cc.partial_ack", "RFC 6582", "3.2",
        "in fast recovery, an ACK below `recover`: the next hole is lost too, resend it",
    )
    CC_UNDO = (
        "cc.undo", "RFC 9438", "4.9.2",
        "every segment the last recovery resent came back D-SACKed (RFC 3708): the loss "
        "was reordering, restore cwnd and ssthresh (and CUBIC's W_max, K, epoch)",
    )
    SACK_RECOVERY = (
        "sack.recovery", "RFC 6675", "5",
        "a segment is deemed lost: enter loss recovery and resend it at once",
    )
    RACK_LOST = (
        "rack.lost", "RFC 8985", "6.2",
        "sent before a segment now delivered, and longer ago than RTT plus the reordering "
        "window: lost",
    )
    # ---- ECN (RFC 3168 6.1; tcp/ecn.py)
    ECN_SETUP = (
        "ecn.setup", "RFC 3168", "6.1.1",
        "both SYNs agreed on ECN (ECE and CWR in the SYN, ECE alone in the SYN,ACK): "
        "new data goes out ECT(0)",
    )
    ECN_SYN_FALLBACK = (
        "ecn.syn_fallback", "RFC 3168", "6.1.1.1",
        "our ECN-setup SYN went unanswered: send it again without ECE and CWR, no ECN",
    )
    ECN_CE_ECHO = (
        "ecn.ce_echo", "RFC 3168", "6.1.3",
        "a CE-marked data packet: ECE on every ACK until a CWR arrives; this one at once",
    )
    ECN_CWR_RECEIVED = (
        "ecn.cwr_received", "RFC 3168", "6.1.3",
        "CWR: the sender has reduced its window, stop echoing ECE",
    )
    ECN_REDUCE = (
        "ecn.reduce", "RFC 3168", "6.1.2",
        "ECE, the first for data sent since the last reduction: reduce cwnd as for a loss, "
        "retransmit nothing, CWR on the next new data",
    )
    ECN_ECE_IGNORED = (
        "ecn.ece_ignored", "RFC 3168", "6.1.2",
        "ECE for a window already reduced (or in loss recovery): no second reduction, and "
        "no growth",
    )
    ECN_CWR_SENT = (
        "ecn.cwr_sent", "RFC 3168", "6.1.2",
        "the first new data segment after a reduction carries CWR",
    )
    # ---- the receiver
    WINDOW_UPDATE_SENT = (
        "window.update", "RFC 9293", "3.8.6.2.2",
        "the application read enough to move the right edge by min(buffer/2, MSS) and to "
        "double the window the peer has left: announce it",
    )
    # ---- the host, before any connection
    NEW_INCARNATION = (
        "time_wait.new_syn", "RFC 1122", "4.2.2.13",
        "a SYN beyond RCV.NXT for a four-tuple in TIME-WAIT starts a new connection",
    )
    NEW_INCARNATION_TIMESTAMP = (
        "time_wait.new_syn_timestamp", "RFC 6191", "2",
        "a SYN for a four-tuple in TIME-WAIT with a TSval newer than TS.Recent (or equal, "
        "beyond RCV.NXT; or any, if the old connection had no timestamps) starts a new "
        "connection, whatever its sequence number (PAWS keeps old duplicates out)",
    )
    TIME_WAIT_OLD_SYN = (
        "time_wait.old_syn", "RFC 6191", "2",
        "TIME-WAIT with timestamps: a SYN that may not start a new connection (TSval older "
        "than TS.Recent, or not newer and SEG.SEQ not beyond RCV.NXT) may be an old "
        "duplicate: drop it silently, TIME-WAIT goes on unchanged",
    )
    # ---- user calls (RFC 9293 3.10.1-3.10.5)
    OPEN_ACTIVE = (
        "user.open_active", "RFC 9293", "3.10.1",
        "active OPEN: send <SEQ=ISS><CTL=SYN>, SYN-SENT",
    )
    OPEN_PASSIVE = (
        "user.open_passive", "RFC 9293", "3.10.1",
        "passive OPEN: LISTEN for a SYN",
    )
    SEND = (
        "user.send", "RFC 9293", "3.10.2",
        "SEND: queue the data; it leaves as the windows allow",
    )
    CLOSE = (
        "user.close", "RFC 9293", "3.10.4",
        "CLOSE: our FIN follows the queued data",
    )
    CLOSE_WITH_UNREAD_DATA = (
        "user.close_unread", "RFC 1122", "4.2.2.13",
        "CLOSE with received data unread would lose it: send a RST instead of a FIN",
    )
    ABORT = (
        "user.abort", "RFC 9293", "3.10.5",
        "ABORT: <SEQ=SND.NXT><CTL=RST> where the peer has a TCB, CLOSED",
    )


# The rules a timer applies (RFC 9293 3.10.8): no segment line above them says when they
# happened, so a live trace stamps them with the time (observe/why.py LiveWhy).
TIMER_RULES = frozenset({
    Rule.TIME_WAIT_EXPIRED, Rule.FIN_WAIT_2_TIMEOUT, Rule.RTO_BACKOFF, Rule.RTO_GIVE_UP,
    Rule.PERSIST_PROBE, Rule.PERSIST_GIVE_UP, Rule.KEEPALIVE_PROBE, Rule.KEEPALIVE_GIVE_UP,
    Rule.DELAYED_ACK_TIMEOUT, Rule.TLP_PROBE, Rule.REORDER_TIMEOUT,
})


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule applied: what it compared and what it changed, values unformatted."""

    rule: Rule
    compared: tuple[tuple[str, object], ...] = ()
    changed: tuple[tuple[str, object, object], ...] = ()


class Explainer:
    """The recorder a Connection names its decisions to (see the module docstring).

    By default it keeps them until take(); with a `sink` it hands each one on at once
    (the live `serve --trace --why` prints them as they happen).
    """

    __slots__ = ("_decisions", "_sink")

    def __init__(self, sink: Callable[[Decision], None] | None = None) -> None:
        self._decisions: list[Decision] = []
        self._sink = sink

    def decide(
        self,
        rule: Rule,
        /,
        changed: dict[str, tuple[object, object]] | None = None,
        **compared: object,
    ) -> None:
        decision = Decision(
            rule,
            tuple(compared.items()),
            () if changed is None else tuple((k, old, new) for k, (old, new) in changed.items()),
        )
        if self._sink is None:
            self._decisions.append(decision)
        else:
            self._sink(decision)

    def take(self) -> list[Decision]:
        """The decisions recorded since the last take(), oldest first."""
        decisions = self._decisions
        self._decisions = []
        return decisions


_RFC_PREFIXES = frozenset(
    {"seg", "snd", "rcv", "max", "iss", "irs", "rto", "srtt", "ts", "last"})


def variable_name(name: str) -> str:
    """A keyword name as the RFC spells it: seg_seq -> SEG.SEQ, max_snd_wnd -> MAX.SND.WND,
    iss -> ISS, rto -> RTO; the project's own names (cwnd, send_q) stay as they are."""
    head = name.split("_", 1)[0]
    return name.upper().replace("_", ".") if head in _RFC_PREFIXES else name

"""A snapshot of one TCB for `userstack ss` and the HTTP app's status page.

Plain data, taken at a moment (`now`), never a live view into the connection. Three
places make one: a Connection (`Connection.info`), a listener (`Listener.info`: LISTEN,
the queues, the configuration) and a TIME-WAIT record (`TimeWaitTable.rows`), which keeps
only what it must answer with: of what the SYNs agreed, its row says `ts` alone (the
rest reads False and 0, as nothing is kept to say otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..wire.addr import Endpoint
from .state import State


class TimerKind(Enum):
    """Named as `ss -o` names them."""

    RETRANSMIT = "on"  # retransmission (SYN, data, FIN)
    PERSIST = "persist"  # zero-window probe
    DELAYED_ACK = "delack"  # delayed acknowledgment (RFC 1122 4.2.3.2)
    KEEPALIVE = "keepalive"
    TIME_WAIT = "timewait"  # 2*MSL


@dataclass(frozen=True, slots=True)
class TcbInfo:
    state: State
    local: Endpoint
    remote: Endpoint
    recv_q: int  # bytes received in order, not yet read by the user
    send_q: int  # bytes the user gave us that the peer has not acknowledged
    timer: TimerKind | None  # the earliest pending timer
    timer_left: float | None  # seconds until it fires
    retransmits: int  # consecutive retransmissions of the current timer (backoff count)
    iss: int
    irs: int | None
    snd_una: int
    snd_nxt: int
    snd_wnd: int  # scaled: in bytes
    rcv_nxt: int | None
    rcv_wnd: int
    mss: int  # effective send MSS
    cwnd: int
    ssthresh: int
    srtt: float | None
    rto: float
    # the last soft ICMP error (RFC 9293 3.9.1 MUST-47): an ErrorReason's text, or None
    soft_error: str | None = None
    # What the SYNs agreed, as Linux's TCP_INFO has it (tcpi_options, `ss -io` prints them:
    # ts sack ecn ecnseen): timestamps (RFC 7323), SACK (RFC 2018), ECN (RFC 3168), and
    # whether an ECN-capable packet (ECT or CE) has arrived since
    ts: bool = False
    sack: bool = False
    ecn: bool = False
    ecn_seen: bool = False
    # the window shifts, Snd.Wind.Shift (the peer's) and Rcv.Wind.Shift (ours): 0 and 0
    # without window scaling (RFC 7323 2.2; `ss -i`: wscale:SND,RCV)
    snd_wscale: int = 0
    rcv_wscale: int = 0
    congestion: str = ""  # the congestion controller (TcpConfig.congestion's value)
    rttvar: float | None = None  # RTTVAR, RFC 6298, in seconds

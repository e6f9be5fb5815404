"""A passive OPEN on a port: the SYN queue and the accept queue.

RFC 9293 leaves the queueing of incoming connections to the implementation. Like
Linux we keep two bounded queues per listener, each with its own limit (RFC 4987 3.1):

- `half_open`, the SYN queue: TCBs in SYN-RECEIVED (our SYN,ACK sent, the handshake not
  complete), at most `syn_backlog`. A flood of spoofed SYNs fills it; a half-open TCB
  gives up after `TcpConfig.synack_retries` (RFC 4987 3.2).
- `accept_queue`: ESTABLISHED TCBs the application has not accepted yet, at most
  `backlog` (the application's listen() argument).

While the accept queue is full a new SYN is dropped (and counted): the peer retransmits
it and gets in once the application catches up. While only the SYN queue is full, the
stack answers with a SYN cookie (stack/syncookies.py) and keeps no state at all; with
cookies off, it recycles the oldest half-open TCB to make room (RFC 4987 3.4). Linux
drops the new SYN instead; but then a trickle of spoofed SYNs, one per
backlog / 63 s, keeps the queue full and every client out, where recycling lets in
each client whose handshake completes before `syn_backlog` more SYNs arrive.
"""

from __future__ import annotations

from collections import deque
from ipaddress import IPv4Address, IPv6Address

from ..tcp.config import TcpConfig
from ..tcp.connection import Connection
from ..tcp.info import TcbInfo
from ..tcp.state import State
from ..wire.addr import Endpoint

# (remote IP as an int, remote port, local port): an int hashes far faster than an address;
# its size tells the family (userstack/stack/addresses.py)
DemuxKey = tuple[int, int, int]

ANY = Endpoint(IPv4Address(0), 0)  # how a LISTEN row shows its unspecified remote end
ANY6 = Endpoint(IPv6Address(0), 0)  # ... in IPv6


DEFAULT_SYN_BACKLOG = 256  # as Linux's tcp_max_syn_backlog on a small host


class Listener:
    def __init__(
        self, local: Endpoint, backlog: int, config: TcpConfig,
        syn_backlog: int = DEFAULT_SYN_BACKLOG,
    ) -> None:
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1, not {backlog}")
        if syn_backlog < 1:
            raise ValueError(f"syn_backlog must be at least 1, not {syn_backlog}")
        self.local = local
        self.backlog = backlog
        self.syn_backlog = syn_backlog
        self.config = config
        self.half_open: dict[DemuxKey, None] = {}  # a set in arrival order: oldest first
        self.accept_queue: deque[Connection] = deque()
        self.cookie_sent_at: float | None = None  # the last SYN cookie this listener sent

    @property
    def syn_queue_full(self) -> bool:
        return len(self.half_open) >= self.syn_backlog

    @property
    def accept_queue_full(self) -> bool:
        return len(self.accept_queue) >= self.backlog

    def info(self) -> TcbInfo:
        """The `ss` row of a listening socket: Recv-Q is the accept queue, Send-Q the backlog."""
        cfg = self.config
        return TcbInfo(
            state=State.LISTEN,
            local=self.local,
            remote=ANY if self.local.ip.version == 4 else ANY6,
            recv_q=len(self.accept_queue),
            send_q=self.backlog,
            timer=None,
            timer_left=None,
            retransmits=0,
            iss=0,
            irs=None,
            snd_una=0,
            snd_nxt=0,
            snd_wnd=0,
            rcv_nxt=None,
            rcv_wnd=cfg.recv_buffer,
            mss=cfg.mss,
            cwnd=0,
            ssthresh=0,
            srtt=None,
            rto=cfg.rto_initial,
            congestion=cfg.congestion.value,
        )

"""A passive OPEN on a port: the backlog of embryonic and completed connections.

RFC 9293 leaves the queueing of incoming connections to the implementation. Like
BSD and Linux we keep two bounded queues per listener:

- `half_open`: TCBs in SYN-RECEIVED (our SYN,ACK sent, the handshake not complete);
- `accept_queue`: ESTABLISHED TCBs the application has not accepted yet.

A new SYN is dropped (and counted) while either queue holds `backlog` entries; the
peer retransmits its SYN and gets in once the application catches up.
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


class Listener:
    def __init__(self, local: Endpoint, backlog: int, config: TcpConfig) -> None:
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1, not {backlog}")
        self.local = local
        self.backlog = backlog
        self.config = config
        self.half_open: set[DemuxKey] = set()
        self.accept_queue: deque[Connection] = deque()

    @property
    def full(self) -> bool:
        return len(self.half_open) >= self.backlog or len(self.accept_queue) >= self.backlog

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
        )

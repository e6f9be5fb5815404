"""What the two SYNs negotiate: MSS, window scaling, SACK-permitted and timestamps.

    RFC 9293 3.7.1   MSS: ours always; the peer's, or 536 (1220 over IPv6) when its SYN
                     has none (MUST-15)
    RFC 7323 2.2-2.3 window scale: used only when both SYNs carry it; a shift above 14
                     is taken as 14; a SYN's own window is never scaled
    RFC 2018 2       SACK-permitted: SACK only when both SYNs carry it
    RFC 3168 6.1.1   ECN: an ECN-setup SYN (ECE, CWR) answered by an ECN-setup SYN,ACK
                     (ECE alone); flags, not options, but negotiated here too (ecn.py)
    RFC 7323 3.2     timestamps: only when both SYNs carry them; then every segment's
                     payload is 12 bytes shorter (Eff.snd.MSS counts the option, 3.7.1)

Our SYN offers what the configuration allows; a SYN,ACK offers window scaling, SACK and
timestamps only if the peer's SYN did. (The TSopt itself, TSval and TSecr, is stamped on
by the connection when the SYN goes out: tcp/timestamps.py.)
"""

from __future__ import annotations

from ..wire.tcp import TcpOptions
from .config import TcpConfig
from .ecn import ECE, agreed, syn_flags
from .rules import Explainer
from .tcb import Tcb
from .timestamps import TSOPT_LEN

DEFAULT_MSS = 536  # RFC 9293 3.7.1: assumed when the peer's SYN carries no MSS option
DEFAULT_MSS_IPV6 = 1220  # the same for IPv6: its minimum MTU 1280 minus 60 (MUST-15)
MAX_WINDOW_SHIFT = 14  # RFC 7323 2.3


def window_shift_for(buffer: int) -> int:
    """The smallest Rcv.Wind.Shift that lets a 16-bit field describe `buffer` bytes."""
    shift = 0
    while (buffer >> shift) > 0xFFFF and shift < MAX_WINDOW_SHIFT:
        shift += 1
    return shift


class SynOptions:
    """One connection's side of the negotiation; see the module docstring."""

    __slots__ = (
        "config", "default_mss", "ecn", "ecn_asked", "our_shift", "sack", "scaling", "timestamps",
    )

    def __init__(self, config: TcpConfig, *, ipv6: bool = False) -> None:
        self.config = config
        self.default_mss = DEFAULT_MSS_IPV6 if ipv6 else DEFAULT_MSS
        self.our_shift = window_shift_for(config.recv_buffer) if config.window_scale else None
        self.scaling = False  # both SYNs carried the window scale option
        self.sack = False  # both SYNs carried SACK-permitted (RFC 2018 2)
        self.ecn_asked = False  # our last SYN was an ECN-setup SYN (RFC 3168 6.1.1)
        self.ecn = False  # both SYNs agreed on ECN
        self.timestamps = False  # both SYNs carried TSopt (RFC 7323 3.2)

    def offer(self, *, reply: bool) -> TcpOptions:
        """The options of our SYN (`reply`: our SYN,ACK to the peer's SYN)."""
        scale = self.our_shift if self.our_shift is not None and (
            self.scaling or not reply) else None
        sack = self.sack if reply else self.config.sack
        return TcpOptions(mss=self.config.mss, window_scale=scale, sack_permitted=sack)

    def take(self, options: TcpOptions, tcb: Tcb) -> int:
        """The peer's SYN: set the window shifts in `tcb`; return Eff.snd.MSS."""
        ours, theirs = self.our_shift, options.window_scale
        self.scaling = ours is not None and theirs is not None
        self.sack = self.config.sack and options.sack_permitted
        self.timestamps = self.config.timestamps and options.timestamps is not None
        if ours is not None and theirs is not None:
            tcb.snd_wscale = min(theirs, MAX_WINDOW_SHIFT)  # RFC 7323 2.3
            tcb.rcv_wscale = ours
        else:
            tcb.snd_wscale = 0
            tcb.rcv_wscale = 0
        peer_mss = options.mss if options.mss else self.default_mss
        options_len = TSOPT_LEN if self.timestamps else 0  # in every segment from now on
        # never below config.min_mss: an MSS of 1 would cut every reply into 1-byte
        # segments (CVE-2019-11479; Linux's tcp_min_snd_mss)
        return max(self.config.min_mss, min(peer_mss, self.config.mss) - options_len)

    def ecn_flags(self, *, reply: bool, again: bool, why: Explainer | None) -> int:
        """ECE and CWR for our SYN (`again`: a retransmission), or ECE for our SYN,ACK
        when the peer's SYN asked and we agreed (RFC 3168 6.1.1; ecn.py)."""
        if reply:
            return ECE if self.ecn else 0
        flags = syn_flags(self.config.ecn, again=again, why=why)
        self.ecn_asked = bool(flags)
        return flags

    def take_ecn(self, flags: int) -> None:
        """The peer's SYN or SYN,ACK: does this connection use ECN?"""
        self.ecn = agreed(self.config.ecn, flags, asked=self.ecn_asked)

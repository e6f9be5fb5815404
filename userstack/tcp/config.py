"""Tunables of one connection, with the RFCs' defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TcpConfig:
    mss: int = 1460  # what we advertise: MTU 1500 - 20 (IP) - 20 (TCP) (RFC 9293 3.7.1)
    recv_buffer: int = 256 * 1024  # bytes we buffer for the reader; the window we offer
    send_buffer: int = 256 * 1024  # bytes send() accepts before it returns 0
    msl: float = 120.0  # Maximum Segment Lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 3.4.2)
    rto_initial: float = 1.0  # RFC 6298 (2.1)
    rto_min: float = 1.0  # RFC 6298 (2.4)
    rto_max: float = 60.0  # RFC 6298 (2.5)
    # SYN / SYN-ACK retransmissions before giving up (R2 for SYN, RFC 1122 4.2.3.5)
    syn_retries: int = 6
    max_retries: int = 15  # data / FIN retransmissions before giving up (R2, RFC 1122 4.2.3.5)
    delayed_ack: float = 0.2  # RFC 1122 4.2.3.2 / RFC 5681 4.2: at most 0.5 s; 0 = ACK at once
    nagle: bool = True  # RFC 9293 3.7.4 (RFC 896)
    window_scale: bool = True  # offer RFC 7323 window scaling in our SYN
    persist_min: float = 1.0  # first zero-window probe; backs off like the RTO up to rto_max
    # idle seconds before keep-alive probes (RFC 1122 4.2.3.6); None = off
    keepalive: float | None = None
    keepalive_interval: float = 75.0  # between unanswered keep-alive probes
    keepalive_probes: int = 9  # unanswered probes before the connection times out

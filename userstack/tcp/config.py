"""Tunables of one connection, with the RFCs' defaults; checked when made.

`TcpConfig.rfc()` is the defaults; `TcpConfig.linux()` makes the RFCs' allowed choices as
Linux makes them (docs/profiles.md has the table, with the clause behind each).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MIN_MSS = 88  # the smallest MSS that still leaves room for data beside 40 bytes of options
MAX_DELAYED_ACK = 0.5  # RFC 1122 4.2.3.2: "the delay MUST be less than 0.5 seconds"


class Congestion(StrEnum):
    """The congestion controllers to choose from (a string works too: "cubic")."""

    NEWRENO = "newreno"  # RFC 5681 slow start and congestion avoidance (congestion.Reno)
    CUBIC = "cubic"  # RFC 9438 with HyStart++, RFC 9406 (cubic.Cubic), Linux's default


class EcnMode(StrEnum):
    """Whether a connection uses ECN (RFC 3168 6.1.1), as Linux's net.ipv4.tcp_ecn."""

    OFF = "off"  # never: a peer's ECN-setup SYN gets a plain SYN,ACK (tcp_ecn=0)
    ACCEPT = "accept"  # agree when the peer's SYN asks, never ask (tcp_ecn=2, the default)
    ON = "on"  # ask in our SYN too (tcp_ecn=1)


class TlpTiming(StrEnum):
    """When a tail loss probe goes out (rack.probe_timeout; docs/profiles.md)."""

    RFC8985 = "rfc8985"  # RFC 8985 7.2: 2*SRTT, + WCDelAckT with one segment out; >= 10 ms
    LINUX = "linux"  # tcp_schedule_loss_probe: 2*SRTT + 2 ms, or + rto_min with one segment out


@dataclass(frozen=True, slots=True)
class TcpConfig:
    mss: int = 1460  # what we advertise: MTU 1500 - 20 (IP) - 20 (TCP) (RFC 9293 3.7.1)
    # The smallest send MSS we accept, from the peer's MSS option or a path MTU: below it
    # a peer could make us cut every reply into tiny segments (CVE-2019-11479); 48 as
    # Linux's tcp_min_snd_mss
    min_mss: int = 48
    recv_buffer: int = 256 * 1024  # bytes we buffer for the reader; the window we offer
    send_buffer: int = 256 * 1024  # bytes send() accepts before it returns 0
    msl: float = 120.0  # Maximum Segment Lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 3.4.2)
    rto_initial: float = 1.0  # RFC 6298 (2.1)
    rto_min: float = 1.0  # RFC 6298 (2.4)
    rto_max: float = 60.0  # RFC 6298 (2.5)
    # SYN / SYN-ACK retransmissions before giving up (R2 for SYN, RFC 1122 4.2.3.5). MUST-23
    # (RFC 9293 3.8.3) wants at least 3 minutes: with the RTO doubling from 1 s to the 60 s
    # cap, the 7th retransmission goes out at 1+2+4+8+16+32+60 = 123 s and the connection
    # gives up 60 s later, at 183 s (Linux's default of 6 gives up at 127 s).
    syn_retries: int = 7
    # SYN,ACK retransmissions of a passive open before the half-open TCB is dropped. Shorter
    # than syn_retries (RFC 4987 3.2: a short SYN-RECEIVED timer frees the SYN queue of a
    # flood's spoofed entries sooner); 5 as Linux's tcp_synack_retries: the 5th goes out at
    # 31 s and the TCB goes at 63 s. MUST-23's three minutes are for our own SYN.
    synack_retries: int = 5
    max_retries: int = 15  # data / FIN retransmissions before giving up (R2, RFC 1122 4.2.3.5)
    # Segments in the first flight (None: RFC 5681 3.1's formula, 3 at MSS 1460); RFC 6928
    # allows 10. After a lost SYN or SYN-ACK it is one segment either way.
    initial_window: int | None = None
    delayed_ack: float = 0.2  # RFC 1122 4.2.3.2 / RFC 5681 4.2: less than 0.5 s; 0 = ACK at once
    # Linux's quick-ACK mode (RFC 5681 4.2 allows it): ACK each of the first data segments
    # at once, up to this many (Linux's TCP_MAX_QUICKACKS is 16), at the start of the
    # connection and again after an idle gap longer than the RTO; 0: off (receiver.py)
    quickack: int = 0
    nagle: bool = True  # RFC 9293 3.7.4 (RFC 896)
    window_scale: bool = True  # offer RFC 7323 window scaling in our SYN
    sack: bool = True  # offer SACK (RFC 2018); recovery by RACK-TLP (RFC 8985) when agreed
    # offer RFC 7323 timestamps (RTTM, PAWS) in our SYN, as Linux does; used if both SYNs
    # carry them (tcp/timestamps.py)
    timestamps: bool = True
    congestion: Congestion = Congestion.NEWRENO  # the congestion controller
    # ECN (RFC 3168): agree when the peer asks, as Linux does by default (docs/congestion.md
    # says why not ask: an ECN-setup SYN can meet a middlebox that drops it, RFC 3168 6.1.1.1)
    ecn: EcnMode = EcnMode.ACCEPT
    tlp_timing: TlpTiming = TlpTiming.RFC8985  # the tail loss probe's timeout (rack.py)
    # RFC 5961 7: at most this many challenge ACKs per second per connection (None: no
    # limit), so forged segments cannot turn us into an ACK generator
    challenge_ack_limit: int | None = 10
    persist_min: float = 1.0  # first zero-window probe; backs off like the RTO up to rto_max
    # Keep-alives (RFC 9293 3.8.4, RFC 1122 4.2.3.6): off unless turned on (MUST-24, MUST-25;
    # Connection.set_keepalive switches them later). The first probe follows keepalive_idle
    # seconds with nothing received, two hours by default (MUST-27, MUST-28); the connection
    # is dropped only after keepalive_probes probes go unanswered, never one (MUST-29).
    keepalive: bool = False
    keepalive_idle: float = 7200.0
    keepalive_interval: float = 75.0  # between unanswered keep-alive probes
    keepalive_probes: int = 9
    # FIN-WAIT-2 after the application closed completely (not a half-close): give up on the
    # peer's FIN after this long (Linux's tcp_fin_timeout). RFC 9293 does not ask for it, but
    # a peer that never closes would otherwise pin the TCB forever. None = wait forever.
    fin_wait_2_timeout: float | None = 60.0
    # TCP_USER_TIMEOUT (RFC 5482, RFC 9293 3.8.3 MUST-20): give up on the connection when
    # data stays unacknowledged this many seconds, whatever max_retries says. None: off.
    user_timeout: float | None = None
    # The IPv4 header of this connection's packets: the TTL (RFC 9293 3.9.2 MUST-49; 64 as
    # Linux) and the TOS byte, DiffServ codepoint << 2 (RFC 2474; MUST-48). The ECN bits
    # (the low two, RFC 3168) are not the application's: the connection sets them (`ecn`).
    ttl: int = 64
    tos: int = 0
    # Header prediction (tcp/fast_path.py): pure ACKs and in-order data in ESTABLISHED skip
    # the general SEGMENT ARRIVES steps, with the same result; False runs every segment
    # through the eight steps (the fast path's tests compare the two)
    header_prediction: bool = True

    @classmethod
    def rfc(cls) -> TcpConfig:
        """The conservative values the RFCs name: the defaults (docs/profiles.md)."""
        return cls()

    @classmethod
    def linux(cls) -> TcpConfig:
        """Linux's choices where the RFCs allow them (docs/profiles.md): IW10 (RFC 6928),
        RTO minimum 200 ms and maximum 120 s (RFC 6298 2.4, 2.5), delayed ACK 40 ms with
        quick-ACKs at the start and after idle, Linux's tail loss probe timing,
        TIME-WAIT 60 s, and 6 SYN retries (127 s: short of RFC 9293's MUST-23, as Linux)."""
        return cls(
            initial_window=10,
            rto_min=0.2,
            rto_max=120.0,
            delayed_ack=0.04,
            quickack=16,
            tlp_timing=TlpTiming.LINUX,
            syn_retries=6,
            msl=30.0,
        )

    def initial_window_bytes(self, mss: int) -> int | None:
        """The first flight in bytes for `mss`, or None for RFC 5681 3.1's formula."""
        return None if self.initial_window is None else self.initial_window * mss

    def _choose(self, name: str, choices: type[StrEnum]) -> None:
        """A field given as a string (`congestion="cubic"`) becomes its enum member."""
        value = getattr(self, name)
        try:
            object.__setattr__(self, name, choices(value))
        except ValueError:
            names = ", ".join(c.value for c in choices)
            raise ValueError(f"{name} must be one of {names}, not {value!r}") from None

    def __post_init__(self) -> None:
        """Refuse settings that break an RFC rule or cannot work, with the reason."""
        self._choose("congestion", Congestion)
        self._choose("ecn", EcnMode)
        self._choose("tlp_timing", TlpTiming)
        if self.quickack < 0:
            raise ValueError(f"quickack must not be negative, not {self.quickack}")
        if self.mss < MIN_MSS or self.mss > 0xFFFF:
            raise ValueError(f"mss must be in {MIN_MSS}..65535, not {self.mss}")
        if not 1 <= self.min_mss <= self.mss:
            raise ValueError(f"min_mss must be in 1..mss ({self.mss}), not {self.min_mss}")
        for name in ("recv_buffer", "send_buffer"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if not 0 <= self.delayed_ack < MAX_DELAYED_ACK:
            raise ValueError(
                f"delayed_ack must be at least 0 and less than {MAX_DELAYED_ACK} s "
                f"(RFC 1122 4.2.3.2), not {self.delayed_ack}"
            )
        if not 0 < self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError(
                "need 0 < rto_min <= rto_initial <= rto_max, not "
                f"{self.rto_min}, {self.rto_initial}, {self.rto_max}"
            )
        if self.challenge_ack_limit is not None and self.challenge_ack_limit < 1:
            raise ValueError(
                "challenge_ack_limit must be at least 1 or None: challenge ACKs are a MUST "
                f"(RFC 5961 3.2, 4.2, 5.2), not {self.challenge_ack_limit}"
            )
        for name in ("msl", "persist_min", "keepalive_idle", "keepalive_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("syn_retries", "synack_retries", "max_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.keepalive_probes < 2:
            raise ValueError(
                "keepalive_probes must be at least 2: one unanswered probe is no proof of a "
                f"dead connection (RFC 9293 3.8.4, MUST-29), not {self.keepalive_probes}"
            )
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"ttl must be in 1..255, not {self.ttl}")
        if not 0 <= self.tos <= 255 or self.tos & 0x3:
            raise ValueError(
                "tos must be a DiffServ codepoint << 2, 0..252, with the ECN bits clear "
                f"(RFC 2474, RFC 3168), not {self.tos}"
            )
        if self.initial_window is not None and not 1 <= self.initial_window <= 10:
            raise ValueError(
                "initial_window must be 1..10 segments (RFC 6928 2) or None, not "
                f"{self.initial_window}"
            )
        if self.user_timeout is not None and self.user_timeout <= 0:
            raise ValueError(f"user_timeout must be positive or None, not {self.user_timeout}")
        if self.fin_wait_2_timeout is not None and self.fin_wait_2_timeout <= 0:
            raise ValueError(
                f"fin_wait_2_timeout must be positive or None, not {self.fin_wait_2_timeout}"
            )

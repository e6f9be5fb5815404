"""Socket options as socket(7), tcp(7) and ip(7) define them, mapped onto TcpConfig.

A socket keeps its options in `SocketOptions`. Before listen/connect they become the
TcpConfig of the connection (`to_config`); on an open connection the ones the core can
change as it goes are applied through the ConnectionHandle (TCP_NODELAY, SO_KEEPALIVE,
the keep-alive timing, TCP_USER_TIMEOUT, IP_TOS, IP_TTL). The buffer sizes and
TCP_MAXSEG are fixed when the connection opens; tcp(7) says to set them before listen
or connect, and so does this stack (a later setsockopt is stored and read back).
TCP_CONGESTION takes the controller's name as bytes, as Linux does (b"cubic", b"reno";
b"newreno" too, this stack's name for its Reno), and only before listen or connect: the
controller is chosen when the connection opens (Linux also switches an open one; here
that is EISCONN rather than a setting that silently does nothing). An unknown name is
ENOENT, as Linux answers for a module it does not have.

Timestamps (RFC 7323) and ECN (RFC 3168) have no socket option, as on Linux, where they
are the namespace's sysctls (net.ipv4.tcp_timestamps, net.ipv4.tcp_ecn) and no
setsockopt turns them off for one socket (its TCP_TIMESTAMP only moves the clock, in
repair mode): here they are the stack's, `TcpConfig(timestamps=..., ecn=...)` of the
UserStack every socket's config starts from (`userstack serve --no-timestamps`, `--ecn`).
TCP_INFO says what a connection's SYNs agreed (`TcbInfo.ts`, `.ecn`).

SO_RCVBUF and SO_SNDBUF behave as on Linux: setting N gives a buffer of N bytes of
data, and getsockopt reports 2N ("the kernel doubles this value to allow space for
bookkeeping overhead", socket(7)).
"""

from __future__ import annotations

import dataclasses
import errno
import socket
import struct
from dataclasses import dataclass
from enum import Enum

from ..tcp.config import MIN_MSS, Congestion, TcpConfig
from .errors import os_error

SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP = socket.SOL_SOCKET, socket.IPPROTO_TCP, socket.IPPROTO_IP
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)
TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
TCP_CA_NAME_MAX = 16  # Linux: the longest congestion control name, NUL included
# what setsockopt(TCP_CONGESTION) takes, and (the first of each) what getsockopt reports
CONGESTION_NAMES = {b"reno": Congestion.NEWRENO, b"newreno": Congestion.NEWRENO,
                    b"cubic": Congestion.CUBIC}
LINUX_NAMES = {Congestion.NEWRENO: b"reno", Congestion.CUBIC: b"cubic"}
MIN_BUFFER = 2048  # Linux's SOCK_MIN_RCVBUF, about: smaller makes no sense for TCP
MAX_KEEP = 32767  # Linux's MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL (seconds)
MAX_KEEPCNT = 127  # Linux's MAX_TCP_KEEPCNT


class Option(Enum):
    """Every option this socket knows, by (level, optname)."""

    SO_ERROR = (SOL_SOCKET, socket.SO_ERROR)
    SO_TYPE = (SOL_SOCKET, socket.SO_TYPE)
    SO_DOMAIN = (SOL_SOCKET, socket.SO_DOMAIN)
    SO_PROTOCOL = (SOL_SOCKET, socket.SO_PROTOCOL)
    SO_ACCEPTCONN = (SOL_SOCKET, socket.SO_ACCEPTCONN)
    SO_REUSEADDR = (SOL_SOCKET, socket.SO_REUSEADDR)
    SO_KEEPALIVE = (SOL_SOCKET, socket.SO_KEEPALIVE)
    SO_LINGER = (SOL_SOCKET, socket.SO_LINGER)
    SO_RCVBUF = (SOL_SOCKET, socket.SO_RCVBUF)
    SO_SNDBUF = (SOL_SOCKET, socket.SO_SNDBUF)
    TCP_NODELAY = (IPPROTO_TCP, socket.TCP_NODELAY)
    TCP_MAXSEG = (IPPROTO_TCP, socket.TCP_MAXSEG)
    TCP_KEEPIDLE = (IPPROTO_TCP, socket.TCP_KEEPIDLE)
    TCP_KEEPINTVL = (IPPROTO_TCP, socket.TCP_KEEPINTVL)
    TCP_KEEPCNT = (IPPROTO_TCP, socket.TCP_KEEPCNT)
    TCP_USER_TIMEOUT = (IPPROTO_TCP, TCP_USER_TIMEOUT)
    TCP_INFO = (IPPROTO_TCP, TCP_INFO)
    TCP_CONGESTION = (IPPROTO_TCP, TCP_CONGESTION)
    IP_TOS = (IPPROTO_IP, socket.IP_TOS)
    IP_TTL = (IPPROTO_IP, socket.IP_TTL)
    # An AF_INET6 socket serves IPv6 alone whatever this says (no IPv4-mapped addresses):
    # the stack keeps a listener per family, as IPV6_V6ONLY=1 does (trio sets it)
    IPV6_V6ONLY = (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)

    @classmethod
    def of(cls, level: int, optname: int) -> Option:
        """The option, or OSError(ENOPROTOOPT) as the kernel answers an unknown one."""
        try:
            return _BY_NUMBER[(level, optname)]
        except KeyError:
            raise os_error(
                errno.ENOPROTOOPT, f"option {optname} at level {level}: not in the userstack"
            ) from None


_BY_NUMBER = {option.value: option for option in Option}
READ_ONLY = frozenset(
    {
        Option.SO_ERROR, Option.SO_TYPE, Option.SO_DOMAIN, Option.SO_PROTOCOL,
        Option.SO_ACCEPTCONN, Option.TCP_INFO,
    }
)


@dataclass(slots=True)
class SocketOptions:
    """One socket's settable options; None: the stack's TcpConfig decides."""

    reuseaddr: bool = False
    keepalive: bool | None = None
    linger: tuple[bool, int] = (False, 0)  # (l_onoff, l_linger seconds)
    rcvbuf: int | None = None
    sndbuf: int | None = None
    nodelay: bool | None = None
    maxseg: int | None = None
    keepidle: int | None = None  # seconds
    keepintvl: int | None = None
    keepcnt: int | None = None
    user_timeout_ms: int = 0  # 0: off (RFC 5482's default: the system's)
    tos: int | None = None
    ttl: int | None = None
    v6only: bool = False
    congestion: Congestion | None = None

    def copy(self) -> SocketOptions:
        return dataclasses.replace(self)

    def to_config(self, base: TcpConfig) -> TcpConfig:
        """The connection's TcpConfig: `base` with this socket's options over it."""
        changes: dict[str, object] = {}
        if self.rcvbuf is not None:
            changes["recv_buffer"] = self.rcvbuf
        if self.sndbuf is not None:
            changes["send_buffer"] = self.sndbuf
        if self.nodelay is not None:
            changes["nagle"] = not self.nodelay
        if self.keepalive is not None:
            changes["keepalive"] = self.keepalive
        if self.maxseg is not None:
            changes["mss"] = self.maxseg
        if self.congestion is not None:
            changes["congestion"] = self.congestion
        changes.update(self.live_changes())
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def live_changes(self) -> dict[str, object]:
        """The TcpConfig fields an open connection takes at once (ConnectionHandle.retune)."""
        changes: dict[str, object] = {}
        if self.keepidle is not None:
            changes["keepalive_idle"] = float(self.keepidle)
        if self.keepintvl is not None:
            changes["keepalive_interval"] = float(self.keepintvl)
        if self.keepcnt is not None:
            changes["keepalive_probes"] = self.keepcnt
        if self.user_timeout_ms:
            changes["user_timeout"] = self.user_timeout_ms / 1000
        if self.ttl is not None:
            changes["ttl"] = self.ttl
        return changes


def int_value(option: Option, value: int | bytes | bytearray | memoryview) -> int:
    """setsockopt's value as the int the kernel reads from it."""
    if isinstance(value, int):
        return int(value)
    raw = bytes(value)
    if len(raw) < 4:
        raise os_error(errno.EINVAL, f"{option.name}: need 4 bytes, got {len(raw)}")
    return struct.unpack("i", raw[:4])[0]


def in_range(option: Option, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise os_error(errno.EINVAL, f"{option.name} must be in {low}..{high}, not {value}")
    return value


def linger_value(value: int | bytes | bytearray | memoryview) -> tuple[bool, int]:
    """SO_LINGER's struct linger {int l_onoff; int l_linger;}."""
    if isinstance(value, int) or len(value) < 8:
        raise os_error(errno.EINVAL, "SO_LINGER takes struct linger: struct.pack('ii', on, secs)")
    onoff, seconds = struct.unpack("ii", bytes(value)[:8])
    return bool(onoff), max(0, seconds)


def congestion_value(value: int | bytes | bytearray | memoryview) -> Congestion:
    """TCP_CONGESTION's name (NUL-terminated or not) as the controller it names."""
    if isinstance(value, int):
        raise os_error(errno.EINVAL, "TCP_CONGESTION takes a name as bytes, e.g. b'cubic'")
    name = bytes(value).split(b"\0", 1)[0]
    try:
        return CONGESTION_NAMES[name]
    except KeyError:
        known = ", ".join(n.decode() for n in CONGESTION_NAMES)
        raise os_error(errno.ENOENT, f"TCP_CONGESTION {name!r}: not one of {known}") from None


def congestion_name(congestion: Congestion, buflen: int | None) -> bytes | int:
    """getsockopt(TCP_CONGESTION): the name, NUL-padded to `buflen` (at most 16 bytes), as
    Linux copies it; without `buflen`, its first four bytes as an int, as Python reads an
    option into an int."""
    name = LINUX_NAMES[congestion].ljust(TCP_CA_NAME_MAX, b"\0")
    if buflen:
        return name[: min(buflen, TCP_CA_NAME_MAX)]
    return int(struct.unpack("i", name[:4])[0])


def set_option(options: SocketOptions, option: Option, value: int | bytes) -> None:
    """Store one option, checked as Linux checks it."""
    if option in READ_ONLY:
        raise os_error(errno.ENOPROTOOPT, f"{option.name} is read-only")
    if option is Option.SO_LINGER:
        options.linger = linger_value(value)
        return
    if option is Option.TCP_CONGESTION:
        options.congestion = congestion_value(value)
        return
    n = int_value(option, value)
    match option:
        case Option.SO_REUSEADDR:
            options.reuseaddr = bool(n)
        case Option.SO_KEEPALIVE:
            options.keepalive = bool(n)
        case Option.SO_RCVBUF:
            options.rcvbuf = max(MIN_BUFFER, n)
        case Option.SO_SNDBUF:
            options.sndbuf = max(MIN_BUFFER, n)
        case Option.TCP_NODELAY:
            options.nodelay = bool(n)
        case Option.TCP_MAXSEG:
            options.maxseg = in_range(option, n, MIN_MSS, 0xFFFF)
        case Option.TCP_KEEPIDLE:
            options.keepidle = in_range(option, n, 1, MAX_KEEP)
        case Option.TCP_KEEPINTVL:
            options.keepintvl = in_range(option, n, 1, MAX_KEEP)
        case Option.TCP_KEEPCNT:
            # Linux allows 1; one unanswered probe is no proof of a dead peer (MUST-29)
            options.keepcnt = in_range(option, n, 2, MAX_KEEPCNT)
        case Option.TCP_USER_TIMEOUT:
            options.user_timeout_ms = in_range(option, n, 0, 2**31 - 1)
        case Option.IP_TOS:
            if n & 0x3:  # the ECN bits are not the application's (RFC 3168)
                n &= ~0x3
            options.tos = in_range(option, n, 0, 252)
        case Option.IP_TTL:
            options.ttl = 64 if n == -1 else in_range(option, n, 1, 255)
        case Option.IPV6_V6ONLY:
            options.v6only = bool(n)


def stored_value(options: SocketOptions, config: TcpConfig, option: Option) -> int:
    """What getsockopt reports for a settable option (`config`: the connection's, or the
    one it would get)."""
    match option:
        case Option.SO_REUSEADDR:
            return int(options.reuseaddr)
        case Option.SO_KEEPALIVE:
            return int(config.keepalive if options.keepalive is None else options.keepalive)
        case Option.SO_RCVBUF:
            return 2 * (options.rcvbuf or config.recv_buffer)
        case Option.SO_SNDBUF:
            return 2 * (options.sndbuf or config.send_buffer)
        case Option.TCP_NODELAY:
            return int(not config.nagle if options.nodelay is None else options.nodelay)
        case Option.TCP_KEEPIDLE:
            return options.keepidle or round(config.keepalive_idle)
        case Option.TCP_KEEPINTVL:
            return options.keepintvl or round(config.keepalive_interval)
        case Option.TCP_KEEPCNT:
            return options.keepcnt or config.keepalive_probes
        case Option.TCP_USER_TIMEOUT:
            return options.user_timeout_ms
        case Option.IP_TOS:
            return config.tos if options.tos is None else options.tos
        case Option.IP_TTL:
            return config.ttl if options.ttl is None else options.ttl
        case Option.TCP_MAXSEG:
            return options.maxseg or config.mss
        case Option.IPV6_V6ONLY:
            return int(options.v6only)
    raise AssertionError(option)  # pragma: no cover - every settable option is above


def as_bytes(value: int, buflen: int) -> bytes:
    """getsockopt(level, name, buflen): the int as the kernel writes it."""
    return struct.pack("i", value)[:buflen]

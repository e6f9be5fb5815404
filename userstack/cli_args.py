"""What a user typed, checked before anything is created: one line per mistake, naming
what is valid, and never a traceback.

Two kinds of check live here:

- argparse types (`port`, `probability`, `mtu`, ...), whose ArgumentTypeError argparse
  prints as `userstack serve: error: argument --mtu: ...` (exit status 2);
- `choose_link`, which settles the TUN device, the kernel's address and the stack's
  address against this network namespace: a TUN name already taken, a subnet already
  routed, an address outside its subnet. `serve` refuses them with a hint that names a
  free device and subnet; `connect` takes that free device and subnet itself for
  whatever the user did not give, so it runs beside a `serve` with no flags.

The namespace is read without leaving it: interface names by if_nameindex(3) (netlink
in the calling thread's namespace; /sys/class/net would show the namespace sysfs was
mounted in), IPv4 routes from /proc/thread-self/net/route (the main table).
"""

from __future__ import annotations

import argparse
import math
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface
from pathlib import Path

from .tcp.config import MIN_MSS

IPV4_MIN_MTU = 68  # RFC 791: every IPv4 module must take a 68-octet datagram whole
TUN_MAX_MTU = 65535  # Linux's tun driver (max_mtu = MAX_MTU); 65536 is EINVAL
HEADERS = 40  # IPv4 + TCP without options: the MSS we offer is MTU - 40 (MUST-67)
MIN_MTU = max(IPV4_MIN_MTU, MIN_MSS + HEADERS)  # our own MSS may not go below MIN_MSS
IFNAMSIZ = 16  # a Linux interface name is at most 15 bytes and a NUL
UNIX_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with its NUL
_ROUTES = Path("/proc/thread-self/net/route")
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def _number(text: str, kind: Callable[[str], float], what: str) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def probability(text: str) -> float:
    value = _number(text, float, "a probability in [0, 1]")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def port(text: str) -> int:
    value = int(_number(text, int, "a TCP port (1-65535)"))
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (1-65535)")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds."""
    value = _number(text, float, "a number of seconds (> 0)")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (> 0)")
    return value


def milliseconds(text: str) -> float:
    """A delay: zero or more milliseconds."""
    value = _number(text, float, "a delay in milliseconds (>= 0)")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text} is not a delay in milliseconds (>= 0)")
    return value


def seed(text: str) -> int:
    return int(_number(text, int, "an integer seed"))


def queue_count(text: str) -> int:
    value = int(_number(text, int, "a number of queues (1-64)"))
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text} is not a number of queues (1-64)")
    return value


def mtu(text: str) -> int:
    value = int(_number(text, int, f"an MTU ({MIN_MTU}-{TUN_MAX_MTU})"))
    if not MIN_MTU <= value <= TUN_MAX_MTU:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range {MIN_MTU}-{TUN_MAX_MTU}: IPv4 needs {IPV4_MIN_MTU} "
            f"(RFC 791), our MSS (MTU - {HEADERS}) at least {MIN_MSS}, and a TUN takes at "
            f"most {TUN_MAX_MTU}"
        )
    return value


def ipv4_address(text: str) -> IPv4Address:
    try:
        return IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv4 address (like 10.0.0.2)") from None


def ipv4_interface(text: str) -> IPv4Interface:
    """The kernel's side of the TUN: an address with the subnet routed into it."""
    if "/" not in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a prefix length: the kernel's address and the subnet routed "
            "to the stack, like 10.0.0.1/24")
    try:
        interface = IPv4Interface(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv4 address with a prefix (like 10.0.0.1/24)") from None
    if interface.network.prefixlen > 31:
        raise argparse.ArgumentTypeError(
            f"{text} leaves no address for the stack: the prefix must be /0 to /31")
    return interface


def ipv6_address(text: str) -> IPv6Address:
    try:
        return IPv6Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv6 address (like fd00::2)") from None


def ip_address(text: str) -> IPv4Address | IPv6Address:
    """A peer of either family (`connect`)."""
    try:
        return ipv4_address(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        return IPv6Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv4 or IPv6 address (like 10.0.0.1 or fd00::1)") from None


def ipv6_interface(text: str) -> IPv6Interface:
    """The kernel's IPv6 side of the TUN, with the prefix routed to the stack."""
    if "/" not in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a prefix length, like fd00::1/64")
    try:
        interface = IPv6Interface(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IPv6 address with a prefix (like fd00::1/64)") from None
    if interface.network.prefixlen > 127:
        raise argparse.ArgumentTypeError(
            f"{text} leaves no address for the stack: the prefix must be /0 to /127")
    return interface


IPV6_MIN_MTU = 1280  # RFC 8200 5


def check_ipv6(addr6: IPv6Address | None, host_addr6: IPv6Interface | None, mtu: int) -> None:
    """--addr6 and --host-addr6 go together, the stack's address in the kernel's subnet,
    and IPv6 needs an MTU of at least 1280; LinkError (one line) otherwise."""
    if addr6 is None and host_addr6 is None:
        return
    if addr6 is None or host_addr6 is None:
        raise LinkError("userstack: --addr6 and --host-addr6 go together")
    if addr6 not in host_addr6.network or addr6 == host_addr6.ip:
        raise LinkError(f"userstack: --addr6 {addr6} must be another address of "
                        f"--host-addr6's subnet {host_addr6.network}")
    if mtu < IPV6_MIN_MTU:
        raise LinkError(f"userstack: IPv6 needs --mtu {IPV6_MIN_MTU} or more (RFC 8200 5), "
                        f"not {mtu}")


def control_socket(text: str) -> Path:
    """A Unix socket path: the kernel takes at most 107 bytes (sun_path)."""
    if not text or len(text.encode()) > UNIX_PATH_MAX:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Unix socket path of 1 to {UNIX_PATH_MAX} bytes")
    return Path(text)


def tun_name(text: str) -> str:
    """A Linux interface name, as the kernel checks it (dev_valid_name), given in full."""
    bad = [ch for ch in text if ch in "/:%" or ch.isspace()]
    if not text or len(text.encode()) >= IFNAMSIZ or text in (".", "..") or bad:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TUN name: 1 to {IFNAMSIZ - 1} bytes, without '/', ':', '%' "
            "or spaces (like us1)")
    return text


# ---- the namespace: interfaces and routes -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    network: IPv4Network
    device: str

    def __str__(self) -> str:
        return f"{self.network} dev {self.device}"


def interfaces() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def routes() -> list[Route]:
    """The main IPv4 routing table of this thread's namespace."""
    try:
        lines = _ROUTES.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        cols = line.split()
        dest = IPv4Address(int(cols[1], 16).to_bytes(4, "little"))
        mask = IPv4Address(int(cols[7], 16).to_bytes(4, "little"))
        out.append(Route(IPv4Network(f"{dest}/{mask}", strict=False), cols[0]))
    return out


def conflicting_route(network: IPv4Network, table: list[Route]) -> Route | None:
    """A route that overlaps `network` (a default route does not count: ours is more
    specific); the kernel would send some of the subnet's traffic elsewhere, or ours there."""
    for route in table:
        if route.network.prefixlen and route.network.overlaps(network):
            return route
    return None


# ---- choosing the TUN and its subnet --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkChoice:
    tun: str
    host_addr: IPv4Interface
    addr: IPv4Address

    @property
    def flags(self) -> str:
        return f"--tun {self.tun} --host-addr {self.host_addr} --addr {self.addr}"


DEFAULT_LINK = LinkChoice("us0", IPv4Interface("10.0.0.1/24"), IPv4Address("10.0.0.2"))


def _candidates() -> Iterator[LinkChoice]:
    for n in range(256):
        yield LinkChoice(f"us{n}", IPv4Interface(f"10.0.{n}.1/24"), IPv4Address(f"10.0.{n}.2"))


def _stack_address(host: IPv4Interface) -> IPv4Address:
    """The first address of the subnet that is not the kernel's."""
    return next(a for a in host.network.hosts() if a != host.ip)


class LinkError(SystemExit):
    """A bad TUN, address or subnet: the one-line message is the exit status, as SystemExit."""


def choose_link(
    tun: str | None,
    host_addr: IPv4Interface | None,
    addr: IPv4Address | None,
    *,
    pick_free: bool,
) -> LinkChoice:
    """The TUN, the kernel's address and the stack's, checked against this namespace.

    What the user did not give comes from DEFAULT_LINK, or, with `pick_free`, from the
    first usN / 10.0.N.0/24 whose name is free and whose subnet is not routed.
    """
    names, table = interfaces(), routes()

    def free(choice: LinkChoice) -> bool:
        return ((tun is not None or choice.tun not in names)
                and (host_addr is not None or conflicting_route(choice.host_addr.network,
                                                                table) is None))

    base = DEFAULT_LINK
    if pick_free:
        base = next((c for c in _candidates() if free(c)), DEFAULT_LINK)
    host = host_addr or base.host_addr
    choice = LinkChoice(tun or base.tun, host,
                        addr or (base.addr if host_addr is None else _stack_address(host)))
    _check(choice, names, table)
    return choice


def hint() -> str:
    """Flags for a free device and subnet: what to run instead."""
    names, table = interfaces(), routes()
    for c in _candidates():
        if c.tun not in names and conflicting_route(c.host_addr.network, table) is None:
            return f"try {c.flags}"
    return "free a TUN and a subnet first (ip link, ip route)"


def _check(choice: LinkChoice, names: set[str], table: list[Route]) -> None:
    network, addr = choice.host_addr.network, choice.addr
    if addr not in network or addr == choice.host_addr.ip or (
        network.prefixlen < 31 and addr in (network.network_address, network.broadcast_address)
    ):
        first, last = (network[0], network[-1]) if network.prefixlen >= 31 else (
            network[1], network[-2])
        raise LinkError(
            f"userstack: --addr {addr} must be a host of {network} ({first}-{last}) other "
            f"than the kernel's {choice.host_addr.ip}")
    if choice.tun in names:
        raise LinkError(
            f"userstack: a network device named {choice.tun} exists already (another "
            f"userstack?); {hint()}")
    route = conflicting_route(network, table)
    if route is not None:
        raise LinkError(
            f"userstack: {network} is already routed ({route}), so the stack behind "
            f"{choice.tun} could not be reached; {hint()}")


def _is_local(address: IPv4Address) -> bool:
    """Whether the kernel here owns `address` (a bind to it succeeds; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def forwarding_note(host: IPv4Address, choice: LinkChoice) -> str | None:
    """A warning when `host` sits behind another device (another userstack's TUN, say)
    and the kernel does not forward: it answers for its own addresses only."""
    if host in choice.host_addr.network:
        return None
    route = next((r for r in routes() if r.network.prefixlen and host in r.network), None)
    try:
        forwarding = _IP_FORWARD.read_text().strip() == "1"
    except OSError:
        forwarding = False
    if route is None or forwarding or _is_local(host):
        return None
    return (f"{host} is behind {route.device} ({route}), not this kernel: it reaches "
            "there only if the kernel forwards (sysctl -w net.ipv4.ip_forward=1)")

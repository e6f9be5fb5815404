"""The host's own addresses, one per family, and what counts as "one host" in each.

A stack holds an IPv4 address, an IPv6 address, or both. On the hot path addresses are
ints, and the demux table keys a connection by its remote address as an int: an IPv4
address is below 2**32, and every IPv6 address a peer may use is at least 2**48,
because ``::/80`` holds only addresses no peer may send from (the unspecified address,
loopback, the deprecated IPv4-compatible and the IPv4-mapped ones: RFC 4291 2.5.2,
2.5.3, 2.5.5; a mapped address never appears on the wire, RFC 4038 4.2). So one int
says both the address and its family (`is_ipv6`), and no two keys of different
families collide.

The flow label of each IPv6 connection (RFC 6437 3) is a keyed hash of its addresses
and ports: the same for every packet of the connection, different between connections,
and unguessable from outside (RFC 6437 6, RFC 7098).
"""

from __future__ import annotations

import errno
import hashlib
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_interface

IPAddress = IPv4Address | IPv6Address
_IPV4_END = 1 << 32
_RESERVED_IPV6_END = 1 << 48  # ::/80
_LIMITED_BROADCAST = 0xFFFFFFFF  # 255.255.255.255
_MULTICAST, _MULTICAST_MASK = 0xE0000000, 0xF0000000  # 224.0.0.0/4
_FLOW_LABEL_CACHE = 4096  # entries kept before the cache starts over


def is_ipv6(address: int) -> bool:
    """Whether a demux-table address (an int) is IPv6; see the module docstring."""
    return address >= _IPV4_END


def address_of(address: int) -> IPAddress:
    """The address object for a demux-table int."""
    return IPv6Address(address) if address >= _IPV4_END else IPv4Address(address)


class HostAddresses:
    """The stack's IPv4 and IPv6 addresses (either may be None, not both)."""

    def __init__(
        self,
        address: IPv4Address | IPv6Address | IPv4Interface | IPv6Interface | str | None,
        address6: IPv6Address | IPv6Interface | str | None = None,
    ) -> None:
        """`address` may be of either family (a string is parsed: "fd00::2" is IPv6);
        `address6` only IPv6. Either may carry a prefix ("10.0.0.2/24"): then the IPv4
        subnet's broadcast address is known, and treated like any broadcast address."""
        v4: IPv4Interface | None = None
        v6: IPv6Interface | None = None
        for given in (address, address6):
            if given is None:
                continue
            interface = ip_interface(given)
            if isinstance(interface, IPv4Interface) and given is address and v4 is None:
                v4 = interface
            elif isinstance(interface, IPv6Interface) and v6 is None:
                v6 = interface
            else:
                raise ValueError(f"two addresses of one family, or an IPv4 address6: {given}")
        if v4 is None and v6 is None:
            raise ValueError("a stack needs an IPv4 address, an IPv6 address, or both")
        self.ipv4: IPv4Address | None = v4.ip if v4 else None
        self.ipv6: IPv6Address | None = v6.ip if v6 else None
        self.v4 = int(v4.ip) if v4 else -1  # as ints, for the hot path; -1: none
        self.v6 = int(v6.ip) if v6 else -1
        self._broadcasts = {_LIMITED_BROADCAST}
        if v4 is not None and v4.network.prefixlen < 31:  # /31, /32: no broadcast (RFC 3021)
            self._broadcasts.add(int(v4.network.broadcast_address))

    @property
    def primary(self) -> IPAddress:
        """The IPv4 address if there is one, else the IPv6 one."""
        address = self.ipv4 or self.ipv6
        assert address is not None
        return address

    @property
    def all(self) -> list[IPAddress]:
        return [a for a in (self.ipv4, self.ipv6) if a is not None]

    def local_for(self, remote: IPAddress) -> IPAddress:
        """Our address in `remote`'s family; OSError(ENETUNREACH) if we have none, as
        connect(2) says for a family with no route."""
        local = self.ipv6 if remote.version == 6 else self.ipv4
        if local is None:
            raise OSError(
                errno.ENETUNREACH,
                f"cannot reach {remote}: this stack has no IPv{remote.version} address",
            )
        return local

    def is_one_host(self, address: int) -> bool:
        """Whether `address` (a demux int) names a single host a peer may speak TCP from
        or to: not broadcast, multicast or 0.0.0.0 (RFC 1122 3.2.1.3); in IPv6 not
        multicast (ff00::/8) and not in ::/80 (see the module docstring)."""
        if address >= _IPV4_END:
            return is_one_host6(address)
        return not (
            address & _MULTICAST_MASK == _MULTICAST or address in self._broadcasts or not address
        )


def is_one_host6(address: int) -> bool:
    """`is_one_host` for an address known to be IPv6 (however small its value)."""
    return address >= _RESERVED_IPV6_END and address >> 120 != 0xFF


class FlowLabels:
    """RFC 6437 3: a per-connection flow label from a keyed hash of the four-tuple."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2s(key, person=b"rfc6437").digest()
        self._labels: dict[tuple[int, int, int, int], int] = {}

    def label(self, local: int, local_port: int, remote: int, remote_port: int) -> int:
        four_tuple = (local, local_port, remote, remote_port)
        label = self._labels.get(four_tuple)
        if label is None:
            if len(self._labels) >= _FLOW_LABEL_CACHE:
                self._labels.clear()  # the labels are a pure function: recomputed later
            data = b"".join(
                (
                    local.to_bytes(16, "big"),
                    local_port.to_bytes(2, "big"),
                    remote.to_bytes(16, "big"),
                    remote_port.to_bytes(2, "big"),
                )
            )
            digest = hashlib.blake2s(data, key=self._key, digest_size=4).digest()
            label = int.from_bytes(digest, "big") & 0xFFFFF or 1  # 0 means "no label"
            self._labels[four_tuple] = label
        return label

"""Addresses as the rest of the stack names them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple


class Endpoint(NamedTuple):
    """One end of a TCP connection: an IPv4 or IPv6 address and a port ("socket" in RFC
    9293). Written "10.0.0.2:80" or, for IPv6, "[fd00::2]:80" (RFC 3986 3.2.2, as ss and
    URLs write it)."""

    ip: IPv4Address | IPv6Address
    port: int

    def __str__(self) -> str:
        if self.ip.version == 6:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"

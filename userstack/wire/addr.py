"""Addresses as the rest of the stack names them."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import NamedTuple


class Endpoint(NamedTuple):
    """One end of a TCP connection: an IPv4 address and a port ("socket" in RFC 9293)."""

    ip: IPv4Address
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"

"""Ephemeral port selection, RFC 6056 3.3.3 (Algorithm 3, "Simple Hash-Based").

Each (local IP, remote IP, remote port) triple gets its own keyed-hash starting
offset in the ephemeral range, and a shared counter steps through it. An off-path
attacker cannot guess the next port toward a given peer, yet ports toward one peer
are reused only after the whole range has been cycled (RFC 6056 3.3.3).
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Callable
from ipaddress import IPv4Address

from ..wire.addr import Endpoint

# RFC 6056 3.2: the IANA ephemeral range.
EPHEMERAL_LOW = 49152
EPHEMERAL_HIGH = 65535


class EphemeralPorts:
    def __init__(self, key: bytes, low: int = EPHEMERAL_LOW, high: int = EPHEMERAL_HIGH) -> None:
        if not 0 < low <= high <= 65535:
            raise ValueError(f"bad ephemeral port range {low}-{high}")
        self._key = hashlib.blake2s(key, person=b"rfc6056").digest()  # independent of ISN use
        self.low = low
        self.count = high - low + 1
        self._next_ephemeral = 0  # "next_ephemeral" in RFC 6056 3.3.3

    def _offset(self, local: IPv4Address, remote: Endpoint) -> int:
        """F(local_IP, remote_IP, remote_port, secret_key) of RFC 6056 3.3.3."""
        h = hashlib.blake2s(
            local.packed + remote.ip.packed + remote.port.to_bytes(2, "big"),
            key=self._key,
            digest_size=4,
        )
        return int.from_bytes(h.digest(), "big")

    def pick(self, local: IPv4Address, remote: Endpoint, is_free: Callable[[int], bool]) -> int:
        """The first port, in this triple's order, that `is_free` accepts.

        Raises OSError(EADDRNOTAVAIL) when every port in the range is taken, as
        connect(2) does.
        """
        offset = self._offset(local, remote)
        for _ in range(self.count):
            port = self.low + (self._next_ephemeral + offset) % self.count
            self._next_ephemeral += 1
            if is_free(port):
                return port
        raise OSError(errno.EADDRNOTAVAIL, f"no free ephemeral port toward {remote}")

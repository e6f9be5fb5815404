"""Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport, remoteip,
remoteport, secretkey).

M is a 4-microsecond timer (RFC 9293 3.4.1), F a keyed hash. Both the key and the clock
come in from the caller, so the same inputs always give the same ISN (tests, replays).
The same keyed hash, with another purpose, gives each connection its timestamp offset.
"""

from __future__ import annotations

import hashlib

from ..wire.addr import Endpoint
from ..wire.seq import MODULUS, SeqNum

TICKS_PER_SECOND = 250_000  # one tick every 4 microseconds


def secret_key(key: bytes) -> bytes:
    """The stack's secret as a blake2s key: checked, and hashed down if longer than the
    32 bytes blake2s takes. Shared by every keyed hash of the host (ISNs, SYN cookies)."""
    if not key:
        raise ValueError("the ISN secret key must not be empty (RFC 6528 3)")
    return key if len(key) <= 32 else hashlib.sha256(key).digest()


class IsnGenerator:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = secret_key(key)

    def isn(self, local: Endpoint, remote: Endpoint, now: float) -> SeqNum:
        m = int(now * TICKS_PER_SECOND)
        return SeqNum((m + self._f(local, remote, b"")) % MODULUS)

    def ts_offset(self, local: Endpoint, remote: Endpoint) -> int:
        """The connection's timestamp clock offset (RFC 7323 7.1), a keyed hash of the
        four-tuple like F, so TSval tells an observer nothing about the host's clock or
        its other connections."""
        return self._f(local, remote, b"tsoffset")

    def _f(self, local: Endpoint, remote: Endpoint, purpose: bytes) -> int:
        """F(localip, localport, remoteip, remoteport, secretkey), one per `purpose`."""
        h = hashlib.blake2s(key=self._key, digest_size=4, person=purpose)
        h.update(local.ip.packed)
        h.update(local.port.to_bytes(2, "big"))
        h.update(remote.ip.packed)
        h.update(remote.port.to_bytes(2, "big"))
        return int.from_bytes(h.digest(), "big")

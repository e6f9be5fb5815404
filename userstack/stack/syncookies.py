"""SYN cookies (RFC 4987 3.6): answer a SYN without keeping any state for it, and build
the connection from the ACK that echoes the answer.

A listener whose SYN queue is full would otherwise have to drop new SYNs, and a flood of
spoofed SYNs (whose SYN,ACKs go to hosts that never answer) keeps it full. With cookies
the SYN,ACK's sequence number itself is the only memory of the SYN: a peer that really
sent it answers with SEG.ACK = cookie + 1, and from that ACK alone we can check that we
made the cookie, recently, for this four-tuple, and recover the MSS the peer offered.

The cookie, our ISS, is 32 bits built as Linux builds its own (net/ipv4/syncookies.c):

    ISS = H1(four-tuple) + IRS + (count << 24) + (H2(four-tuple, count) + mss_index) mod 2**24

- IRS is the peer's SYN's sequence number (the ACK carries IRS + 1 back as SEG.SEQ).
- count is a time counter: `now` in steps of COOKIE_PERIOD seconds, mod 256. A cookie is
  accepted in its own period and the next (MAX_AGE), so it lives 64 to 128 seconds.
- mss_index is a 3-bit index into MSS_TABLE: the largest common MSS not above the peer's
  (48, our floor, when the peer's is smaller still).
- H1 and H2 are keyed blake2s hashes under the stack's secret, taken as the ISN generator
  takes it (`userstack.stack.isn.secret_key`), each with its own personalization. H1 hides
  the counter from an observer; H2 authenticates the rest. Since H2 hashes the counter in,
  the effective secret rotates every period: a cookie of a period no longer accepted
  cannot be replayed, and a forged ACK passes with probability 8 / 2**24 per guess.

What the 32 bits have no room for: window scale and SACK-permitted. As Linux does, they
ride in the low six bits of the cookie SYN,ACK's TSval (`cookie_tsval`), which the ACK
echoes in TSecr (RFC 7323 3.2): bits 0-3 the peer's shift (0xF: none), bit 4 SACK-permitted
(bit 5 is Linux's ECN bit, unused here). So a SYN with timestamps gets a cookie SYN,ACK
that offers window scaling and SACK as the core's would; a SYN without them, only the MSS,
and that connection runs without scaling or SACK. `check` returns the peer's SYN options
as a `TcpOptions` for `Connection.from_syn_cookie`.
"""

from __future__ import annotations

import hashlib
import struct

from ..tcp.config import TcpConfig
from ..tcp.syn_options import MAX_WINDOW_SHIFT, window_shift_for
from ..tcp.timestamps import ts_before
from ..wire.seq import MODULUS, SeqNum
from ..wire.tcp import TcpFlags, TcpOptions, TcpSegment
from .isn import secret_key

MSS_TABLE = (48, 536, 1200, 1300, 1360, 1400, 1452, 1460)  # 536: no option (MUST-15)
COOKIE_PERIOD = 64.0  # seconds per count
MAX_AGE = 2  # a cookie is good in its own period and the next
_COUNT_SHIFT = 24
_LOW_MASK = (1 << _COUNT_SHIFT) - 1
_PORTS = struct.Struct("!HH")  # local port, remote port
_SYN_ACK = TcpFlags.SYN | TcpFlags.ACK
_TS_BITS = 0x3F  # the low bits of the cookie SYN,ACK's TSval that keep the SYN's options
_NO_WSCALE = 0xF
_SACK_OK = 0x10


def mss_index(mss: int | None) -> int:
    """The index in MSS_TABLE of the largest entry not above the peer's MSS."""
    offered = mss if mss else 536  # RFC 9293 3.7.1: no option means 536
    index = 0
    for i, entry in enumerate(MSS_TABLE):
        if entry <= offered:
            index = i
    return index


class SynCookies:
    """Makes and checks cookies for one host; see the module docstring."""

    __slots__ = ("_h1_key", "_h2_key")

    def __init__(self, key: bytes) -> None:
        secret = secret_key(key)
        self._h1_key = hashlib.blake2s(secret, person=b"cookie1").digest()
        self._h2_key = hashlib.blake2s(secret, person=b"cookie2").digest()

    def _h1(self, four_tuple: bytes) -> int:
        digest = hashlib.blake2s(four_tuple, key=self._h1_key, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def _h2(self, four_tuple: bytes, count: int) -> int:
        data = four_tuple + bytes((count,))
        digest = hashlib.blake2s(data, key=self._h2_key, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    @staticmethod
    def _count(now: float) -> int:
        return int(now // COOKIE_PERIOD) & 0xFF

    def make(self, local: bytes, remote: bytes, syn: TcpSegment, now: float) -> SeqNum:
        """The cookie (our ISS) for `syn`, from `remote` to our address `local` (packed
        addresses, IPv4 or IPv6)."""
        count = self._count(now)
        four_tuple = local + remote + _PORTS.pack(syn.dst_port, syn.src_port)
        low = (self._h2(four_tuple, count) + mss_index(syn.options.mss)) & _LOW_MASK
        cookie = self._h1(four_tuple) + syn.seq.value + (count << _COUNT_SHIFT) + low
        return SeqNum(cookie % MODULUS)

    def check(
        self, local: bytes, remote: bytes, ack: TcpSegment, now: float, *,
        timestamps: bool = True,
    ) -> TcpOptions | None:
        """If `ack` echoes a cookie we made for its four-tuple within MAX_AGE periods,
        the options of the SYN it answers (the MSS; with `timestamps`, as the listener
        offers them, and a TSopt on the ACK, window scale and SACK-permitted from its
        TSecr: the module docstring); otherwise None."""
        four_tuple = local + remote + _PORTS.pack(ack.dst_port, ack.src_port)
        cookie = (ack.ack.value - 1 - self._h1(four_tuple) - (ack.seq.value - 1)) % MODULUS
        count = cookie >> _COUNT_SHIFT
        if (self._count(now) - count) & 0xFF >= MAX_AGE:
            return None
        index = ((cookie & _LOW_MASK) - self._h2(four_tuple, count)) & _LOW_MASK
        if index >= len(MSS_TABLE):
            return None
        tsopt = ack.options.timestamps
        if not timestamps or tsopt is None:
            return TcpOptions(mss=MSS_TABLE[index])
        scale, sack = tsopt[1] & _NO_WSCALE, bool(tsopt[1] & _SACK_OK)
        return TcpOptions(mss=MSS_TABLE[index], window_scale=None if scale == _NO_WSCALE
                          else scale, sack_permitted=sack, timestamps=tsopt)


def cookie_tsval(clock: int, syn: TcpSegment, config: TcpConfig) -> int:
    """The cookie SYN,ACK's TSval: our timestamp clock with its low six bits replaced by
    the SYN's window scale and SACK-permitted, those the configuration takes (as Linux's
    cookie_init_timestamp), and never ahead of the clock (RFC 7323 5.4: it must not
    jump forward)."""
    offered = syn.options.window_scale
    scale = min(offered, MAX_WINDOW_SHIFT) if config.window_scale and offered is not None \
        else _NO_WSCALE
    bits = scale | (_SACK_OK if config.sack and syn.options.sack_permitted else 0)
    tsval = (clock & ~_TS_BITS) | bits
    return (tsval - _TS_BITS - 1) % MODULUS if ts_before(clock, tsval) else tsval


def cookie_syn_ack(
    syn: TcpSegment, iss: SeqNum, config: TcpConfig, clock: int | None = None
) -> TcpSegment:
    """The SYN,ACK <SEQ=cookie><ACK=SEG.SEQ+1><CTL=SYN,ACK> for `syn`, as the core would send
    it from SYN-RECEIVED (RFC 9293 3.10.7.2). With timestamps (the SYN's and the
    configuration's; `clock`: our TSval clock now) it offers what the core's would, the
    TSval keeping the SYN's options (`cookie_tsval`); without, only the MSS: the cookie
    has no room for window scale or SACK-permitted."""
    tsopt = syn.options.timestamps
    if clock is None or not config.timestamps or tsopt is None:
        options = TcpOptions(mss=config.mss)
    else:
        scale = window_shift_for(config.recv_buffer) if config.window_scale and (
            syn.options.window_scale is not None) else None
        options = TcpOptions(mss=config.mss, window_scale=scale,
                             sack_permitted=config.sack and syn.options.sack_permitted,
                             timestamps=(cookie_tsval(clock, syn, config), tsopt[0]))
    return TcpSegment(
        syn.dst_port, syn.src_port, iss, syn.seq + 1, _SYN_ACK,
        min(config.recv_buffer, 0xFFFF), options,
    )

"""The stack's TIME-WAIT four-tuples, as compact records (tcp/time_wait.py), not TCBs.

When a connection reaches TIME-WAIT the stack drops its `Connection` (the application may
still hold it, as a stream whose state reads TIME-WAIT) and keeps a `TimeWait` record for
2*MSL: about 250 bytes in all, where the connection costs kilobytes.

Layout, for memory: one dict per `TcpConfig` (usually one), each mapping the four-tuple,
packed into one int, to its record. A config's records all last 2*MSL of that config, and
a record is (re)inserted when its 2*MSL starts, so each dict is in expiry order:
expiring is popping from the front, and no timer heap entry is needed per record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..tcp.config import TcpConfig
from ..tcp.info import TcbInfo, TimerKind
from ..tcp.state import State
from ..tcp.time_wait import TimeWait
from ..wire.addr import Endpoint
from .addresses import IPAddress, address_of
from .listener import DemuxKey


@dataclass(frozen=True, slots=True)
class TimeWaitEnd:
    """Whose events the stack reports when a record ends (2*MSL over, or a new SYN took
    the four-tuple): its endpoints, in place of the Connection that is long gone."""

    local: Endpoint
    remote: Endpoint


def _pack(key: DemuxKey) -> int:
    return key[0] << 32 | key[1] << 16 | key[2]


def _unpack(packed: int) -> DemuxKey:
    return (packed >> 32, (packed >> 16) & 0xFFFF, packed & 0xFFFF)


class TimeWaitTable:
    """Records by four-tuple, in expiry order per config; see the module docstring."""

    __slots__ = ("_by_config",)

    def __init__(self) -> None:
        self._by_config: dict[TcpConfig, dict[int, TimeWait]] = {}

    def __len__(self) -> int:
        return sum(len(records) for records in self._by_config.values())

    def __contains__(self, key: DemuxKey) -> bool:
        return self.find(key) is not None

    def add(self, key: DemuxKey, record: TimeWait, config: TcpConfig) -> None:
        records = self._by_config.setdefault(config, {})
        packed = _pack(key)
        records.pop(packed, None)
        records[packed] = record  # at the end: the latest 2*MSL of this config

    def find(self, key: DemuxKey) -> tuple[TimeWait, TcpConfig] | None:
        if not self._by_config:
            return None
        packed = _pack(key)
        for config, records in self._by_config.items():
            record = records.get(packed)
            if record is not None:
                return record, config
        return None

    def remove(self, key: DemuxKey, config: TcpConfig) -> None:
        records = self._by_config[config]
        del records[_pack(key)]
        if not records:
            del self._by_config[config]

    def next_deadline(self) -> float | None:
        """The earliest expiry of any record, or None."""
        earliest = None
        for records in self._by_config.values():
            expiry = next(iter(records.values())).expiry
            if earliest is None or expiry < earliest:
                earliest = expiry
        return earliest

    def expire(self, now: float) -> list[tuple[DemuxKey, TcpConfig]]:
        """Drop every record whose 2*MSL is over (RFC 9293 3.10.8); their four-tuples,
        each with the config whose MSL it waited."""
        gone: list[tuple[DemuxKey, TcpConfig]] = []
        for config, records in list(self._by_config.items()):
            expired = []
            for packed, record in records.items():
                if record.expiry > now:
                    break
                expired.append(packed)
            for packed in expired:
                del records[packed]
            if not records:
                del self._by_config[config]
            gone.extend((_unpack(packed), config) for packed in expired)
        return gone

    def local_ports(self) -> set[int]:
        return {packed & 0xFFFF for records in self._by_config.values() for packed in records}

    def rows(
        self, now: float, local_for: Callable[[IPAddress], IPAddress]
    ) -> Iterator[TcbInfo]:
        """One `ss` row per record, with its timer (`ss -o`: timewait); `local_for` is
        our address for a remote one (the family's)."""
        for config, records in self._by_config.items():
            for packed, record in records.items():
                remote_ip, remote_port, local_port = _unpack(packed)
                remote = address_of(remote_ip)
                snd_nxt = record.snd_nxt.value
                yield TcbInfo(
                    state=State.TIME_WAIT,
                    local=Endpoint(local_for(remote), local_port),
                    remote=Endpoint(remote, remote_port),
                    recv_q=0,
                    send_q=0,
                    timer=TimerKind.TIME_WAIT,
                    timer_left=max(0.0, record.expiry - now),
                    retransmits=0,
                    iss=0,  # not kept: a TIME-WAIT record knows only what it must answer with
                    irs=None,
                    snd_una=snd_nxt,
                    snd_nxt=snd_nxt,
                    snd_wnd=0,
                    rcv_nxt=record.rcv_nxt.value,
                    rcv_wnd=record.rcv_wnd,
                    mss=config.mss,
                    cwnd=0,
                    ssthresh=0,
                    srtt=None,
                    rto=config.rto_initial,
                    ts=record.ts_recent is not None,  # of the options, all a record keeps
                    congestion=config.congestion.value,
                )

"""Records every packet that passes through a link into a pcap file (LINKTYPE_RAW).

Wrap wherever you want to look: `PcapTap(FaultyLink(tun))` records what the stack sent and what
reached it after the faults; `FaultyLink(PcapTap(tun))` records what was really on the TUN.
Timestamps are wall-clock (`time.time()`), because that is what tcpdump and Wireshark show;
trio's clock may be a MockClock and is not a date.
The tap does not own the writer's file: close that yourself after the link.

With offload, a record is what crossed the link, as tcpdump shows a TSO interface: one
super-segment of up to 64 KB is one record. Its checksum is filled in (the link left it to
the kernel), so tshark, scapy and dpkt read the file without checksum errors; the tap passes
the inner link's `offload` through.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from userstack.link.base import Link, LinkBase
from userstack.wire.offload import LinkPacket, link_packet_bytes
from userstack.wire.pcap import PcapWriter


class PcapTap(LinkBase):
    def __init__(self, inner: Link, writer: PcapWriter) -> None:
        super().__init__()
        self.inner = inner
        self.offload = inner.offload
        self._writer = writer

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        self._check_open()
        # Record first: the inner send yields, and a reply read meanwhile must not be
        # recorded ahead of the packet that caused it.
        self._record(packets)
        await self.inner.send_batch(packets)

    async def _receive_batch(self) -> list[bytes]:
        batch = await self.inner.receive_batch()
        self._record(batch)
        return batch

    async def _aclose(self) -> None:
        await self.inner.aclose()

    def _record(self, packets: Sequence[LinkPacket]) -> None:
        now = time.time()
        write = self._writer.write
        for packet in packets:
            write(link_packet_bytes(packet), now)

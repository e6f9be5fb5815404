"""PcapTap records both directions through the wire layer's PcapWriter, and changes nothing."""

from __future__ import annotations

import io
import time

import pytest
import trio

from userstack.link.memory import memory_link_pair
from userstack.link.pcap_tap import PcapTap
from userstack.wire.pcap import LINKTYPE_RAW, PcapReader, PcapWriter


async def test_records_what_goes_out_and_what_comes_in() -> None:
    a, b = memory_link_pair()
    file = io.BytesIO()
    before = time.time()
    async with PcapTap(a, PcapWriter(file)) as tap:
        await tap.send_batch([b"\x45out1", b"\x45out2"])
        assert await b.receive_batch() == [b"\x45out1", b"\x45out2"]
        await b.send(b"\x45in")
        assert await tap.receive() == b"\x45in"
    assert a.closed
    file.seek(0)
    reader = PcapReader(file)
    assert reader.linktype == LINKTYPE_RAW
    records = list(reader)
    assert [packet for _, packet in records] == [b"\x45out1", b"\x45out2", b"\x45in"]
    assert all(before - 1e-6 <= ts <= time.time() + 1e-6 for ts, _ in records)


async def test_closing_the_tap_closes_the_link_not_the_file() -> None:
    a, b = memory_link_pair()
    file = io.BytesIO()
    tap = PcapTap(a, PcapWriter(file))
    await tap.aclose()
    assert not file.closed
    assert a.closed
    with pytest.raises(trio.EndOfChannel):
        await b.receive()

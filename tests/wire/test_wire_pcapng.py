"""pcapng packet comments (the fault link's record, wire/pcapng.py) are read back by our
reader, dpkt, tcpdump and tshark; `open_capture` reads pcap and pcapng alike."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import dpkt
import pytest
from test_wire_pcap import PACKETS, TIMES, write_pcap

from userstack.wire.errors import WireError
from userstack.wire.pcapng import (
    LINKTYPE_IPV4,
    Fault,
    PcapngReader,
    PcapngWriter,
    fault_comment,
    fault_in,
    open_capture,
)

COMMENTS = [None, fault_comment(Fault.DROPPED, "send"), "ünïcode, odd length"]


def write_commented(file: io.BytesIO | io.BufferedWriter) -> None:
    writer = PcapngWriter(file, ["us0 (fault link)"])
    for packet, t, comment in zip(PACKETS, TIMES, COMMENTS, strict=True):
        writer.write(0, packet, t, comment)


def test_comments_round_trip() -> None:
    buf = io.BytesIO()
    write_commented(buf)
    buf.seek(0)
    reader = open_capture(buf)
    assert isinstance(reader, PcapngReader) and reader.linktype == LINKTYPE_IPV4
    records = list(reader.records())
    assert [r[1] for r in records] == PACKETS
    assert [r[2] for r in records] == COMMENTS
    assert [round(r[0], 6) for r in records] == TIMES
    assert reader.interfaces == ["us0 (fault link)"]
    assert [fault_in(c) for c in COMMENTS] == [None, Fault.DROPPED, None]


def test_open_capture_reads_classic_pcap_too() -> None:
    buf = io.BytesIO()
    write_pcap(buf)
    buf.seek(0)
    assert list(open_capture(buf).records()) == [
        (t, p, None) for t, p in zip(TIMES, PACKETS, strict=True)
    ]


def test_dpkt_reads_commented_pcapng() -> None:
    buf = io.BytesIO()
    write_commented(buf)
    buf.seek(0)
    assert [bytes(p) for _, p in dpkt.pcapng.Reader(buf)] == PACKETS


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_commented_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    with path.open("wb") as f:
        write_commented(f)
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    assert len(out.splitlines()) == len(PACKETS)
    assert "10.0.0.1.40000 > 10.0.0.2.80: Flags [S]" in out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_the_comments(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    with path.open("wb") as f:
        write_commented(f)
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.splitlines() == ["", COMMENTS[1], COMMENTS[2]]


def _block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _idb(linktype: int, tsresol: int | None = None) -> bytes:
    options = b"" if tsresol is None else struct.pack("<HHB3x", 9, 1, tsresol)
    return _block(1, struct.pack("<HHI", linktype, 0, 0xFFFF) + options + bytes(4))


def _epb(interface: int, ticks: int, frame: bytes) -> bytes:
    head = struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame))
    return _block(6, head + frame + bytes(-len(frame) % 4))


SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
FRAME = b"\x02" * 12 + b"\x86\xdd" + PACKETS[0]  # an Ethernet frame, as dumpcap writes on lo


def test_another_tools_pcapng_gives_its_link_type_and_timestamp_resolution() -> None:
    """dumpcap writes nanoseconds (if_tsresol 9) and Ethernet frames for a Linux `lo`."""
    buf = io.BytesIO(SHB + _idb(1, 9) + _epb(0, 1_700_000_000_123_456_789, FRAME)
                     + _idb(1, 0x80 | 10) + _epb(1, 3 << 10, FRAME))  # 2^-10 s units
    reader = open_capture(buf)
    assert reader.linktype == 1  # LINKTYPE_ETHERNET, as the IDBs before the first packet say
    assert [(t, p) for t, p, _ in reader.records()] == [
        (1_700_000_000_123_456_789 / 10**9, FRAME), (3.0, FRAME)]
    assert reader.interfaces == ["interface 0", "interface 1"]


@pytest.mark.parametrize(("capture", "complaint"), [
    (SHB + _idb(1) + _idb(228) + _epb(0, 0, FRAME), "different link types"),
    (SHB + _idb(1) + _epb(1, 0, FRAME), "interface 1, never described"),
    (struct.pack(">IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28), "big-endian"),
], ids=["mixed", "undescribed", "big-endian"])
def test_what_the_reader_cannot_take_is_said(capture: bytes, complaint: str) -> None:
    with pytest.raises(WireError, match=complaint):
        reader = open_capture(io.BytesIO(capture))
        reader.linktype  # noqa: B018 (the property is what raises)
        list(reader.records())

"""Our pcap files are read by dpkt and tcpdump; our reader reads them back."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import dpkt
import pytest

from userstack.wire import (
    LINKTYPE_RAW,
    IcmpEcho,
    IcmpType,
    PcapReader,
    PcapWriter,
    SeqNum,
    TcpFlags,
    TcpOptions,
    TcpSegment,
    WireError,
    build_icmp_packet,
    build_tcp_packet,
)

A = IPv4Address("10.0.0.1")
B = IPv4Address("10.0.0.2")
PACKETS = [
    build_tcp_packet(
        A,
        B,
        TcpSegment(
            40000,
            80,
            SeqNum(1000),
            SeqNum(0),
            TcpFlags.SYN,
            64240,
            TcpOptions(mss=1460, window_scale=7, sack_permitted=True, timestamps=(1, 0)),
        ),
    ),
    build_tcp_packet(
        B,
        A,
        TcpSegment(
            80, 40000, SeqNum(5), SeqNum(1001), TcpFlags.ACK | TcpFlags.PSH, 501, payload=b"hello"
        ),
    ),
    build_icmp_packet(A, B, IcmpEcho(IcmpType.ECHO_REQUEST, 7, 1, b"ping")),
]
TIMES = [1_700_000_000.0, 1_700_000_000.123456, 1_700_000_001.999999]


def write_pcap(file: io.BufferedIOBase | io.BytesIO) -> None:
    writer = PcapWriter(file)
    for packet, t in zip(PACKETS, TIMES, strict=True):
        writer.write(packet, t)


def test_dpkt_reads_our_pcap() -> None:
    buf = io.BytesIO()
    write_pcap(buf)
    buf.seek(0)
    reader = dpkt.pcap.Reader(buf)
    assert reader.datalink() == LINKTYPE_RAW
    records = list(reader)
    assert [bytes(p) for _, p in records] == PACKETS
    assert [float(t) for t, _ in records] == pytest.approx(TIMES, abs=1e-6)
    syn = dpkt.ip.IP(records[0][1]).data
    assert syn.flags == dpkt.tcp.TH_SYN and syn.dport == 80
    assert dpkt.ip.IP(records[1][1]).data.data == b"hello"
    assert dpkt.ip.IP(records[2][1]).data.data.data == b"ping"


def test_our_reader_round_trip() -> None:
    buf = io.BytesIO()
    write_pcap(buf)
    buf.seek(0)
    reader = PcapReader(buf)
    assert reader.linktype == LINKTYPE_RAW
    records = list(reader)
    assert [p for _, p in records] == PACKETS
    assert [t for t, _ in records] == pytest.approx(TIMES, abs=1e-6)


def test_our_reader_reads_dpkt_files_in_either_byte_order() -> None:
    buf = io.BytesIO()
    writer = dpkt.pcap.Writer(buf, linktype=LINKTYPE_RAW, nano=True)
    writer.writepkt(PACKETS[0], ts=12.5)
    raw = buf.getvalue()
    records = list(PcapReader(io.BytesIO(raw)))
    assert records == [(12.5, PACKETS[0])]
    # The same record in a big-endian file, as a big-endian host writes it.
    big = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_RAW)
    big += struct.pack(">IIII", 12, 500_000_000, len(PACKETS[0]), len(PACKETS[0])) + PACKETS[0]
    assert list(PcapReader(io.BytesIO(big))) == [(12.5, PACKETS[0])]


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"\xd4\xc3\xb2", "shorter"), (bytes(24), "magic"), ("truncated", "inside a packet")],
)
def test_reader_rejects_bad_files(raw: bytes | str, message: str) -> None:
    if raw == "truncated":
        buf = io.BytesIO()
        write_pcap(buf)
        raw = buf.getvalue()[:-3]
    with pytest.raises(WireError, match=message):
        list(PcapReader(io.BytesIO(raw)))  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_our_pcap(tmp_path: Path) -> None:
    path = tmp_path / "wire.pcap"
    with path.open("wb") as f:
        write_pcap(f)
    out = subprocess.run(
        ["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()
    assert len(out) == 3, out
    assert "10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1000" in out[0]
    assert "mss 1460" in out[0] and "wscale 7" in out[0] and "sackOK" in out[0]
    assert "10.0.0.2.80 > 10.0.0.1.40000: Flags [P.], seq 5:10, ack 1001" in out[1]
    assert "ICMP echo request, id 7, seq 1" in out[2]

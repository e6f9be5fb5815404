"""pcapng files (wire/pcapng.py): packet comments (the fault link's record), IPv4 and IPv6
on one LINKTYPE_RAW interface and the queues of a multi-queue one are read back by our
reader, dpkt, tcpdump and tshark; `open_capture` reads pcap and pcapng alike, and
userstack's older files (LINKTYPE_IPV4, an interface per queue) too."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import dpkt
import pytest
from test_wire_pcap import PACKETS, TIMES, write_pcap

from userstack.observe.replay import read_capture
from userstack.wire import LINKTYPE_RAW, SeqNum, TcpFlags, TcpSegment, build_tcp6_packet, parse_ip
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
    writer = PcapngWriter(file, "us0 (fault link)")
    for packet, t, comment in zip(PACKETS, TIMES, COMMENTS, strict=True):
        writer.write(packet, t, comment)


def test_comments_round_trip() -> None:
    buf = io.BytesIO()
    write_commented(buf)
    buf.seek(0)
    reader = open_capture(buf)
    assert isinstance(reader, PcapngReader) and reader.linktype == LINKTYPE_RAW
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


def _epb(interface: int, ticks: int, frame: bytes, comment: str | None = None) -> bytes:
    head = struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                       len(frame))
    options = b""
    if comment is not None:
        raw = comment.encode()
        options = struct.pack("<HH", 1, len(raw)) + raw + bytes(-len(raw) % 4) + bytes(4)
    return _block(6, head + frame + bytes(-len(frame) % 4) + options)


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


C6, S6 = IPv6Address("fd00::1"), IPv6Address("fd00::2")
SYN6 = build_tcp6_packet(C6, S6, TcpSegment(50000, 80, SeqNum(100), SeqNum(0), TcpFlags.SYN,
                                            64800))
SYN_ACK6 = build_tcp6_packet(S6, C6, TcpSegment(80, 50000, SeqNum(900), SeqNum(101),
                                                TcpFlags.SYN | TcpFlags.ACK, 64800))
DUAL = [  # (packet, comment): both families on one interface, a fault on each
    (PACKETS[0], None),
    (SYN6, None),
    (SYN_ACK6, fault_comment(Fault.DROPPED, "send")),
    (PACKETS[1], fault_comment(Fault.DUPLICATED, "receive")),
]


def write_dual(path: Path) -> None:
    with path.open("wb") as f:
        writer = PcapngWriter(f, "us0 (fault link)")
        for i, (packet, comment) in enumerate(DUAL):
            writer.write(packet, 1_700_000_000 + i, comment)


def test_ipv4_and_ipv6_are_read_back_with_their_families_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "dual.pcapng"
    write_dual(path)
    with path.open("rb") as f:
        reader = open_capture(f)
        records = list(reader.records())
    assert reader.linktype == LINKTYPE_RAW  # the version nibble says which family
    assert [p for _, p, _ in records] == [p for p, _ in DUAL]
    assert [type(parse_ip(p).src) for _, p, _ in records] == [
        IPv4Address, IPv6Address, IPv6Address, IPv4Address]
    assert [c for _, _, c in records] == [c for _, c in DUAL]
    capture = read_capture(path)  # what ladder, view, plot and explain read
    assert [(s.src.ip, s.fault) for s in capture.segments] == [
        (IPv4Address("10.0.0.1"), None), (C6, None), (S6, Fault.DROPPED),
        (IPv4Address("10.0.0.2"), Fault.DUPLICATED)]


@pytest.mark.skipif(shutil.which("tcpdump") is None,
                    reason="tcpdump not installed (scripts/test installs it from Debian)")
def test_tcpdump_decodes_ipv6_as_ip6_and_ipv4_as_ip(tmp_path: Path) -> None:
    """tcpdump only reads the file; -nn looks no name up either, so nothing leaves."""
    path = tmp_path / "dual.pcapng"
    write_dual(path)
    dump = subprocess.run(["tcpdump", "-r", str(path), "-nn"], capture_output=True, text=True,
                          timeout=30, check=True)
    assert "link-type RAW (Raw IP)" in dump.stderr  # not IPV4 (Raw IPv4), as before
    lines = dump.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["IP", "IP6", "IP6", "IP"]
    assert "IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S]," in lines[0]
    assert "IP6 fd00::1.50000 > fd00::2.80: Flags [S]," in lines[1]
    assert "IP6 fd00::2.80 > fd00::1.50000: Flags [S.]," in lines[2]
    assert "IP 10.0.0.2.80 > 10.0.0.1.40000: Flags [P.]," in lines[3]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_each_family_under_raw_ip_with_its_comment(tmp_path: Path) -> None:
    """Under LINKTYPE_IPV4 tshark decoded an IPv6 packet as ip:ipv6:tcp (its filter `ip`
    matched it); under LINKTYPE_RAW each is what it is."""
    path = tmp_path / "dual.pcapng"
    write_dual(path)
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|",
                          "-e", "frame.protocols", "-e", "ipv6.src", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert [line.split("|") for line in out.splitlines()] == [
        ["raw:ip:tcp", "", ""], ["raw:ipv6:tcp", "fd00::1", ""],
        ["raw:ipv6:tcp", "fd00::2", DUAL[2][1]], ["raw:ip:tcp", "", DUAL[3][1]]]


def write_queues(file: io.BytesIO | io.BufferedWriter) -> None:
    writer = PcapngWriter(file, "us0", queues=2)
    writer.write(PACKETS[0], TIMES[0], queue=1)
    writer.write(SYN6, TIMES[1], COMMENTS[1], queue=0)
    writer.write(PACKETS[1], TIMES[2], queue=1)


def test_a_multi_queue_interface_names_each_packets_queue() -> None:
    buf = io.BytesIO()
    write_queues(buf)
    buf.seek(0)
    reader = PcapngReader(buf)
    assert [(p.interface, p.queue, p.comment) for p in reader.packets()] == [
        (0, 1, None), (0, 0, COMMENTS[1]), (0, 1, None)]
    assert reader.interfaces == ["us0"] and reader.linktype == LINKTYPE_RAW
    with pytest.raises(ValueError, match="no queue 2"):
        PcapngWriter(io.BytesIO(), "us0", queues=2).write(PACKETS[0], 0.0, queue=2)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_shows_the_queue_and_tcpdump_reads_every_packet(tmp_path: Path) -> None:
    """One interface with queues, not an interface per queue: libpcap 1.10 refuses a second
    LINKTYPE_RAW interface, and any second interface of another link type."""
    path = tmp_path / "queues.pcapng"
    with path.open("wb") as f:
        write_queues(f)
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=|",
                          "-e", "frame.interface_name", "-e", "frame.interface_queue"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.splitlines() == ["us0|1", "us0|0", "us0|1"]
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump not installed: the queues were read by tshark only")
    dump = subprocess.run(["tcpdump", "-r", str(path), "-nn"], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    assert [line.split()[1] for line in dump.splitlines()] == ["IP", "IP6", "IP"]


def test_older_userstack_files_still_read(tmp_path: Path) -> None:
    """LINKTYPE_IPV4, an interface per queue, a fault comment: what userstack wrote before."""
    path = tmp_path / "old.pcapng"
    path.write_bytes(SHB + _idb(LINKTYPE_IPV4) + _idb(LINKTYPE_IPV4)
                     + _epb(0, 1_000_000, PACKETS[0]) + _epb(1, 2_000_000, PACKETS[0], COMMENTS[1]))
    with path.open("rb") as f:
        reader = open_capture(f)
        assert isinstance(reader, PcapngReader) and reader.linktype == LINKTYPE_IPV4
        assert [(p.interface, p.queue, p.timestamp, p.comment) for p in reader.packets()] == [
            (0, None, 1.0, None), (1, None, 2.0, COMMENTS[1])]
    assert [s.fault for s in read_capture(path).segments] == [None, Fault.DROPPED]

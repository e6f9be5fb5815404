"""pcapng packet comments (the fault link's record, wire/pcapng.py) are read back by our
reader, dpkt, tcpdump and tshark; `open_capture` reads pcap and pcapng alike."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import dpkt
import pytest
from test_wire_pcap import PACKETS, TIMES, write_pcap

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

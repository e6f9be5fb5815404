"""`userstack explain`: each captured segment in tcpdump's format, then the rules the
receiving endpoint's core applied, what changed, and what the replay had to infer."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from userstack.cli import main
from userstack.observe.why import explain_capture
from userstack.wire.addr import Endpoint
from userstack.wire.packet import build_tcp_packet
from userstack.wire.pcap import PcapWriter
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions, TcpSegment

C = Endpoint(IPv4Address("192.168.1.10"), 50000)
S = Endpoint(IPv4Address("192.168.1.20"), 443)
SYN, ACK, PSH, FIN = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.PSH, TcpFlags.FIN


def seg(src: Endpoint, seq: int, ack: int, flags: TcpFlags, payload: bytes = b"") -> TcpSegment:
    dst = S if src == C else C
    options = TcpOptions(mss=1460) if flags & SYN else TcpOptions()
    return TcpSegment(src.port, dst.port, SeqNum(seq), SeqNum(ack), flags, 1000, options,
                      payload)


def write_capture(path: Path, *segments: tuple[Endpoint, TcpSegment]) -> Path:
    with path.open("wb") as f:
        writer = PcapWriter(f)
        for i, (src, s) in enumerate(segments):
            dst = S if src == C else C
            writer.write(build_tcp_packet(src.ip, dst.ip, s), 100.0 + i / 1000)
    return path


# A request whose first transmission is lost and resent, and a four-way close.
EXCHANGE = (
    (C, seg(C, 100, 0, SYN)),
    (S, seg(S, 900, 101, SYN | ACK)),
    (C, seg(C, 101, 901, ACK)),
    (C, seg(C, 101, 901, PSH | ACK, b"a" * 10)),  # 3: lost
    (C, seg(C, 101, 901, PSH | ACK, b"a" * 10)),  # 4: the retransmission
    (S, seg(S, 901, 111, ACK)),
    (C, seg(C, 111, 901, FIN | ACK)),
    (S, seg(S, 901, 112, ACK)),
    (S, seg(S, 901, 112, FIN | ACK)),
    (C, seg(C, 112, 902, ACK)),
)


def test_explain_prints_tcpdump_lines_each_followed_by_the_receivers_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE)
    assert main(["explain", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    syn_ack = next(i for i, line in enumerate(out) if "Flags [S.]" in line)
    assert out[syn_ack].startswith("00:00:00.001000 IP 192.168.1.20.443 > 192.168.1.10.50000")
    assert "options [mss 1460]" in out[syn_ack]
    assert out[syn_ack + 1].split() == [
        "client", "syn_sent.established", "RFC", "9293", "3.10.7.3", "SEG.ACK=1", "ISS=0",
        "IRS=0",
    ]
    assert out[syn_ack + 3].split()[:2] == ["client", "rto.sample"]  # the SYN was timed
    assert out[syn_ack + 5].split()[:5] == ["client", "changed:", "state", "SYN-SENT", "->"]
    # the server's TIME-WAIT is not in the capture: its 2*MSL is said to be assumed
    assert any("2*MSL is assumed" in line for line in out)


def test_a_presumed_lost_segment_and_the_inferred_user_calls_are_marked(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE)
    (explanation,) = explain_capture(path, connection=0)
    lines = explanation.lines
    lost = next(i for i, line in enumerate(lines) if "seq 1:11" in line)
    assert "presumed lost" in lines[lost + 1]
    assert "retransmission" in lines[next(i for i in range(lost + 1, len(lines))
                                          if "seq 1:11" in lines[i]) + 1]
    send = next(i for i, line in enumerate(lines) if "user.send" in line)
    assert "the user call is inferred" in lines[send - 1]
    assert "queued=10" in lines[send]
    assert explanation.undecided() == [3]  # only the lost one reached nobody's core


def test_explain_reports_a_missing_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE)
    assert main(["explain", str(path), "--connection", "3"]) == 1
    assert "no connection 3: found 1" in capsys.readouterr().err


def test_a_closed_port_is_answered_by_the_hosts_rule(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "x.pcap", (C, seg(C, 100, 0, SYN)),
                         (S, seg(S, 0, 101, TcpFlags.RST | ACK)))
    (explanation,) = explain_capture(path)
    text = "\n".join(explanation.lines)
    assert "server  (inferred: no listener: the host answers for the closed port)" in text
    assert "server  closed.reset  RFC 9293 3.10.7.1" in text
    assert "client  syn_sent.refused  RFC 9293 3.10.7.3" in text
    assert explanation.undecided() == []


def test_a_fin_resent_into_time_wait_is_explained_as_the_stacks_record_names_it(
    tmp_path: Path,
) -> None:
    """The server's FIN again (the client's last ACK lost on the way): the client, in
    TIME-WAIT, ACKs it again and restarts 2*MSL; the same rules the stack's TIME-WAIT
    record names live (tests/stack/test_stack_time_wait_why.py)."""
    fin_again = ((S, seg(S, 901, 112, FIN | ACK)), (C, seg(C, 112, 902, ACK)))
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE, *fin_again)
    (explanation,) = explain_capture(path)
    lines = explanation.lines
    again = [i for i, line in enumerate(lines) if "Flags [F.], seq 1, ack 12" in line][1]
    assert "a retransmission" in lines[again + 1]
    assert lines[again + 2].split() == [
        "client", "time_wait.fin_again", "RFC", "9293", "3.10.7.4", "SEG.SEQ=1", "RCV.NXT=2",
        "msl=120"]
    assert lines[again + 4].split()[:2] == ["client", "acceptability.not_acceptable"]
    assert explanation.undecided() == [3]  # the lost request, as before


def test_a_fin_resent_before_its_ack_and_answered_twice_was_not_lost(tmp_path: Path) -> None:
    """The server's FIN, again 10 ms later (a tail loss probe: the client's ACK was late),
    then two identical ACKs of it: each copy drew one, so both arrived; every segment is
    explained (the demo under load does this)."""
    closing = (
        (C, seg(C, 101, 901, FIN | ACK)),
        (S, seg(S, 901, 102, ACK)),
        (S, seg(S, 901, 102, FIN | ACK)),  # 5
        (S, seg(S, 901, 102, FIN | ACK)),  # 6: resent before any ACK of it
        (C, seg(C, 102, 902, ACK)),
        (C, seg(C, 102, 902, ACK)),
    )
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE[:3], *closing)
    (explanation,) = explain_capture(path)
    assert explanation.delivery.lost == frozenset()
    assert explanation.delivery.retransmitted == {6}
    assert explanation.undecided() == []
    text = "\n".join(explanation.lines)
    assert "client  time_wait.fin_again" in text  # the second copy, in TIME-WAIT


def test_a_fin_resent_and_answered_once_is_still_presumed_lost(tmp_path: Path) -> None:
    closing = (
        (C, seg(C, 101, 901, FIN | ACK)),
        (S, seg(S, 901, 102, ACK)),
        (S, seg(S, 901, 102, FIN | ACK)),  # 5: lost
        (S, seg(S, 901, 102, FIN | ACK)),  # 6: its retransmission
        (C, seg(C, 102, 902, ACK)),
    )
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE[:3], *closing)
    (explanation,) = explain_capture(path)
    assert explanation.delivery.lost == {5}
    assert explanation.undecided() == [5]

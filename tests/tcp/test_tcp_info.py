"""Connection.info(): what the SYNs agreed (timestamps, SACK, window scale), the
congestion controller and RTTVAR, as Linux's TCP_INFO and `ss -i` report them."""

from __future__ import annotations

from dataclasses import replace

from tcp_harness import CFG, IRS, ISS, LOCAL, MSS, REMOTE, SYN, seg, send

from userstack.tcp.config import Congestion
from userstack.tcp.connection import Connection
from userstack.tcp.state import State
from userstack.wire.tcp import TcpOptions

BIG = replace(CFG, recv_buffer=1 << 20, timestamps=True, sack=True, window_scale=True,
              congestion=Congestion.CUBIC)  # our shift: 1 MiB needs 5
EVERYTHING = TcpOptions(mss=MSS, window_scale=7, sack_permitted=True, timestamps=(100, 0))


def opened(config: object, options: TcpOptions) -> Connection:
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=config)  # type: ignore[arg-type]
    assert not any((conn.info(0.0).ts, conn.info(0.0).sack))  # SYN-SENT: nothing agreed yet
    send(conn, seg(IRS, ISS + 1, SYN, options=options), at=0.05)
    assert conn.state is State.ESTABLISHED
    return conn


def test_info_reports_what_both_syns_agreed() -> None:
    info = opened(BIG, EVERYTHING).info(0.05)
    assert (info.ts, info.sack, info.snd_wscale, info.rcv_wscale) == (True, True, 7, 5)
    assert info.congestion == "cubic"
    assert info.srtt is not None and info.rttvar == info.srtt / 2  # RFC 6298 (2.2)


def test_info_reports_none_of_it_when_the_peer_offers_none() -> None:
    info = opened(BIG, TcpOptions(mss=MSS)).info(0.05)
    assert (info.ts, info.sack, info.ecn, info.snd_wscale, info.rcv_wscale) == (
        False, False, False, 0, 0)


def test_info_reports_none_of_it_when_we_offer_none() -> None:
    unscaled = replace(CFG, window_scale=False, sack=False)  # and CFG has no timestamps
    info = opened(unscaled, EVERYTHING).info(0.05)
    assert (info.ts, info.sack, info.snd_wscale, info.rcv_wscale) == (False, False, 0, 0)
    assert info.congestion == "newreno"


def test_info_reports_the_peers_shift_beside_our_zero() -> None:
    """Scaling agreed, our buffer needing no shift (8000 bytes): wscale:7,0."""
    info = opened(CFG, EVERYTHING).info(0.05)
    assert (info.snd_wscale, info.rcv_wscale) == (7, 0)

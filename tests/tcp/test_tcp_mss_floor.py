"""A floor under the send MSS (TcpConfig.min_mss, 48 as Linux's tcp_min_snd_mss): a peer
advertising MSS 1, or a forged "fragmentation needed" with a tiny MTU, cannot make us cut
our data into tiny segments (CVE-2019-11479)."""

from __future__ import annotations

import pytest
from tcp_harness import ISS, established
from tcp_harness import NODELAY as CFG

from userstack.tcp.config import TcpConfig
from userstack.tcp.icmp_errors import PACKET_TOO_BIG
from userstack.wire.tcp import TcpOptions


def test_mss_1_in_the_peers_syn_gives_segments_of_48() -> None:
    conn = established(CFG, peer_window=60000, peer_options=TcpOptions(mss=1))
    assert conn.info(0.0).mss == 48
    conn.send(b"x" * 480, 0.0)
    sizes = [len(s.payload) for s in conn.take_outgoing()]
    assert sum(sizes) > 0 and set(sizes) == {48}


def test_fragmentation_needed_with_mtu_68_stops_at_the_floor() -> None:
    """RFC 1191's smallest MTU, 68, leaves 28 bytes: the floor keeps 48."""
    conn = established(CFG, peer_window=60000)
    conn.send(b"d" * 2000, 0.0)
    conn.take_outgoing()
    assert conn.on_icmp_error(PACKET_TOO_BIG, ISS + 1, 0.05, mtu=68)
    assert conn.info(0.05).mss == 48
    resent = conn.take_outgoing()
    assert resent and max(len(s.payload) for s in resent) == 48


def test_the_floor_is_configurable_and_checked() -> None:
    conn = established(TcpConfig(mss=1000, min_mss=200, nagle=False), peer_window=60000,
                       peer_options=TcpOptions(mss=100))
    assert conn.info(0.0).mss == 200
    with pytest.raises(ValueError, match="min_mss"):
        TcpConfig(mss=1000, min_mss=0)
    with pytest.raises(ValueError, match="min_mss"):
        TcpConfig(mss=1000, min_mss=1001)

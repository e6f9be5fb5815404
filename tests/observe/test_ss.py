"""The ss table: names, filters, column alignment and ss's timer notation."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest

from userstack.observe.ss import (
    Show,
    format_info,
    format_ms,
    format_summary,
    format_table,
    format_timer,
    format_users,
    state_filter,
)
from userstack.tcp.info import TcbInfo, TimerKind
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint


def info(state: State, local: tuple[str, int], remote: tuple[str, int], **kw: object) -> TcbInfo:
    base = TcbInfo(
        state=state, local=Endpoint(IPv4Address(local[0]), local[1]),
        remote=Endpoint(IPv4Address(remote[0]), remote[1]), recv_q=0, send_q=0, timer=None,
        timer_left=None, retransmits=0, iss=1, irs=2, snd_una=1, snd_nxt=1, snd_wnd=0,
        rcv_nxt=3, rcv_wnd=0, mss=1460, cwnd=14600, ssthresh=65535, srtt=None, rto=1.0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


LISTENER = info(State.LISTEN, ("0.0.0.0", 80), ("0.0.0.0", 0), send_q=128)
ESTAB = info(State.ESTABLISHED, ("10.0.0.2", 80), ("10.0.0.1", 43210), recv_q=1000,
             timer=TimerKind.RETRANSMIT, timer_left=0.204, retransmits=0)
TIME_WAIT = info(State.TIME_WAIT, ("10.0.0.2", 80), ("10.0.0.1", 43222),
                 timer=TimerKind.TIME_WAIT, timer_left=238.4)
SYN_RECV = info(State.SYN_RECEIVED, ("10.0.0.2", 80), ("10.0.0.1", 5), timer=None)
ALL = [TIME_WAIT, ESTAB, LISTENER, SYN_RECV]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (204, "204ms"), (1200, "1.200ms"), (1000, "1sec"), (59_000, "59sec"),
        (59_400, "59sec"), (238_400, "3min58sec"), (7_140_000, "119min"), (60_500, "1min"),
        (9_000 + 7, "9.007ms"), (0, ""),
    ],
)
def test_format_ms_is_ss_print_ms_timer(ms: int, text: str) -> None:
    assert format_ms(ms) == text


def test_timer_column() -> None:
    assert format_timer(ESTAB) == "timer:(on,204ms,0)"
    assert format_timer(TIME_WAIT) == "timer:(timewait,3min58sec,0)"
    assert format_timer(replace(ESTAB, timer=TimerKind.PERSIST, timer_left=1.2,
                                retransmits=3)) == "timer:(persist,1.200ms,3)"
    assert format_timer(SYN_RECV) == ""


def test_default_shows_connected_states_only_like_ss() -> None:
    text = format_table(ALL)
    assert text.splitlines() == [
        "State Recv-Q Send-Q Local Address:Port Peer Address:Port",
        "ESTAB 1000   0           10.0.0.2:80       10.0.0.1:43210",
    ]


def test_all_with_timers_is_aligned() -> None:
    lines = format_table(ALL, show=Show.ALL, timers=True).splitlines()
    assert lines == [
        "State     Recv-Q Send-Q Local Address:Port Peer Address:Port",
        "LISTEN    0      128          0.0.0.0:80        0.0.0.0:*",
        "SYN-RECV  0      0           10.0.0.2:80       10.0.0.1:5",
        "ESTAB     1000   0           10.0.0.2:80       10.0.0.1:43210 timer:(on,204ms,0)",
        "TIME-WAIT 0      0           10.0.0.2:80       10.0.0.1:43222"
        " timer:(timewait,3min58sec,0)",
    ]
    colons = {line.index(":") for line in lines}  # Local columns line up on the ':'
    assert len(colons) == 1


def test_listening_only() -> None:
    lines = format_table(ALL, show=Show.LISTENING).splitlines()
    assert [line.split()[0] for line in lines] == ["State", "LISTEN"]


def test_every_state_has_an_ss_name() -> None:
    text = format_table([info(s, ("10.0.0.2", 1), ("10.0.0.1", 2)) for s in State], show=Show.ALL)
    names = {line.split()[0] for line in text.splitlines()[1:]}
    assert names == {"LISTEN", "SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2",
                     "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT", "UNCONN"}


@pytest.mark.parametrize(
    ("words", "states"),
    [
        ([], Show.CONNECTED.states),
        (["state", "time-wait"], {State.TIME_WAIT}),
        (["state", "established", "state", "close-wait"], {State.ESTABLISHED, State.CLOSE_WAIT}),
        (["state", "listening"], {State.LISTEN}),
        (["state", "ESTAB"], {State.ESTABLISHED}),  # ss's own column names work too
        (["state", "bucket"], {State.SYN_RECEIVED, State.TIME_WAIT}),
        (["exclude", "listening"], set(State) - {State.LISTEN}),
        (["state", "connected", "exclude", "syn-sent"], Show.CONNECTED.states - {State.SYN_SENT}),
    ],
)
def test_state_filter_follows_ss_grammar(words: list[str], states: set[State]) -> None:
    assert state_filter(words, Show.CONNECTED.states) == states


@pytest.mark.parametrize("words", [["state"], ["state", "estab1ished"], ["sport", "=", ":80"]])
def test_state_filter_names_what_is_valid(words: list[str]) -> None:
    with pytest.raises(ValueError, match="state"):
        state_filter(words, Show.ALL.states)


def test_a_state_filter_picks_rows() -> None:
    lines = format_table(ALL, show=state_filter(["state", "time-wait"], Show.ALL.states))
    assert [line.split()[0] for line in lines.splitlines()] == ["State", "TIME-WAIT"]


def test_netid_process_and_owner_columns_like_ss_tulpen() -> None:
    users = format_users("userstack", 4242, [5])
    assert users == 'users:(("userstack",pid=4242,fd=5))'
    lines = format_table(ALL, show=Show.LISTENING, netid=True, users=users, extended="uid:0",
                         timers=True).splitlines()
    assert lines == [
        "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process",
        'tcp   LISTEN 0      128          0.0.0.0:80        0.0.0.0:*    '
        'users:(("userstack",pid=4242,fd=5)) uid:0',
    ]


def test_users_lists_every_tun_queue_or_none() -> None:
    assert format_users("u", 1, [5, 6]) == 'users:(("u",pid=1,fd=5),("u",pid=1,fd=6))'
    assert format_users("u", 1, []) == 'users:(("u",pid=1))'


def test_no_header() -> None:
    assert format_table(ALL, header=False).splitlines() == [
        "ESTAB 1000 0 10.0.0.2:80 10.0.0.1:43210"]
    assert format_table([], header=False) == ""


def test_summary_counts_states_and_prints_every_counter() -> None:
    text = format_summary(ALL, {"malformed": 2, "syn_backlog_drops": 0})
    lines = text.splitlines()
    assert lines[:2] == ["Total: 4", "TCP:   4 (estab 1, closed 0, timewait 1)"]
    assert "SYN-RECV    1" in lines
    assert lines[-2:] == ["  malformed         2", "  syn_backlog_drops 0"]


def test_ipv6_rows_are_bracketed_like_ss_and_sort_after_ipv4() -> None:
    v6 = replace(
        ALL[0],
        local=Endpoint(IPv6Address("fd00::2"), 80),
        remote=Endpoint(IPv6Address("fd00::1"), 40000),
    )
    lines = format_table([v6, ALL[0]], show=Show.ALL).splitlines()
    assert "[fd00::2]:80" in lines[2] and "[fd00::1]:40000" in lines[2]
    assert "[" not in lines[1]


AGREED = replace(ESTAB, ts=True, sack=True, ecn=True, ecn_seen=True, snd_wscale=7,
                 rcv_wscale=3, congestion="cubic", srtt=0.0045, rttvar=0.0022504, rto=0.204,
                 snd_wnd=64256, ssthresh=7300)


def test_info_line_is_ss_i_and_the_agreed_options_come_with_o() -> None:
    """ss -i's fields, in its order and units (ms to the microsecond; cwnd and ssthresh
    in segments), and,
    with -o, the options the SYNs agreed first (iproute2's tcp_stats_print)."""
    assert format_info(AGREED) == (" cubic wscale:7,3 rto:204 rtt:4.5/2.25 mss:1460 cwnd:10"
                                   " ssthresh:5 snd_wnd:64256")
    assert format_info(AGREED, options=True).startswith(" ts sack ecn ecnseen cubic wscale:7,3")
    plain = replace(AGREED, ts=False, sack=True, ecn=False, ecn_seen=False, snd_wscale=0,
                    rcv_wscale=0, congestion="newreno", srtt=None, rto=3.0, retransmits=2,
                    ssthresh=1 << 30, snd_wnd=0)
    # no wscale without scaling, no rtt before a sample, no rto of 3 s, ssthresh "infinite"
    assert format_info(plain, options=True) == " sack newreno backoff:2 mss:1460 cwnd:10"


def test_info_line_of_a_listener_and_of_time_wait() -> None:
    """A listener: its congestion controller only (Linux's TCP_INFO stops there for one);
    TIME-WAIT: no line at all, as ss prints none for a TIME-WAIT socket."""
    assert format_info(replace(LISTENER, congestion="newreno")) == " newreno"
    assert format_info(replace(TIME_WAIT, ts=True, congestion="newreno"), options=True) == ""


def test_table_with_info_puts_a_tabbed_line_under_each_row() -> None:
    rows = [replace(LISTENER, congestion="newreno"), AGREED, TIME_WAIT]
    lines = format_table(rows, show=Show.ALL, info=True, timers=True).splitlines()
    assert lines == [
        "State     Recv-Q Send-Q Local Address:Port Peer Address:Port",
        "LISTEN    0      128          0.0.0.0:80        0.0.0.0:*",
        "\t newreno",
        "ESTAB     1000   0           10.0.0.2:80       10.0.0.1:43210 timer:(on,204ms,0)",
        "\t ts sack ecn ecnseen cubic wscale:7,3 rto:204 rtt:4.5/2.25 mss:1460 cwnd:10"
        " ssthresh:5 snd_wnd:64256",
        "TIME-WAIT 0      0           10.0.0.2:80       10.0.0.1:43222"
        " timer:(timewait,3min58sec,0)",
    ]

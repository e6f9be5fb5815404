"""The connection table as `ss -tan` prints it, for `userstack ss`.

State names are the ones `ss` users know; they map to RFC 9293 3.3.2 like this:

    ss           RFC 9293          ss           RFC 9293
    LISTEN       LISTEN            FIN-WAIT-2   FIN-WAIT-2
    SYN-SENT     SYN-SENT          CLOSE-WAIT   CLOSE-WAIT
    SYN-RECV     SYN-RECEIVED      LAST-ACK     LAST-ACK
    ESTAB        ESTABLISHED       CLOSING      CLOSING
    FIN-WAIT-1   FIN-WAIT-1        TIME-WAIT    TIME-WAIT
                                   UNCONN       CLOSED

Which rows show follows ss: by default the connected states only (no LISTEN,
TIME-WAIT, SYN-RECV or UNCONN: ss's "connected" filter); `-l` only listeners;
`-a` everything. With `-o` each row gets ss's timer column,
`timer:(<name>,<time left>,<retransmissions>)`, the time written as ss writes it
(`1.200ms` is 1.2 s in ss's notation, `3min58sec`, `59sec`, `204ms`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from ..tcp.info import TcbInfo
from ..tcp.state import State

SS_NAMES = {
    State.LISTEN: "LISTEN",
    State.SYN_SENT: "SYN-SENT",
    State.SYN_RECEIVED: "SYN-RECV",
    State.ESTABLISHED: "ESTAB",
    State.FIN_WAIT_1: "FIN-WAIT-1",
    State.FIN_WAIT_2: "FIN-WAIT-2",
    State.CLOSE_WAIT: "CLOSE-WAIT",
    State.CLOSING: "CLOSING",
    State.LAST_ACK: "LAST-ACK",
    State.TIME_WAIT: "TIME-WAIT",
    State.CLOSED: "UNCONN",
}

_NOT_CONNECTED = frozenset({State.LISTEN, State.TIME_WAIT, State.SYN_RECEIVED, State.CLOSED})


class Show(Enum):
    """Which rows to print: ss's default, `-l` or `-a`."""

    CONNECTED = "connected"
    LISTENING = "listening"
    ALL = "all"


def selected(infos: Iterable[TcbInfo], show: Show) -> list[TcbInfo]:
    if show is Show.ALL:
        return list(infos)
    if show is Show.LISTENING:
        return [i for i in infos if i.state is State.LISTEN]
    return [i for i in infos if i.state not in _NOT_CONNECTED]


def format_ms(ms: int) -> str:
    """A duration the way ss's print_ms_timer writes it (its quirks included).

    Minutes, then seconds, then milliseconds, each only if non-zero; past 9 minutes
    the seconds are dropped, past 9 seconds (or with minutes) the milliseconds; a
    fraction is written "<s>.<ms>ms" (1.2 s is "1.200ms").
    """
    secs, msecs = divmod(ms, 1000)
    minutes, secs = divmod(secs, 60)
    out = ""
    if minutes:
        msecs = 0
        out = f"{minutes}min"
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        out += f"{secs}." if msecs else f"{secs}sec"
    if msecs:
        out += f"{msecs:03d}ms"
    return out


def format_timer(info: TcbInfo) -> str:
    """`timer:(on,1.200ms,3)`, or "" when no timer is pending."""
    if info.timer is None or info.timer_left is None:
        return ""
    left = format_ms(max(0, round(info.timer_left * 1000)))
    return f"timer:({info.timer.value},{left},{info.retransmits})"


def _address(info: TcbInfo, *, local: bool) -> tuple[str, str]:
    ep = info.local if local else info.remote
    port = "*" if ep.port == 0 else str(ep.port)
    return str(ep.ip), port


def format_table(infos: Iterable[TcbInfo], *, show: Show = Show.CONNECTED,
                 timers: bool = False) -> str:
    """The table, columns aligned like ss (addresses right-aligned against their ':')."""
    rows = sorted(selected(infos, show), key=lambda i: (i.local, i.remote))
    cells = [
        (SS_NAMES[i.state], str(i.recv_q), str(i.send_q),
         *_address(i, local=True), *_address(i, local=False),
         format_timer(i) if timers else "")
        for i in rows
    ]
    header = ("State", "Recv-Q", "Send-Q", "Local Address", "Port", "Peer Address", "Port", "")
    widths = [max(len(row[k]) for row in [header, *cells]) for k in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        state, rq, sq, la, lp, pa, pp, timer = row
        return " ".join((
            state.ljust(widths[0]), rq.ljust(widths[1]), sq.ljust(widths[2]),
            f"{la.rjust(widths[3])}:{lp.ljust(widths[4])}",
            f"{pa.rjust(widths[5])}:{pp.ljust(widths[6])}",
            timer,
        )).rstrip()

    return "\n".join(line(row) for row in [header, *cells]) + "\n"

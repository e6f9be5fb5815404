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
TIME-WAIT, SYN-RECV or UNCONN: ss's default filter); `-l` only listeners;
`-a` everything; or ss's state filter, `state time-wait`, `state established state
close-wait`, `exclude listening` (the names and groups are ss's: `STATE_FILTERS`).
With `-o` each row gets ss's timer column,
`timer:(<name>,<time left>,<retransmissions>)`, the time written as ss writes it
(`1.200ms` is 1.2 s in ss's notation, `3min58sec`, `59sec`, `204ms`); `-p` the
process column, `users:(("userstack",pid=N,fd=N))`; `-e` the owner, `uid:N`; `-i`
a line under each row with what TCP_INFO says about it (`format_info`: the congestion
controller, wscale, rto, rtt, mss, cwnd, ...; with `-o` too, first the options the SYNs
agreed, `ts sack ecn ecnseen`, as ss prints them). `-s` is the summary: the rows
counted by state, then every counter of the stack.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum

from ..tcp.info import TcbInfo
from ..tcp.state import State
from ..wire.addr import Endpoint

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

_ALL = frozenset(State)
# ss's "connected" (SS_CONN): its default filter
_CONNECTED = _ALL - {State.LISTEN, State.TIME_WAIT, State.SYN_RECEIVED, State.CLOSED}
_BUCKET = frozenset({State.SYN_RECEIVED, State.TIME_WAIT})  # ss: minisockets

# The names ss's `state` and `exclude` take (ss(8), STATE-FILTER), lower case.
STATE_FILTERS: dict[str, frozenset[State]] = {
    "all": _ALL,
    "connected": _CONNECTED,
    "synchronized": _CONNECTED - {State.SYN_SENT},
    "bucket": _BUCKET,
    "big": _ALL - _BUCKET,
    **{state.value.lower(): frozenset({state}) for state in State},
    **{name.lower(): frozenset({state}) for state, name in SS_NAMES.items()},
    "listening": frozenset({State.LISTEN}),
}


class Show(Enum):
    """Which rows to print: ss's default, `-l` or `-a`."""

    CONNECTED = "connected"
    LISTENING = "listening"
    ALL = "all"

    @property
    def states(self) -> frozenset[State]:
        return STATE_FILTERS[self.value]


def state_filter(tokens: list[str], default: frozenset[State]) -> frozenset[State]:
    """ss's `state NAME` / `exclude NAME` words (ValueError naming the valid ones).

    As in ss: the first `state` replaces the default, later ones add to it; an
    `exclude` before any `state` starts from all states.
    """
    states, saw = default, False
    words = iter(tokens)
    for word in words:
        if word not in ("state", "exclude", "excl"):
            raise ValueError(f"expected `state NAME` or `exclude NAME`, not {word!r} "
                             "(address and port expressions are not supported)")
        name = next(words, None)
        if name is None or name.lower() not in STATE_FILTERS:
            raise ValueError(f"`{word}` takes one of {', '.join(STATE_FILTERS)}, not {name!r}")
        if not saw:
            states = frozenset() if word == "state" else _ALL
            saw = True
        chosen = STATE_FILTERS[name.lower()]
        states = states | chosen if word == "state" else states - chosen
    return states


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


def format_info(info: TcbInfo, *, options: bool = False) -> str:
    """ss -i's line for a row: " newreno wscale:7,7 rto:204 rtt:4.5/2.25 mss:1448 cwnd:10
    snd_wnd:64256", the fields ss prints that a TcbInfo has, in ss's order, each only when
    ss would print it (not zero; ssthresh only below 0xFFFF segments; rto not when it is
    3 s, ss's quirk), times in milliseconds to the microsecond, cwnd and ssthresh in
    segments. The options
    the SYNs agreed (ts sack ecn ecnseen) come first, only with `options`: ss prints them
    for -o (iproute2 6.1: `ss -ti` leaves them out, `ss -tio` shows them). A listener gets
    only its congestion controller (Linux's TCP_INFO has nothing else for one), a
    TIME-WAIT row nothing (ss prints no line for a TIME-WAIT socket). Window scaling
    agreed with both shifts 0 does not show: nothing tells it from none (ss would print
    wscale:0,0)."""
    if info.state is State.TIME_WAIT:
        return ""
    words = [word for word, shown in (("ts", info.ts), ("sack", info.sack), ("ecn", info.ecn),
                                      ("ecnseen", info.ecn_seen)) if shown and options]
    words += [info.congestion] if info.congestion else []
    if info.state is State.LISTEN:
        return "".join(f" {word}" for word in words)
    if info.snd_wscale or info.rcv_wscale:
        words.append(f"wscale:{info.snd_wscale},{info.rcv_wscale}")
    if info.rto and info.rto != 3.0:
        words.append(f"rto:{_ms(info.rto)}")
    if info.retransmits:
        words.append(f"backoff:{info.retransmits}")
    if info.srtt:
        words.append(f"rtt:{_ms(info.srtt)}/{_ms(info.rttvar or 0.0)}")
    mss = info.mss
    if mss:
        words.append(f"mss:{mss}")
        if info.cwnd:
            words.append(f"cwnd:{info.cwnd // mss}")
        if info.ssthresh and info.ssthresh // mss < 0xFFFF:
            words.append(f"ssthresh:{info.ssthresh // mss}")
    if info.snd_wnd:
        words.append(f"snd_wnd:{info.snd_wnd}")
    return "".join(f" {word}" for word in words)


def _ms(seconds: float) -> str:
    """Seconds as ss writes TCP_INFO's microseconds: milliseconds, %g (204, 0.989)."""
    return f"{round(seconds * 1_000_000) / 1000:g}"


def _order(ep: Endpoint) -> tuple[int, int, int]:
    """IPv4 rows before IPv6 ones (addresses of two families do not compare)."""
    return ep.ip.version, int(ep.ip), ep.port


def _address(info: TcbInfo, *, local: bool) -> tuple[str, str]:
    ep = info.local if local else info.remote
    port = "*" if ep.port == 0 else str(ep.port)
    return (f"[{ep.ip}]" if ep.ip.version == 6 else str(ep.ip)), port  # ss: [fd00::1]:80


def format_users(name: str, pid: int, fds: Iterable[int]) -> str:
    """ss -p's process column: `users:(("userstack",pid=7,fd=5))`, one entry per fd.

    The connections live inside the process, not in the kernel's socket table, so the
    descriptors named are its TUN's: where every one of their segments passes.
    """
    entries = [f'("{name}",pid={pid},fd={fd})' for fd in fds] or [f'("{name}",pid={pid})']
    return f"users:({','.join(entries)})"


def format_table(
    infos: Iterable[TcbInfo],
    *,
    show: Show | frozenset[State] = Show.CONNECTED,
    timers: bool = False,
    netid: bool = False,
    users: str | Sequence[str] = "",
    extended: str | Sequence[str] = "",
    header: bool = True,
    info: bool = False,
) -> str:
    """The table, columns aligned like ss (addresses right-aligned against their ':').

    `netid` adds ss's first column ("tcp"), as ss does when asked for several kinds of
    socket; `users` (`format_users`) and `extended` (`uid:0`) are one string for every
    row, or one per row of `infos` (with `serve --queues N` each worker process serves its
    own); `header=False` is ss's -H; `info` is -i: under each row, a tab and
    `format_info` (with the agreed options if `timers`, -o, is on too).
    """
    infos = list(infos)
    owners = list(zip(_per_row(users, len(infos)), _per_row(extended, len(infos)), strict=True))
    states = show.states if isinstance(show, Show) else show
    rows = sorted(((i, o) for i, o in zip(infos, owners, strict=True) if i.state in states),
                  key=lambda row: (_order(row[0].local), _order(row[0].remote)))
    cells = [
        ("tcp", SS_NAMES[i.state], str(i.recv_q), str(i.send_q),
         *_address(i, local=True), *_address(i, local=False),
         " ".join(filter(None, (user, format_timer(i) if timers else "", ext))))
        for i, (user, ext) in rows
    ]
    below = [format_info(i, options=timers) if info else "" for i, _ in rows]
    titles = ("Netid", "State", "Recv-Q", "Send-Q", "Local Address", "Port", "Peer Address",
              "Port", "Process" if any(user for user, _ in owners) or users else "")
    table = [titles, *cells] if header else cells
    widths = [max((len(row[k]) for row in table), default=0) for k in range(len(titles))]

    def line(row: tuple[str, ...]) -> str:
        kind, state, rq, sq, la, lp, pa, pp, rest = row
        return " ".join((
            *((kind.ljust(widths[0]),) if netid else ()),
            state.ljust(widths[1]), rq.ljust(widths[2]), sq.ljust(widths[3]),
            f"{la.rjust(widths[4])}:{lp.ljust(widths[5])}",
            f"{pa.rjust(widths[6])}:{pp.ljust(widths[7])}",
            rest,
        )).rstrip()

    out = [line(titles) + "\n"] if header else []
    for row, extra in zip(cells, below, strict=True):
        out.append(line(row) + "\n")
        if extra:  # ss -i: the row's TCP_INFO on a line of its own, after a tab
            out.append(f"\t{extra}\n")
    return "".join(out)


def _per_row(value: str | Sequence[str], n: int) -> list[str]:
    return [value] * n if isinstance(value, str) else list(value)


def format_summary(infos: Iterable[TcbInfo], counters: Mapping[str, int]) -> str:
    """`ss -s`: the TCBs counted by state, then the stack's counters, each by name."""
    by_state = Counter(i.state for i in infos)
    total = sum(by_state.values())
    lines = [
        f"Total: {total}",
        f"TCP:   {total} (estab {by_state[State.ESTABLISHED]}, closed "
        f"{by_state[State.CLOSED]}, timewait {by_state[State.TIME_WAIT]})",
        "",
        "State       Count",
        *(f"{SS_NAMES[state]:<11} {by_state[state]}" for state in State if by_state[state]),
    ]
    if counters:
        width = max(len(name) for name in counters)
        lines += ["", "Stack counters (drops, answers, errors; userstack/stack/counters.py)"]
        lines += [f"  {name:<{width}} {value}" for name, value in counters.items()]
    return "\n".join(lines) + "\n"

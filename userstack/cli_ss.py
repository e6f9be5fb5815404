"""`userstack ss`: a running stack's table, asked over its control socket, printed as ss.

The flags are ss's, so the commands ss users type work: `userstack ss -tano`,
`userstack ss -tulpen`, `userstack ss -tnoi`, `userstack ss -t state time-wait`,
`userstack ss -s`. `-t` is accepted (TCP is the only kind there is); `-u` asks for UDP,
of which there is none; `-n` is accepted (addresses are always numeric). See
userstack.observe.ss for the columns and userstack.control for the protocol.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import trio

from .cli_args import control_socket, tun_name
from .control import Snapshot, default_path, fetch_host
from .observe.ss import (
    STATE_FILTERS,
    Show,
    format_summary,
    format_table,
    format_users,
    state_filter,
)

PROG = "userstack"


_TEXTS = {
    "description": "Show the connections of a running `userstack serve` or `connect`, as "
                   "ss -tan does. Combined flags work as in ss: -tano, -tulpen.",
    "epilog": "STATE FILTER (as in ss): `state NAME` (repeatable) and `exclude NAME`, "
              f"NAME one of {', '.join(STATE_FILTERS)}; e.g. `userstack ss -t state "
              "time-wait`. It replaces the choice of -l / -a.",
}


def add_ss(subparsers: argparse._SubParsersAction) -> None:
    """`ss` as one subcommand of the whole command line (`userstack --help` lists it)."""
    _add_arguments(subparsers.add_parser(
        "ss", help="show a running stack's connections, like ss -tan", **_TEXTS))


def main(argv: list[str]) -> int:
    """`userstack ss ARGV` with nothing else of the command line loaded (the same parser,
    the same messages): see userstack.__main__ for why."""
    parser = argparse.ArgumentParser(prog=f"{PROG} ss", **_TEXTS)
    _add_arguments(parser)
    return ss(parser.parse_args(argv))


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tcp", action="store_true",
                   help="TCP sockets: accepted, the only kind userstack has")
    p.add_argument("-u", "--udp", action="store_true",
                   help="UDP sockets: userstack has none, so only its TCP rows show (with -t)")
    p.set_defaults(show=Show.CONNECTED)
    p.add_argument("-l", "--listening", dest="show", action="store_const", const=Show.LISTENING,
                   help="listening sockets only")
    p.add_argument("-a", "--all", dest="show", action="store_const", const=Show.ALL,
                   help="all connections and listeners (the default hides LISTEN, "
                        "SYN-RECV and TIME-WAIT)")
    p.add_argument("-o", "--options", action="store_true",
                   help="show timers: timer:(NAME,TIME LEFT,RETRANSMISSIONS)")
    p.add_argument("-i", "--info", action="store_true",
                   help="show TCP internals under each row, as ss -i: the congestion "
                        "controller, wscale:SND,RCV, rto, rtt:SRTT/RTTVAR (ms), mss, cwnd and "
                        "ssthresh (segments), snd_wnd; with -o also the options the SYNs "
                        "agreed, as ss prints them: ts sack ecn ecnseen")
    p.add_argument("-n", "--numeric", action="store_true",
                   help="accepted: addresses and ports are always numeric")
    p.add_argument("-p", "--processes", action="store_true",
                   help='show the serving process: users:(("NAME",pid=N,fd=TUN FD))')
    p.add_argument("-e", "--extended", action="store_true",
                   help="show the owner: uid:N of the serving process")
    p.add_argument("-s", "--summary", action="store_true",
                   help="print a summary: connections by state and the stack's counters")
    p.add_argument("-H", "--no-header", action="store_true", help="omit the header line")
    p.add_argument("--tun", type=tun_name, default="us0",
                   help="the stack's TUN device, which names its control socket (default us0)")
    p.add_argument("--control", type=control_socket, metavar="PATH",
                   help="the control socket (default: per --tun, under /run/userstack/)")
    p.add_argument("filter", nargs="*", metavar="state NAME",
                   help="a state filter, as in ss: state time-wait, exclude listening")
    p.set_defaults(run=ss)


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def ss(args: argparse.Namespace) -> int:
    try:
        states = state_filter(args.filter, args.show.states)
    except ValueError as exc:
        say(f"ss: {exc}")
        return 2
    path: Path = args.control or default_path(args.tun)
    try:
        snapshots = trio.run(fetch_host, path)  # one per process: with --queues N, N
    except (OSError, ValueError) as exc:
        say(f"no stack answers on {path} ({exc}); is `userstack serve` running? "
            "(--tun NAME or --control PATH name another)")
        return 1
    rows = [info for snapshot in snapshots for info in snapshot.connections]
    if args.summary:
        counters: Counter[str] = Counter()
        for snapshot in snapshots:
            counters.update(snapshot.counters)
        sys.stdout.write(format_summary(rows, {name: counters[name] for name in counters}))
        return 0
    if args.udp and not args.tcp:
        say("userstack has no UDP sockets (it speaks TCP only): nothing to show")
        snapshots, rows = [], []
    users = [_users(s) if args.processes else "" for s in snapshots for _ in s.connections]
    extended = [_owner(s) if args.extended else "" for s in snapshots for _ in s.connections]
    sys.stdout.write(format_table(
        rows, show=states, timers=args.options, netid=args.tcp and args.udp,
        users=users if args.processes else "", extended=extended, header=not args.no_header,
        info=args.info,
    ))
    return 0


def _users(snapshot: Snapshot) -> str:
    process = snapshot.process
    return "" if process is None else format_users(process.name, process.pid, process.fds)


def _owner(snapshot: Snapshot) -> str:
    return "" if snapshot.process is None else f"uid:{snapshot.process.uid}"

"""The command line without a TUN: argument parsing, and `userstack ss` against a control socket."""

from __future__ import annotations

import os
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
import trio
from observe.test_control import many_rows, serving
from observe.test_ss import ALL

from userstack.cli import build_parser, settle_link, tcp_config
from userstack.cli_args import DEFAULT_LINK, LinkChoice
from userstack.control import serve_control
from userstack.tcp.info import TcbInfo


def test_serve_defaults(netns: object) -> None:
    args = build_parser().parse_args(["serve", "http"])
    assert (args.tun, args.addr, args.host_addr, args.mtu) == (None, None, None, 1500)
    assert args.port is None and not args.trace and args.pcap is None
    assert tcp_config(args).mss == 1460
    assert args.offload  # on where the kernel accepts it
    assert not build_parser().parse_args(["serve", "http", "--no-offload"]).offload
    assert args.queues == 1  # one stack; --queues N runs N (userstack.workers)
    # in a namespace with nothing in it, the defaults are us0, 10.0.0.1/24 and 10.0.0.2
    assert settle_link(args, pick_free=False) == DEFAULT_LINK
    assert (args.tun, str(args.addr), str(args.host_addr)) == ("us0", "10.0.0.2", "10.0.0.1/24")


def test_a_host_address_alone_puts_the_stack_on_its_subnet(netns: object) -> None:
    args = build_parser().parse_args(["serve", "http", "--host-addr", "192.168.7.1/24"])
    assert settle_link(args, pick_free=False) == LinkChoice(
        "us0", IPv4Interface("192.168.7.1/24"), IPv4Address("192.168.7.2"))


def test_connect_flags() -> None:
    args = build_parser().parse_args(
        ["connect", "10.0.0.1", "5555", "--mtu", "1000", "--msl", "1", "--loss", "0.1",
         "--delay", "20", "--seed", "3", "-w", "2"])
    config = tcp_config(args)
    assert (config.mss, config.msl, config.congestion) == (960, 1.0, "newreno")
    assert (args.loss, args.delay, args.seed, args.timeout) == (0.1, 20.0, 3, 2.0)


def test_congestion_flag_chooses_the_controller() -> None:
    args = build_parser().parse_args(["serve", "echo", "--congestion", "cubic", "--ce", "0.1"])
    assert tcp_config(args).congestion == "cubic" and args.ce == 0.1
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "echo", "--congestion", "vegas"])


@pytest.mark.parametrize(
    "argv",
    [["serve", "gopher"], ["serve", "echo", "--loss", "2"], ["serve", "echo", "--port", "0"],
     ["serve", "echo", "--queues", "0"], ["connect", "10.0.0.1", "70000"],
     ["connect", "nohost", "80"], []],
)
def test_bad_arguments_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


def userstack(*argv: str) -> list[str]:
    return [sys.executable, "-m", "userstack", *argv]


async def test_ss_prints_the_served_table(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    table: list[TcbInfo] = list(ALL)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_control, path, lambda: table)
        default = await trio.run_process(userstack("ss", "--control", str(path)),
                                         capture_stdout=True)
        everything = await trio.run_process(userstack("ss", "-ao", "--control", str(path)),
                                            capture_stdout=True)
        listening = await trio.run_process(userstack("ss", "-l", "--control", str(path)),
                                           capture_stdout=True)
        nursery.cancel_scope.cancel()
    assert [line.split()[0] for line in default.stdout.decode().splitlines()] == ["State", "ESTAB"]
    assert "timer:(timewait,3min58sec,0)" in everything.stdout.decode()
    assert len(everything.stdout.decode().splitlines()) == 1 + len(ALL)
    assert listening.stdout.decode().splitlines()[1].startswith("LISTEN")


def test_ss_without_a_stack_fails_clearly(tmp_path: Path) -> None:
    result = subprocess.run(userstack("ss", "--control", str(tmp_path / "none.sock")),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "is `userstack serve` running?" in result.stderr


# What `userstack ss` must not load (userstack.__main__): the rest of the command line and the
# stack it runs. The import contract holds cli_ss to it; this holds the front door to it.
_NOT_FOR_SS = ("userstack.cli", "userstack.demo", "userstack.apps", "userstack.streams",
               "userstack.driver", "userstack.link", "userstack.stack", "userstack.observe.ladder")


def test_ss_loads_only_what_it_needs(tmp_path: Path) -> None:
    """`userstack ss` starts in a fraction of the whole command line's time (a user types it
    while a timer counts down); `userstack serve` still gets everything."""
    script = ("import sys\nfrom userstack.__main__ import main\n"
              "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as exit:\n"
              "    status = exit.code\n"
              "print(status, *sorted(m for m in sys.modules if m.startswith('userstack')))")
    ss = subprocess.run([sys.executable, "-c", script, "ss", "--control", str(tmp_path / "none")],
                        capture_output=True, text=True, timeout=30)
    status, *loaded = ss.stdout.split()
    assert status == "1" and "is `userstack serve` running?" in ss.stderr  # it did run
    assert "userstack.cli_ss" in loaded
    assert [m for m in loaded if m in _NOT_FOR_SS or m.startswith(tuple(
        f"{package}." for package in _NOT_FOR_SS))] == []
    whole = subprocess.run([sys.executable, "-c", script, "serve", "--port", "0"],
                           capture_output=True, text=True, timeout=30)
    assert whole.stdout.split()[0] == "2" and "userstack.cli" in whole.stdout.split()


def test_ss_help_is_the_same_through_the_front_door() -> None:
    """The front door's own `ss` parser is the whole command line's `ss` subcommand."""
    fast, whole = (subprocess.run([sys.executable, "-m", module, "ss", "--help"],
                                  capture_output=True, text=True, timeout=30, check=True).stdout
                   for module in ("userstack", "userstack.cli"))
    assert fast == whole and "STATE FILTER" in fast


async def ss_lines(path: Path, *flags: str) -> list[str]:
    result = await trio.run_process(userstack("ss", *flags, "--control", str(path)),
                                    capture_stdout=True, capture_stderr=True)
    assert b"Traceback" not in result.stderr
    return result.stdout.decode().splitlines()


async def test_ss_takes_the_flags_ss_users_type(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    async with serving(path, ALL):
        tano = await ss_lines(path, "-tano")  # the command the demo prints
        tulpen = await ss_lines(path, "-tulpen")
        time_wait = await ss_lines(path, "-t", "state", "time-wait")
        listening = await ss_lines(path, "-tn", "state", "listening")
        udp = await ss_lines(path, "-u")
        summary = await ss_lines(path, "-s")
    assert len(tano) == 1 + len(ALL) and "timer:(timewait,3min58sec,0)" in tano[-1]
    assert tulpen[0].split()[:2] == ["Netid", "State"] and tulpen[0].endswith("Process")
    assert tulpen[1].startswith("tcp   LISTEN")
    assert f'users:(("python",pid={os.getpid()},fd=' not in tulpen[1]  # not ours: the server's
    assert "pid=" in tulpen[1] and tulpen[1].endswith(f"uid:{os.getuid()}")
    assert [line.split()[0] for line in time_wait] == ["State", "TIME-WAIT"]
    assert [line.split()[0] for line in listening] == ["State", "LISTEN"]
    assert udp == ["State Recv-Q Send-Q Local Address:Port Peer Address:Port"]  # no UDP here
    assert summary[:2] == ["Total: 4", "TCP:   4 (estab 1, closed 0, timewait 1)"]


async def test_ss_prints_100000_rows(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    async with serving(path, many_rows(100_000)):
        with trio.fail_after(120):
            lines = await ss_lines(path, "-tanH")
    assert len(lines) == 100_000
    assert len({line.split()[4] for line in lines}) == 100_000  # every peer once

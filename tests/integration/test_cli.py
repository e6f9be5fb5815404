"""The command line without a TUN: argument parsing, and `userstack ss` against a control socket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio
from observe.test_ss import ALL

from userstack.cli import build_parser, tcp_config
from userstack.control import serve_control
from userstack.tcp.info import TcbInfo


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve", "http"])
    assert (args.tun, str(args.addr), str(args.host_addr), args.mtu) == (
        "us0", "10.0.0.2", "10.0.0.1/24", 1500)
    assert args.port is None and not args.trace and args.pcap is None
    assert tcp_config(args).mss == 1460
    assert args.offload  # on where the kernel accepts it
    assert not build_parser().parse_args(["serve", "http", "--no-offload"]).offload
    assert args.queues == 1  # one stack; --queues N runs N (userstack.workers)


def test_connect_flags() -> None:
    args = build_parser().parse_args(
        ["connect", "10.0.0.1", "5555", "--mtu", "1000", "--msl", "1", "--loss", "0.1",
         "--delay", "20", "--seed", "3", "-w", "2"])
    config = tcp_config(args)
    assert (config.mss, config.msl) == (960, 1.0)
    assert (args.loss, args.delay, args.seed, args.timeout) == (0.1, 20.0, 3, 2.0)


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
    return [sys.executable, "-m", "userstack.cli", *argv]


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

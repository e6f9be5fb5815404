"""Bad input to the real `userstack` command: an exit status, one line that says what is
valid, and never a traceback.

The first table is refused while parsing, before anything touches the network; the
second gets past parsing and is refused against the namespace (its routes and devices).
Both run in a private namespace all the same, so that an input wrongly accepted cannot
make a TUN on the host; so do the tests with a `serve` already running.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from userstack.cli import build_parser

from .helpers import PATIENCE, READY, Served, wait_until

_SCRIPT = Path(sys.executable).with_name("userstack")  # the console script pip installed
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "userstack"]


def run(*argv: str, stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*COMMAND, *argv], input=stdin.decode(), capture_output=True,
                            text=True, timeout=timeout)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def assert_refused(result: subprocess.CompletedProcess[str], status: int, message: str) -> None:
    """Exit `status`, and one line of stderr matches `message`."""
    lines = [line for line in result.stderr.splitlines() if re.search(message, line)]
    assert result.returncode == status and lines, (result.returncode, result.stderr)


REFUSED_WHILE_PARSING = [
    (["serve", "echo", "--mtu", "100000"], r"--mtu: 100000 is out of range 128-65535"),
    (["serve", "echo", "--mtu", "68"], r"out of range 128-65535: IPv4 needs 68 \(RFC 791\)"),
    (["serve", "echo", "--mtu", "1500.5"], r"--mtu: '1500.5' is not an MTU \(128-65535\)"),
    (["serve", "echo", "--port", "0"], r"--port: 0 is not a TCP port \(1-65535\)"),
    (["serve", "echo", "--port", "http"], r"'http' is not a TCP port \(1-65535\)"),
    (["connect", "10.0.0.1", "70000"], r"70000 is not a TCP port \(1-65535\)"),
    (["connect", "nohost", "80"], r"'nohost' is not an IPv4 or IPv6 address \(like 10.0.0.1 or"),
    (["serve", "echo", "--addr6", "fd00::zz"], r"not an IPv6 address \(like fd00::2\)"),
    (["serve", "echo", "--host-addr6", "fd00::1"], r"needs a prefix length, like fd00::1/64"),
    (["serve", "echo", "--addr", "10.0.0.300"], r"not an IPv4 address"),
    (["serve", "echo", "--host-addr", "10.0.0.1"], r"needs a prefix length.*10.0.0.1/24"),
    (["serve", "echo", "--host-addr", "10.0.0.1/33"], r"not an IPv4 address with a prefix"),
    (["serve", "echo", "--host-addr", "10.0.0.1/32"], r"no address for the stack.*/0 to /31"),
    (["serve", "echo", "--loss", "2"], r"--loss: 2 is not a probability in \[0, 1\]"),
    (["serve", "echo", "--dup", "often"], r"'often' is not a probability in \[0, 1\]"),
    (["serve", "echo", "--corrupt", "nan"], r"nan is not a probability in \[0, 1\]"),
    (["serve", "echo", "--reorder", "-0.1"], r"is not a probability in \[0, 1\]"),
    (["serve", "echo", "--delay", "-5"], r"--delay: -5 is not a delay in milliseconds \(>= 0\)"),
    (["serve", "echo", "--msl", "0"], r"--msl: 0 is not a number of seconds \(> 0\)"),
    (["connect", "10.0.0.1", "7", "-w", "inf"], r"inf is not a number of seconds \(> 0\)"),
    (["serve", "echo", "--seed", "x"], r"--seed: 'x' is not an integer seed"),
    (["serve", "echo", "--tun", "a-name-too-long0"], r"not a TUN name: 1 to 15 bytes"),
    (["serve", "echo", "--tun", "us/0"], r"not a TUN name: .*without '/'"),
    (["serve", "echo", "--control", "/" + "x" * 120], r"not a Unix socket path of 1 to 107"),
    (["serve", "gopher"], r"invalid choice: 'gopher'"),
    (["serve", "echo", "--queues", "0"], r"--queues: 0 is not a number of queues \(1-64\)"),
    (["serve", "echo", "--queues", "many"], r"'many' is not a number of queues \(1-64\)"),
    (["demo", "--msl", "-1"], r"--msl: -1 is not a number of seconds \(> 0\)"),
    (["ss", "-x"], r"unrecognized arguments: -x"),
    ([], r"the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), REFUSED_WHILE_PARSING,
                         ids=[" ".join(argv) or "nothing" for argv, _ in REFUSED_WHILE_PARSING])
def test_refused_while_parsing(netns: object, argv: list[str], message: str) -> None:
    assert_refused(run(*argv), 2, message)


def test_a_bad_state_filter_names_the_valid_ones(tmp_path: Path) -> None:
    result = run("ss", "-t", "state", "estab1ished", "--control", str(tmp_path / "none.sock"))
    assert_refused(result, 2, r"`state` takes one of all, connected, .*time-wait")


def test_ss_without_a_stack(tmp_path: Path) -> None:
    result = run("ss", "-tano", "--control", str(tmp_path / "none.sock"))
    assert_refused(result, 1, r"no stack answers on .*is `userstack serve` running\?")


def test_version_and_help_for_every_option() -> None:
    assert re.fullmatch(r"userstack \d+\.\d+\.\d+\n", run("--version").stdout)
    assert "drop each packet with probability P" in run("serve", "--help").stdout
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("userstack", parser), *commands.choices.items()]:
        for action in sub._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{name} {'/'.join(action.option_strings) or action.dest}"


# ---- refused against the namespace ---------------------------------------------------------

REFUSED_BY_THE_NAMESPACE = [
    (["serve", "echo", "--addr", "10.0.1.5"],
     r"--addr 10.0.1.5 must be a host of 10.0.0.0/24 \(10.0.0.1-10.0.0.254\) other than the "
     r"kernel's 10.0.0.1"),
    (["serve", "echo", "--addr", "10.0.0.1"], r"must be a host of 10.0.0.0/24"),
    (["serve", "echo", "--addr", "10.0.0.255"], r"must be a host of 10.0.0.0/24"),
    (["serve", "echo", "--tun", "lo"],
     r"a network device named lo exists already .*; try --tun us0 --host-addr 10.0.0.1/24"),
    (["serve", "echo", "--pcap", "/nonexistent/capture.pcap"],
     r"cannot write --pcap /nonexistent/capture.pcap: .*No such file or directory"),
    (["serve", "echo", "--control", "/proc/none/us0.sock"],
     r"cannot make the control socket's directory"),
    (["serve", "echo", "--addr6", "fd00::2"], r"--addr6 and --host-addr6 go together"),
    (["serve", "echo", "--addr6", "fd01::2", "--host-addr6", "fd00::1/64"],
     r"--addr6 fd01::2 must be another address of --host-addr6's subnet fd00::/64"),
    (["serve", "echo", "--addr6", "fd00::2", "--host-addr6", "fd00::1/64", "--mtu", "1279"],
     r"IPv6 needs --mtu 1280 or more"),
    (["serve", "echo", "--addr6", "fd00::2", "--host-addr6", "fd00::1/64", "--queues", "2"],
     r"--addr6 does not work with --queues yet"),
]


@pytest.mark.parametrize(("argv", "message"), REFUSED_BY_THE_NAMESPACE,
                         ids=[" ".join(argv) for argv, _ in REFUSED_BY_THE_NAMESPACE])
def test_refused_by_the_namespace(netns: object, argv: list[str], message: str) -> None:
    assert_refused(run(*argv), 1, message)


def test_a_subnet_routed_elsewhere_is_named(netns: object) -> None:
    subprocess.run(["ip", "route", "add", "10.0.0.0/24", "dev", "lo"], check=True, timeout=10)
    assert_refused(run("serve", "echo"), 1,
                   r"10.0.0.0/24 is already routed \(10.0.0.0/24 dev lo\), so the stack behind "
                   r"us0 could not be reached; try --tun us1 --host-addr 10.0.1.1/24")


def hinted_flags(stderr: str) -> list[str]:
    found = re.search(r"; try (--tun \S+ --host-addr \S+ --addr \S+)$", stderr, re.MULTILINE)
    assert found, stderr
    return found[1].split()


def test_a_second_serve_gets_a_hint_that_works(
    serve: Callable[..., Served], workdir: Path,
) -> None:
    serve("echo")  # us0, 10.0.0.0/24
    control = ["--control", str(workdir / "second.sock")]
    same_tun = run("serve", "echo", *control)
    assert_refused(same_tun, 1, r"a network device named us0 exists already")
    same_subnet = run("serve", "echo", "--tun", "us1", *control)
    assert_refused(same_subnet, 1, r"10.0.0.0/24 is already routed \(10.0.0.0/24 dev us0\)")
    flags = hinted_flags(same_subnet.stderr)
    assert flags == hinted_flags(same_tun.stderr) == [
        "--tun", "us1", "--host-addr", "10.0.1.1/24", "--addr", "10.0.1.2"]

    second = subprocess.Popen([*COMMAND, "serve", "echo", *flags, *control],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert second.stderr is not None
        assert READY in second.stderr.readline()
        with socket.create_connection(("10.0.1.2", 7), timeout=10) as sock:
            sock.sendall(b"through the hint\n")
            assert sock.recv(100) == b"through the hint\n"
    finally:
        second.terminate()
        assert second.wait(timeout=15) == 0


def test_connect_beside_serve_picks_its_own_tun(serve: Callable[..., Served]) -> None:
    serve("discard")  # us0 and 10.0.0.0/24 are taken; the kernel is 10.0.0.1
    with socket.create_server(("10.0.0.1", 7000)) as listener:
        listener.settimeout(20)
        client = subprocess.Popen([*COMMAND, "connect", "10.0.0.1", "7000"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            peer, _ = listener.accept()
            with peer:
                peer.settimeout(20)
                peer.sendall(b"from the kernel\n")
                peer.shutdown(socket.SHUT_WR)  # our FIN: connect ends when both sides have
                out, err = client.communicate(b"from connect\n", timeout=20)
                received = b""
                while data := peer.recv(100):
                    received += data
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    assert received == b"from connect\n"
    assert out == b"from the kernel\n" and client.returncode == 0, err
    assert b"running on --tun us1 --host-addr 10.0.1.1/24 --addr 10.0.1.2" in err
    assert b"Traceback" not in err


def test_connect_to_another_stack_says_the_kernel_must_forward(
    serve: Callable[..., Served],
) -> None:
    served = serve("echo")  # the stack 10.0.0.2 behind us0
    result = run("connect", "10.0.0.2", "7", "-w", "1")
    assert_refused(result, 1, r"10.0.0.2 is behind us0 .*sysctl -w net.ipv4.ip_forward=1")
    subprocess.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=10)
    forwarded = run("connect", "10.0.0.2", "7", stdin=b"forwarded\n")
    assert (forwarded.returncode, forwarded.stdout) == (0, "forwarded\n"), forwarded.stderr
    wait_until(lambda: "ESTAB" not in served.ss(), PATIENCE, "the echo connection to close")

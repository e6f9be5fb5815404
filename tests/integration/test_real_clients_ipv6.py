"""The real-peer suite over IPv6: curl -6, nc -6, ping -6 and kernel AF_INET6 sockets against
`userstack serve --addr6 fd00::2 --host-addr6 fd00::1/64`, each in its own namespace.

The kernel sends its IPv6 chatter (router solicitations, MLD reports) into the TUN as soon
as it is up; the stack counts and drops it, and nothing here depends on its timing.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import PATIENCE, STACK, Served, userstack_argv, wait_until
from .test_close_and_ss import (
    REQUEST,
    close_shapes,
    kernel_states,
    read_response,
    read_to_eof,
    stack_states,
)
from .test_real_clients import (
    TEN_MB,
    curl,
    exchange_with_kernel_listener,
    pattern_sha256,
    random_file,
    refused_at_once,
)

STACK6, HOST6 = "fd00::2", "fd00::1"
DUAL = ("--addr6", STACK6, "--host-addr6", f"{HOST6}/64")


@pytest.fixture
def serve6(serve: Callable[..., Served]) -> Callable[..., Served]:
    """`serve` with the stack's IPv6 address and the kernel's on the TUN."""

    def start(app: str, *flags: str, pcap: bool = False) -> Served:
        return serve(app, *DUAL, *flags, pcap=pcap)

    return start


def test_serving_line_names_both_families(serve6: Callable[..., Served]) -> None:
    served = serve6("echo")
    assert f"serving echo on {STACK}:7 and [{STACK6}]:7" in served.stderr


def test_curl_downloads_ten_megabytes(serve6: Callable[..., Served], workdir: Path) -> None:
    serve6("http", "--port", "8080")
    out = workdir / "body"
    result = curl("-6", "-o", str(out), f"http://[{STACK6}]:8080/bytes/{TEN_MB}")
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(TEN_MB)


def test_curl_uploads_ten_megabytes(serve6: Callable[..., Served], workdir: Path) -> None:
    serve6("http", "--port", "8080")
    digest = random_file(workdir / "upload")
    result = curl("-6", "--data-binary", f"@{workdir / 'upload'}", f"http://[{STACK6}]:8080/upload")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"length": TEN_MB, "sha256": digest}


def test_ipv4_still_works_beside_it(serve6: Callable[..., Served]) -> None:
    serve6("http", "--port", "8080")
    result = curl("-w", "\n%{http_code}", f"http://{STACK}:8080/")
    assert result.returncode == 0 and result.stdout.endswith(b"\n200"), result.stderr


def test_the_page_shows_the_ipv6_tcb(serve6: Callable[..., Served]) -> None:
    serve6("http", "--port", "8080")
    result = curl("-6", "-w", "\n%{local_port}", f"http://[{STACK6}]:8080/")
    assert result.returncode == 0, result.stderr
    page, _, local_port = result.stdout.decode().rpartition("\n")
    assert "<th>state</th><td>ESTABLISHED</td>" in page
    assert f"[{HOST6}]:{local_port}" in page


def test_closed_port_is_refused_at_once(serve6: Callable[..., Served]) -> None:
    serve6("http", "--port", "8080")
    refused_at_once(f"http://[{STACK6}]:8081/", "-6")


def test_ping6_gets_three_replies(serve6: Callable[..., Served]) -> None:
    serve6("echo")
    result = subprocess.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", STACK6],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received" in result.stdout


@pytest.mark.parametrize("family", ["-4", "-6"])
def test_fragmented_pings_are_reassembled(serve6: Callable[..., Served], family: str) -> None:
    """3000 bytes of ping data do not fit the TUN's 1500: the kernel fragments the
    request, the stack reassembles it (RFC 791, RFC 8200 4.5) and answers in one packet."""
    serve6("echo")
    target = STACK6 if family == "-6" else STACK
    result = subprocess.run(
        ["ping", family, "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", "-M", "dont", target],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 packets transmitted, 2 received" in result.stdout


def test_nc6_uploads_ten_megabytes_to_discard(
    serve6: Callable[..., Served], workdir: Path
) -> None:
    served = serve6("discard")
    random_file(workdir / "upload")
    with (workdir / "upload").open("rb") as stdin:
        result = subprocess.run(["nc", "-6", "-N", STACK6, "9"], stdin=stdin,
                                capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert served.proc.poll() is None


def test_kernel_socket_echo_and_the_handshake_in_the_trace(
    serve6: Callable[..., Served],
) -> None:
    served = serve6("echo", "--trace")
    with socket.create_connection((STACK6, 7), timeout=10) as sock:
        assert sock.family == socket.AF_INET6
        port = sock.getsockname()[1]
        sock.sendall(b"hello over IPv6")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_eof(sock) == b"hello over IPv6"
    wait_until(lambda: kernel_states(port) == ["TIME-WAIT"], PATIENCE, "the kernel's TIME-WAIT")
    assert served.stop() == 0
    trace = served.stdout
    for flags in (r"\[S\]", r"\[S\.\]", r"\[\.\]"):  # the three-way handshake
        assert re.search(rf"IP6 {HOST6}\.{port} > {STACK6}\.7: Flags {flags}|"
                         rf"IP6 {STACK6}\.7 > {HOST6}\.{port}: Flags {flags}", trace), flags
    assert f"[{STACK6}]:7 [{HOST6}]:{port} LISTEN -> SYN-RECEIVED" in trace
    assert re.search(rf"IP6 {STACK6}\.7 > {HOST6}\.{port}: Flags \[S\.\].*mss 1440", trace)


def test_both_close_shapes_and_time_wait(serve6: Callable[..., Served]) -> None:
    served = serve6("http", "--port", "8080", "--msl", "30", pcap=True)
    # The stack closes first (Connection: close): four-way, the stack ends in TIME-WAIT.
    sock = socket.create_connection((STACK6, 8080), timeout=10)
    stack_first = sock.getsockname()[1]
    sock.sendall(REQUEST % b"Connection: close\r\n")
    assert read_to_eof(sock).startswith(b"HTTP/1.1 200")
    wait_until(lambda: stack_states(served, stack_first) == ["FIN-WAIT-2"], PATIENCE, "FIN-WAIT-2")
    sock.close()
    wait_until(lambda: stack_states(served, stack_first) == ["TIME-WAIT"], PATIENCE, "TIME-WAIT")
    row = next(r for r in served.ss("-a").splitlines() if f":{stack_first}" in r)
    assert f"[{STACK6}]:8080" in row and f"[{HOST6}]:{stack_first}" in row  # as ss writes it
    # The kernel closes an idle connection first: the kernel ends in TIME-WAIT.
    sock = socket.create_connection((STACK6, 8080), timeout=10)
    kernel_first = sock.getsockname()[1]
    sock.sendall(REQUEST % b"")
    assert read_response(sock).startswith(b"HTTP/1.1 200")
    sock.close()
    wait_until(lambda: kernel_states(kernel_first) == ["TIME-WAIT"], PATIENCE, "kernel TIME-WAIT")
    wait_until(lambda: stack_states(served, kernel_first) == [], PATIENCE, "the stack's TCB to go")
    listen_rows = [r for r in served.ss("-l").splitlines() if "LISTEN" in r]
    assert any(f"[{STACK6}]:8080" in r and "[::]:*" in r for r in listen_rows), listen_rows
    assert served.stop() == 0
    shapes = close_shapes(served.pcap, STACK6)
    assert shapes[stack_first] == "four-way", shapes
    assert shapes[kernel_first] in {"three-way", "four-way"}, shapes


def test_connect6_talks_to_a_kernel_listener(workdir: Path, netns: object) -> None:
    exchange_with_kernel_listener(workdir, HOST6, *DUAL)


def test_connect6_refused_like_nc(workdir: Path, netns: object) -> None:
    result = subprocess.run(
        userstack_argv("connect", HOST6, "5556", *DUAL, "--control", str(workdir / "ctl.sock")),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert f"connect to {HOST6} port 5556 (tcp) failed: Connection refused" in result.stderr

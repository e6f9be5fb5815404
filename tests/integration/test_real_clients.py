"""Real clients (curl, nc, ping, kernel sockets) against `userstack serve` over a TUN.

Each test runs in its own network namespace (the `netns` fixture), so nothing here can
touch the host's network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from userstack.apps.simple import chargen_cycle

from .helpers import HOST, PATIENCE, STACK, Served, userstack_argv, wait_until

TEN_MB = 10_000_000


def pattern_sha256(n: int) -> str:
    """sha256 of /bytes/N's body: byte i is i % 256 (computed here, independently)."""
    block = bytes(range(256)) * 4096  # 1 MiB, a whole number of periods
    digest = hashlib.sha256()
    for start in range(0, n, len(block)):
        digest.update(block[: min(len(block), n - start)])
    return digest.hexdigest()


def random_file(path: Path, n: int = TEN_MB) -> str:
    data = os.urandom(n)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def curl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args],
                          capture_output=True, timeout=timeout + 10)


def test_http_page_shows_the_connection_tcb(serve: Callable[..., Served]) -> None:
    serve("http", "--port", "8080")
    result = curl("-w", "\n%{http_code} %{local_port}", f"http://{STACK}:8080/")
    assert result.returncode == 0, result.stderr
    page, _, trailer = result.stdout.decode().rpartition("\n")
    status, local_port = trailer.split()
    assert status == "200"
    assert "<th>state</th><td>ESTABLISHED</td>" in page
    assert f"{HOST}:{local_port}" in page  # the TCB of this very connection
    assert re.search(r"<th>snd_nxt</th><td>\d+</td>", page)


def test_http_bytes_delivers_ten_megabytes(serve: Callable[..., Served], workdir: Path) -> None:
    serve("http", "--port", "8080")
    out = workdir / "body"
    result = curl("-o", str(out), f"http://{STACK}:8080/bytes/{TEN_MB}")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size == TEN_MB
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(TEN_MB)


def test_http_upload_reports_sha256(serve: Callable[..., Served], workdir: Path) -> None:
    serve("http", "--port", "8080")
    digest = random_file(workdir / "upload")
    result = curl("--data-binary", f"@{workdir / 'upload'}", f"http://{STACK}:8080/upload")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"length": TEN_MB, "sha256": digest}


def refused_at_once(url: str, *flags: str) -> None:
    """curl gets our RST to its first SYN: it fails before its kernel would resend the SYN
    (the initial RTO, 1 s), by curl's own clock (its start-up, slow on a loaded machine, is
    not in it)."""
    result = curl(*flags, "-w", "%{time_total}", url, timeout=10)
    assert result.returncode == 7, result.stderr  # curl: "Failed to connect"
    assert b"Connection refused" in result.stderr or b"Couldn't connect" in result.stderr
    assert float(result.stdout) < 1.0


def test_closed_port_is_refused_at_once(serve: Callable[..., Served]) -> None:
    serve("http", "--port", "8080")
    refused_at_once(f"http://{STACK}:8081/")


def test_nc_uploads_ten_megabytes_to_discard(serve: Callable[..., Served], workdir: Path) -> None:
    served = serve("discard")
    random_file(workdir / "upload")
    with (workdir / "upload").open("rb") as stdin:
        result = subprocess.run(["nc", "-N", STACK, "9"], stdin=stdin, capture_output=True,
                                timeout=120)
    # discard closes only after reading our FIN, which follows every byte in sequence
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert served.proc.poll() is None


def test_nc_receives_chargen(serve: Callable[..., Served]) -> None:
    serve("chargen")
    cycle = chargen_cycle()
    want = 20 * len(cycle) + 123
    nc = subprocess.Popen(["nc", "-d", STACK, "19"], stdout=subprocess.PIPE)
    try:
        assert nc.stdout is not None
        got = bytearray()
        while len(got) < want:
            chunk = nc.stdout.read1(65536)
            assert chunk, "chargen stopped early"
            got += chunk
    finally:
        nc.kill()
        nc.wait()
    assert bytes(got[:want]) == (cycle * 21)[:want]


def exchange_with_kernel_listener(workdir: Path, host: str, *flags: str) -> None:
    """`userstack connect HOST 5555 FLAGS` to a kernel `nc -l` (nc -6 for an IPv6 host):
    a megabyte each way, both sha256-checked."""
    to_kernel = random_file(workdir / "to_kernel", 1_000_000)
    to_stack = random_file(workdir / "to_stack", 1_000_000)
    family = ["-6"] if ":" in host else []
    with (workdir / "to_stack").open("rb") as nc_in, (workdir / "nc_out").open("wb") as nc_out:
        listener = subprocess.Popen(["nc", *family, "-l", "-N", "5555"], stdin=nc_in,
                                    stdout=nc_out)
    try:
        with (workdir / "to_kernel").open("rb") as stdin:
            result = subprocess.run(
                userstack_argv("connect", host, "5555", *flags,
                               "--control", str(workdir / "ctl.sock")),
                stdin=stdin, capture_output=True, timeout=60,
            )
        assert result.returncode == 0, result.stderr
        assert listener.wait(timeout=30) == 0
    finally:
        listener.kill()
    assert hashlib.sha256(result.stdout).hexdigest() == to_stack
    assert hashlib.sha256((workdir / "nc_out").read_bytes()).hexdigest() == to_kernel


def test_connect_talks_to_a_kernel_listener(workdir: Path, netns: object) -> None:
    exchange_with_kernel_listener(workdir, HOST)


@dataclass(frozen=True)
class SynSent:
    """A failed active open as `--trace` told it (on stderr for `connect`), timed by the
    trace's stamps: the stack's own clock, which the CLI's start-up and exit are not on."""

    failure: str  # what `connect` said (after "userstack: "), as nc says it
    lasted: float  # seconds from CLOSED -> SYN-SENT to SYN-SENT -> CLOSED
    syns: int  # SYN segments sent: the first and its retransmissions

    @classmethod
    def of(cls, trace: str, host: str, port: int) -> SynSent:
        def stamp(line: str) -> float:
            hours, minutes, secs = line.split()[0].split(":")
            return 3600 * int(hours) + 60 * int(minutes) + float(secs)

        lines = trace.splitlines()
        opened = next(stamp(line) for line in lines if line.endswith(" CLOSED -> SYN-SENT"))
        closed = next(stamp(line) for line in lines if line.endswith(" SYN-SENT -> CLOSED"))
        syns = sum(f" > {host}.{port}: Flags [S]," in line for line in lines)
        failure = next(line.removeprefix("userstack: ") for line in lines
                       if line.startswith("userstack: connect to "))
        return cls(failure, (closed - opened) % 86400, syns)  # the trace may pass midnight


def connect_attempt(workdir: Path, host: str, port: int, *flags: str) -> SynSent:
    """`userstack connect HOST PORT FLAGS --trace` that fails; its SYN-SENT, from the trace."""
    result = subprocess.run(
        userstack_argv("connect", host, str(port), *flags, "--trace",
                       "--control", str(workdir / "ctl.sock")),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1, result.stderr
    return SynSent.of(result.stderr, host, port)


def test_connect_refused_like_nc(workdir: Path, netns: object) -> None:
    attempt = connect_attempt(workdir, HOST, 5556)
    assert attempt.failure == f"connect to {HOST} port 5556 (tcp) failed: Connection refused"
    # the kernel's RST ends it at once: before the SYN's retransmission (RTO 1 s) was due
    assert attempt.syns == 1 and attempt.lasted < 1.0


def test_ping_gets_three_replies(serve: Callable[..., Served]) -> None:
    serve("echo")
    result = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", STACK],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 packets transmitted, 3 received" in result.stdout


def test_kernel_socket_echo(serve: Callable[..., Served]) -> None:
    serve("echo")
    with socket.create_connection((STACK, 7), timeout=10) as sock:
        sock.sendall(b"hello, userstack")
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while data := sock.recv(65536):
            got += data
    assert got == b"hello, userstack"


def test_connect_times_out_like_nc(workdir: Path, netns: object) -> None:
    # 10.0.0.3 is routed into the TUN but nobody answers there: the SYN goes unanswered.
    attempt = connect_attempt(workdir, "10.0.0.3", 80, "-w", "2")
    assert attempt.failure == "connect to 10.0.0.3 port 80 (tcp) failed: Connection timed out"
    # -w 2 gives up 2 s after the connect began, as nc -w 2 does (the SYN retries alone would
    # take minutes): after the SYN's first retransmission (RTO 1 s), before its second (3 s).
    # The -w deadline starts a moment before the SYN is sent, hence 1.9.
    assert attempt.syns == 2
    assert 1.9 <= attempt.lasted < 3.0


def test_sigterm_closes_connections_with_fin_and_removes_the_tun(
    serve: Callable[..., Served],
) -> None:
    served = serve("echo", "--trace")
    sock = socket.create_connection((STACK, 7), timeout=10)
    sock.sendall(b"ping")
    assert sock.recv(100) == b"ping"
    assert served.stop() == 0
    assert sock.recv(100) == b""  # an orderly FIN, not a reset
    sock.close()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert "us0" not in links.stdout
    trace = served.stdout  # --trace goes to stdout for serve
    assert "ESTABLISHED -> CLOSE-WAIT" not in trace  # we closed first
    assert "ESTABLISHED -> FIN-WAIT-1" in trace
    assert re.search(r"IP 10\.0\.0\.2\.7 > 10\.0\.0\.1\.\d+: Flags \[F\.\]", trace)


def test_connect_half_close_peer_first(workdir: Path, netns: object) -> None:
    """The kernel's side ends first; our data and FIN still get through before we exit."""
    control = workdir / "ctl.sock"
    with (workdir / "nc_out").open("wb") as nc_out:
        listener = subprocess.Popen(["nc", "-l", "-N", "5555"], stdin=subprocess.DEVNULL,
                                    stdout=nc_out)
    client = subprocess.Popen(
        userstack_argv("connect", HOST, "5555", "--control", str(control)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        def close_wait() -> bool:
            if not control.exists():
                return False
            ss = subprocess.run(userstack_argv("ss", "--control", str(control)),
                                capture_output=True, text=True, timeout=30)
            return "CLOSE-WAIT" in ss.stdout

        wait_until(close_wait, PATIENCE, "userstack connect to see the kernel's FIN")
        out, err = client.communicate(b"late words\n", timeout=30)
        assert client.returncode == 0, err
        assert out == b""
        assert listener.wait(timeout=10) == 0
    finally:
        client.kill()
        listener.kill()
    assert (workdir / "nc_out").read_bytes() == b"late words\n"

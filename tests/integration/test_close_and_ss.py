"""How connections end, seen in the --pcap capture, in `userstack ss` and in the kernel's ss."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from userstack.observe import closes

from .helpers import PATIENCE, STACK, Served, wait_until

REQUEST = b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n%b\r\n"


def read_to_eof(sock: socket.socket) -> bytes:
    out = b""
    while data := sock.recv(65536):
        out += data
    return out


def read_response(sock: socket.socket) -> bytes:
    """One whole response to REQUEST (its body is 1000 bytes), however it is segmented."""
    out = b""
    while not (b"\r\n\r\n" in out and len(out.split(b"\r\n\r\n", 1)[1]) >= 1000):
        data = sock.recv(65536)
        assert data, f"connection closed mid-response: {out!r}"
        out += data
    return out


def kernel_states(port: int) -> list[str]:
    """The kernel's own view (`ss -tanH`) of its end with local port `port`."""
    out = subprocess.run(["ss", "-tanH", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    return [line.split()[0] for line in out.splitlines()]


def stack_states(served: Served, port: int) -> list[str]:
    """userstack's view of its connections with the kernel's port `port`."""
    rows = served.ss("-a").splitlines()[1:]
    return [row.split()[0] for row in rows if row.split()[4].endswith(f":{port}")]


def close_shapes(pcap: Path, stack: str = STACK) -> dict[int, str]:
    """How each connection closed (userstack.observe.closes), by its kernel end's port."""
    return {(server if str(client.ip) == stack else client).port: shape
            for (client, server), shape in closes.close_shapes(pcap).items()}


def test_four_way_and_three_way_closes(serve: Callable[..., Served]) -> None:
    served = serve("http", "--port", "8080", "--msl", "30", pcap=True)
    stack_first, kernel_first = [], []
    for _ in range(2):
        # The stack closes first (Connection: close); the kernel's app waits until its ACK
        # has reached the stack (FIN-WAIT-2) before closing: FIN, ACK, FIN, ACK. The stack,
        # the active closer, ends in TIME-WAIT; the kernel's end goes from LAST-ACK to CLOSED.
        sock = socket.create_connection((STACK, 8080), timeout=10)
        port = sock.getsockname()[1]
        sock.sendall(REQUEST % b"Connection: close\r\n")
        assert read_to_eof(sock).startswith(b"HTTP/1.1 200")
        wait_until(lambda port=port: stack_states(served, port) == ["FIN-WAIT-2"], PATIENCE,
                   "FIN-WAIT-2")
        sock.close()
        stack_first.append(port)
        wait_until(lambda port=port: stack_states(served, port) == ["TIME-WAIT"], PATIENCE,
                   "TIME-WAIT")
        wait_until(lambda port=port: kernel_states(port) == [], PATIENCE,
                   "the kernel's LAST-ACK to end")

        # The kernel closes an idle keep-alive connection first; the server answers with its
        # own FIN at once, which carries the ACK of the kernel's FIN (the stack delays ACKs):
        # FIN, FIN+ACK, ACK. The kernel ends in TIME-WAIT, the stack's TCB is deleted.
        sock = socket.create_connection((STACK, 8080), timeout=10)
        port = sock.getsockname()[1]
        sock.sendall(REQUEST % b"")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.close()
        kernel_first.append(port)
        wait_until(lambda port=port: kernel_states(port) == ["TIME-WAIT"], PATIENCE,
                   "kernel TIME-WAIT")
        wait_until(lambda port=port: stack_states(served, port) == [], PATIENCE,
                   "the stack's TCB to go")

    assert served.stop() == 0  # flushes and closes the pcap
    shapes = close_shapes(served.pcap)
    assert {shapes[p] for p in stack_first} == {"four-way"}, shapes
    assert "three-way" in {shapes[p] for p in kernel_first}, shapes
    assert {shapes[p] for p in kernel_first} <= {"three-way", "four-way"}, shapes


@dataclass(frozen=True)
class TimeWaitSeen:
    """One `userstack ss -ao` that showed the TIME-WAIT row: the stack took its snapshot
    somewhere between `asked` and `answered` (time.monotonic(), the stack's clock too:
    trio's is CLOCK_MONOTONIC), and the timer then had `left` seconds to run."""

    asked: float
    answered: float
    left: float


def ss_seconds(text: str) -> float:
    """ss's time notation back to seconds: "7.998ms" is 7.998 s, "204ms", "3sec", "1min"."""
    parts = re.fullmatch(r"(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d+)ms)?", text)
    assert parts, text
    minutes, secs, msecs = (int(part or 0) for part in parts.groups())
    return 60 * minutes + secs + msecs / 1000


def test_ss_shows_estab_then_time_wait_with_its_timer(serve: Callable[..., Served]) -> None:
    msl = 4.0  # TIME-WAIT 8 s: several `userstack ss` runs fit in it on a loaded machine, and
    # below 10 s ss prints the time left to the millisecond
    served = serve("http", "--port", "8080", "--msl", str(msl))
    # A transfer the client does not read: the stack is ESTABLISHED with data queued.
    stalled = socket.create_connection((STACK, 8080), timeout=10)
    stalled.sendall(b"GET /bytes/100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    port = stalled.getsockname()[1]

    def estab_row() -> str | None:
        rows = [r for r in served.ss("-o").splitlines() if re.search(rf":{port}\b", r)]
        return rows[0] if rows and rows[0].startswith("ESTAB") and int(rows[0].split()[2]) else None

    row = wait_until(estab_row, PATIENCE, "an ESTAB row with a Send-Q")
    assert "timer:(" in row  # retransmission or persist timer running
    stalled.close()

    # The stack closes first (Connection: close) and enters TIME-WAIT for 2*MSL when our
    # FIN, which sock.close() sends, reaches it: so after `closing`.
    sock = socket.create_connection((STACK, 8080), timeout=10)
    port = sock.getsockname()[1]
    sock.sendall(REQUEST % b"Connection: close\r\n")
    read_to_eof(sock)
    closing = time.monotonic()
    sock.close()

    def time_wait_seen() -> TimeWaitSeen | None:
        asked = time.monotonic()
        rows = [r for r in served.ss("-ao").splitlines() if re.search(rf":{port}\b", r)]
        answered = time.monotonic()
        if not (rows and rows[0].startswith("TIME-WAIT")):
            return None
        timer = re.search(r"timer:\(timewait,([^,]*),0\)", rows[0])
        assert timer, rows[0]
        return TimeWaitSeen(asked, answered, ss_seconds(timer[1]))

    first = wait_until(time_wait_seen, PATIENCE, "a TIME-WAIT row")
    # the whole 2*MSL from its start, which came after `closing`, less what has passed since
    assert 2 * msl - (first.answered - closing) - 0.001 <= first.left <= 2 * msl
    assert "TIME-WAIT" not in served.ss("-o")  # like ss: not a "connected" state by default
    second = time_wait_seen()
    assert second is not None, "TIME-WAIT ended too early"
    # The timer counts down with the clock: between the two snapshots it lost as much time
    # as passed between them (each snapshot lies within its own ss's span), to the
    # millisecond ss shows, or all it had left (a row the stack has not yet woken to remove
    # shows 0 left).
    passed_at_least = second.asked - first.answered
    assert min(passed_at_least, first.left) - 0.002 <= first.left - second.left
    assert first.left - second.left <= second.answered - first.asked + 0.002

    def gone() -> float | None:
        """When a `userstack ss -a` that no longer shows the connection had answered."""
        shown = re.search(rf":{port}\b", served.ss("-a"))
        return None if shown else time.monotonic()

    expired = wait_until(gone, PATIENCE, "TIME-WAIT to expire")
    # It lasted its whole 2*MSL (it began after `closing`) and ran out no earlier than the
    # timer said; how much later depends on how loaded the machine is, so that is not asked.
    assert expired - closing >= 2 * msl
    assert expired - first.asked >= first.left - 0.001

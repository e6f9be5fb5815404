"""`userstack ss` against a real `userstack serve` with hundreds of kernel clients."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable

from .helpers import PATIENCE, STACK, Served, wait_until
from .test_ecn_kernel import kernel_ecn_on
from .test_queues import worker_pids

CLIENTS = 300  # ~15 times what broke the 4,096-byte reader


def test_ss_shows_every_connection_its_process_and_the_counters(
    serve: Callable[..., Served],
) -> None:
    served = serve("echo", "--port", "7")
    clients = [socket.create_connection((STACK, 7), timeout=10) for _ in range(CLIENTS)]
    try:
        ports = {sock.getsockname()[1] for sock in clients}

        def all_established() -> list[str] | None:
            rows = served.ss("-tanH", "state", "established").splitlines()
            return rows if len(rows) == CLIENTS else None

        rows = wait_until(all_established, PATIENCE, f"{CLIENTS} ESTAB rows")
        assert {int(row.split()[4].rpartition(":")[2]) for row in rows} == ports

        listener = served.ss("-tlpn").splitlines()
        assert listener[0].endswith("Process")
        users = re.search(r'users:\(\("[^"]+",pid=(\d+),fd=(\d+)\)\)', listener[1])
        assert users is not None, listener
        pid, fd = int(users[1]), int(users[2])
        assert pid == served.proc.pid
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/net/tun"  # the TUN it serves on

        summary = served.ss("-s").splitlines()
        assert summary[1].startswith(f"TCP:   {CLIENTS + 1} (estab {CLIENTS},")
        counters = dict(line.split() for line in summary if line.startswith("  "))
        assert int(counters["packets_in"]) >= 2 * CLIENTS  # each client's SYN and ACK
        assert counters["internal_errors"] == counters["connection_bugs"] == "0"
    finally:
        for sock in clients:
            sock.close()


def test_with_two_queues_each_row_names_its_own_worker(serve: Callable[..., Served]) -> None:
    served = serve("echo", "--port", "7", "--queues", "2")
    workers = set(worker_pids(served))
    clients = [socket.create_connection((STACK, 7), timeout=10) for _ in range(40)]
    try:
        def rows() -> list[str] | None:
            found = served.ss("-tnpH", "state", "established").splitlines()
            return found if len(found) == len(clients) else None

        pids = {int(pid) for row in wait_until(rows, PATIENCE, "every ESTAB row")
                for pid in re.findall(r",pid=(\d+),", row)}
        assert pids == workers, (pids, workers)  # 40 clients: both queues, 2**-39 otherwise
        listeners = served.ss("-tlpnH").splitlines()
        assert {int(re.findall(r",pid=(\d+),", row)[0]) for row in listeners} == workers
        summary = served.ss("-s").splitlines()
        assert summary[1].startswith(f"TCP:   {len(clients) + 2} (estab {len(clients)},")
    finally:
        for sock in clients:
            sock.close()


def info_line(text: str) -> list[str]:
    """The words of the one tab-indented line (ss -i's) in `text`."""
    [line] = [line for line in text.splitlines() if line.startswith("\t")]
    return line.split()


def test_ss_io_shows_what_the_syns_agreed_as_the_kernels_own_ss_does(
    serve: Callable[..., Served],
) -> None:
    """A kernel client with ECN on (this namespace's net.ipv4.tcp_ecn=1) and userstack's
    defaults: both `userstack ss -tnoi` and the kernel's `ss -tnoi` for its own socket
    say ts sack ecn ecnseen, and the same window shifts, each seen from its own end; with
    `serve --no-timestamps` neither says ts."""
    kernel_ecn_on()
    for flags, ts in (((), True), (("--no-timestamps",), False)):
        served = serve("echo", "--port", "7", *flags)
        with socket.create_connection((STACK, 7), timeout=10) as sock:
            sock.sendall(b"i" * 50_000)  # data both ways: ECT(0) each way, ecnseen
            got = b""
            while len(got) < 50_000:
                got += sock.recv(65536)
            ours = info_line(served.ss("-tnoiH", "state", "established"))
            theirs = info_line(subprocess.run(
                ["ss", "-tnoiH", "state", "established", "dst", STACK], capture_output=True,
                text=True, timeout=10, check=True).stdout)
        assert served.stop() == 0
        agreed = ["ts"] * ts + ["sack", "ecn", "ecnseen"]
        assert ours[:len(agreed)] == agreed and theirs[:len(agreed)] == agreed, (ours, theirs)
        assert ours[len(agreed)] == "newreno"
        [our_shifts] = [w for w in ours if w.startswith("wscale:")]
        [kernel_shifts] = [w for w in theirs if w.startswith("wscale:")]
        snd, rcv = our_shifts.removeprefix("wscale:").split(",")
        assert kernel_shifts == f"wscale:{rcv},{snd}"  # its send shift is our receive shift
        assert any(w.startswith("rtt:") for w in ours)
        assert f"mss:{1460 - 12 * ts}" in ours  # 1500 - 40, less the TSopt when agreed

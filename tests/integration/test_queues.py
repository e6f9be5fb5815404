"""`userstack serve --queues 2`: two stack processes on one multi-queue TUN, seen as one host.

Each test runs in its own network namespace; every process it starts (the server, its
workers, curl, ping) runs there and is stopped at the end (the `serve` fixture stops the
server, which stops its workers; curl and ping run under a timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from userstack.control import queue_path
from userstack.wire.pcapng import PcapngReader

from .helpers import PATIENCE, STACK, Served, userstack_argv, wait_until
from .test_real_clients import pattern_sha256

CLIENTS = 24  # concurrent curls per round: with 2 queues, all on one has odds 2**-23
SIZE = 200_000
WORKERS = re.compile(r"workers \[(\d+), (\d+|None)\]")


def worker_pids(served: Served) -> list[int]:
    match = WORKERS.search(served.stderr)
    assert match, served.stderr
    return [int(pid) if pid != "None" else 0 for pid in match.groups()]


def fetch_all(workdir: Path, tag: str, clients: int = CLIENTS) -> None:
    """CLIENTS concurrent kernel clients (curl): half download /bytes/SIZE, half upload SIZE
    random bytes; every body checked by sha256. The server closes first (Connection: close),
    so each connection stays in its worker's table, in TIME-WAIT."""
    uploads, procs = {}, []
    for n in range(clients):
        out = workdir / f"{tag}-{n}.out"
        args = ["curl", "-sS", "--max-time", "60", "-H", "Connection: close", "-o", str(out)]
        if n % 2:
            body = os.urandom(SIZE)
            (workdir / f"{tag}-{n}.in").write_bytes(body)
            uploads[n] = hashlib.sha256(body).hexdigest()
            args += ["--data-binary", f"@{workdir / f'{tag}-{n}.in'}",
                     f"http://{STACK}/upload"]
        else:
            args.append(f"http://{STACK}/bytes/{SIZE}")
        procs.append(subprocess.Popen(args, stderr=subprocess.PIPE))
    for n, proc in enumerate(procs):
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        body = (workdir / f"{tag}-{n}.out").read_bytes()
        if n in uploads:
            assert json.loads(body) == {"length": SIZE, "sha256": uploads[n]}
        else:
            assert hashlib.sha256(body).hexdigest() == pattern_sha256(SIZE)


def served_rows(served: Served, control: Path) -> list[str]:
    """The connection rows (no LISTEN) of the table at `control`."""
    result = subprocess.run(userstack_argv("ss", "-a", "--control", str(control)),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [row for row in result.stdout.splitlines()[1:] if not row.startswith("LISTEN")]


def test_two_workers_serve_many_kernel_clients_as_one_host(
    serve: Callable[..., Served], workdir: Path
) -> None:
    served = serve("http", "--queues", "2")
    fetch_all(workdir, "a")
    per_worker = [served_rows(served, queue_path(served.control, q)) for q in range(2)]
    assert all(len(rows) > 0 for rows in per_worker), per_worker  # both served connections
    merged = served_rows(served, served.control)  # `userstack ss`: one table for the host
    assert sorted(merged) == sorted(per_worker[0] + per_worker[1])
    assert len(merged) == CLIENTS and all(row.startswith("TIME-WAIT") for row in merged)
    ping = subprocess.run(["ping", "-c", "4", "-i", "0.2", "-W", "2", STACK],
                          capture_output=True, text=True, timeout=30)
    assert ping.returncode == 0 and " 0% packet loss" in ping.stdout, ping.stdout


def test_a_worker_that_dies_is_reported_restarted_and_the_other_keeps_serving(
    serve: Callable[..., Served], workdir: Path
) -> None:
    served = serve("http", "--queues", "2")
    victim = worker_pids(served)[1]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "died (signal 9); restarting it" in served.stderr, PATIENCE, "the report")
    assert f"worker 1 (pid {victim}) died" in served.stderr
    wait_until(lambda: served.stderr.count("userstack queue 1: serving") == 2, PATIENCE,
               "the restarted worker")
    fetch_all(workdir, "b")
    assert all(served_rows(served, queue_path(served.control, q)) for q in range(2))


def test_a_worker_that_dies_before_serving_is_not_restarted_and_its_queue_closes(
    serve: Callable[..., Served], workdir: Path
) -> None:
    with socket.socket(socket.AF_UNIX) as squatter:  # worker 1's control path is taken
        squatter.bind(str(queue_path(workdir / "ctl.sock", 1)))
        squatter.listen()
        served = serve("http", "--queues", "2")
        assert "before it served: not restarting it" in served.stderr
        assert worker_pids(served)[0] and "None]" in served.stderr
        fetch_all(workdir, "d", clients=12)  # every flow reaches worker 0: queue 1 is gone
    assert len(served_rows(served, queue_path(served.control, 0))) == 12


def test_sigint_closes_every_workers_connections_with_fins_and_removes_the_device(
    serve: Callable[..., Served],
) -> None:
    served = serve("echo", "--queues", "2")
    socks = [socket.create_connection((STACK, 7), timeout=20) for _ in range(CLIENTS)]
    for n, sock in enumerate(socks):
        sock.sendall(b"%d\n" % n)
        assert sock.recv(100) == b"%d\n" % n
    served.proc.send_signal(signal.SIGINT)
    for sock in socks:
        assert sock.recv(100) == b""  # a FIN: a RST would raise ConnectionResetError
        sock.close()
    assert served.proc.wait(timeout=30) == 0
    assert "us0" not in [name for _, name in socket.if_nameindex()]


def test_trace_and_pcap_name_the_queue_of_every_packet_in_time_order(
    serve: Callable[..., Served], workdir: Path
) -> None:
    served = serve("http", "--queues", "2", "--trace", pcap=True)
    fetch_all(workdir, "c")
    assert served.stop() == 0
    lines = [line for line in served.stdout.splitlines() if " IP " in line]
    queues = [line.split()[1] for line in lines]
    assert set(queues) == {"q0", "q1"}
    stamps = [line.split()[0] for line in lines]
    assert stamps == sorted(stamps)  # HH:MM:SS.ffffff: text order is time order
    with served.pcap.open("rb") as f:
        capture = PcapngReader(f)
        records = list(capture.packets())
    assert capture.interfaces == ["us0"]
    assert {r.queue for r in records} == {0, 1}
    times = [r.timestamp for r in records]
    assert times == sorted(times) and len(records) == len(lines)  # the trace saw them all
    dump = subprocess.run(["tcpdump", "-nn", "-r", str(served.pcap)], capture_output=True,
                          text=True, timeout=30)
    assert dump.returncode == 0 and len(dump.stdout.splitlines()) == len(lines), dump.stderr

"""The namespace fixture really isolates: threads, sockets, trio, and children of any thread."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest
import trio
from netns import NetNs, current_inode, netns_or_skip, skip_or_fail


def ns_of_child() -> str:
    return subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.netns
def test_enters_a_fresh_namespace_and_comes_back() -> None:
    outer = current_inode()
    with netns_or_skip() as ns:
        assert current_inode() == ns.inode != outer
        assert [name for _, name in socket.if_nameindex()] == ["lo"]
        assert ns_of_child() == f"net:[{ns.inode}]"
    assert current_inode() == outer


async def test_trio_sockets_work_inside(netns: NetNs) -> None:
    assert current_inode() == netns.inode  # trio runs on the thread the fixture moved
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as a, \
            trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as b:
        await a.bind(("127.0.0.1", 0))  # lo is up
        await b.sendto(b"hi", a.getsockname())
        with trio.fail_after(5):
            assert (await a.recvfrom(16))[0] == b"hi"


async def test_trio_run_process_starts_inside(netns: NetNs) -> None:
    # trio forks from a cached worker thread, which may predate the namespace.
    result = await trio.run_process(["readlink", "/proc/self/ns/net"], capture_stdout=True)
    assert result.stdout.decode().strip() == f"net:[{netns.inode}]"
    assert await trio.to_thread.run_sync(ns_of_child) == f"net:[{netns.inode}]"


@pytest.mark.netns
def test_a_thread_from_before_forks_inside_and_stays_outside() -> None:
    go, done = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def older_thread() -> None:  # like a trio worker cached before the test began
        go.wait()
        seen["child"] = ns_of_child()
        seen["thread"] = current_inode()
        done.set()

    outer = current_inode()
    thread = threading.Thread(target=older_thread)
    thread.start()
    try:
        with netns_or_skip() as ns:
            go.set()
            done.wait(5)
    finally:
        go.set()
        thread.join()
    assert seen == {"child": f"net:[{ns.inode}]", "thread": outer}


def test_skip_or_fail_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        skip_or_fail("no TUN here")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no TUN here"):
        skip_or_fail("no TUN here")

"""Private network namespaces for tests that talk to real kernel peers over a TUN.

`private_netns()` moves the calling thread -- in pytest, the main thread, where pytest-trio also
runs trio -- into a fresh network namespace with only `lo` (brought up), and back again on exit.
Namespaces belong to threads, not processes, so:
- sockets the thread creates (kernel sockets, trio sockets) and TUN devices it opens live in the new
  namespace; so do threads it starts from now on and processes it forks;
- threads that already existed stay where they were. trio keeps a cache of worker threads across
  runs, and `trio.run_process` forks from one of them, so a child could start in the host's
  namespace and reach the host's network. While a private namespace is active, every
  `subprocess.Popen` therefore enters the test's namespace for the fork, from whatever thread, and
  steps back out afterwards. Plain `subprocess.run` and `trio.run_process` both just work.
- Still: anything else a *pre-existing* thread does (a socket made in `trio.to_thread.run_sync`)
  happens outside. Make sockets in the trio thread.

Use the `netns` fixture (tests/conftest.py); it skips when this machine cannot do it, and fails
instead when CI=true, so a broken CI environment cannot pass by skipping everything.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from userstack.netns import CLONE_NEWNET, set_up, setns, unshare

_THIS_THREAD = "/proc/thread-self/ns/net"


@dataclass(frozen=True)
class NetNs:
    fd: int  # open on the namespace while it is active
    inode: int  # what `readlink /proc/PID/ns/net` shows as net:[inode]

    @property
    def path(self) -> str:
        """A path other programs can use for this namespace, e.g. `nsenter --net=PATH`."""
        return f"/proc/{os.getpid()}/fd/{self.fd}"


def current_inode() -> int:
    """The network namespace the calling thread is in."""
    return os.stat(_THIS_THREAD).st_ino


def _open_ns() -> int:
    return os.open(_THIS_THREAD, os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def private_netns() -> Iterator[NetNs]:
    """Run the calling thread, and the children anyone forks meanwhile, in a new namespace."""
    outer = _open_ns()
    try:
        unshare(CLONE_NEWNET)
        try:
            inner = _open_ns()
            try:
                set_up("lo")
                with _children_start_in(inner):
                    yield NetNs(inner, os.fstat(inner).st_ino)
            finally:
                os.close(inner)
        finally:
            try:
                setns(outer)
            except OSError as exc:  # every later test would run in the wrong namespace
                raise RuntimeError("cannot return to the original network namespace") from exc
    finally:
        os.close(outer)


@contextmanager
def _children_start_in(ns_fd: int) -> Iterator[None]:
    """Patch Popen so that every fork happens inside the namespace (see the module docstring)."""
    original = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    inode = os.fstat(ns_fd).st_ino

    def execute_child(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        if current_inode() == inode:
            return original(self, *args, **kwargs)
        back = _open_ns()
        try:
            setns(ns_fd)
            try:
                return original(self, *args, **kwargs)
            finally:
                setns(back)
        finally:
            os.close(back)

    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]
    try:
        yield
    finally:
        subprocess.Popen._execute_child = original  # type: ignore[attr-defined]


@functools.cache
def unavailable_reason() -> str | None:
    """Why private namespaces with a TUN cannot work here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root (CAP_SYS_ADMIN) for a private network namespace"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    errors: list[OSError] = []

    def probe() -> None:  # in a throwaway thread: its namespace dies with it
        try:
            unshare(CLONE_NEWNET)
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return str(errors[0]) if errors else None


def skip_or_fail(reason: str) -> NoReturn:
    """Skip, except on CI (CI=true), where a missing capability is a broken environment."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, so not skipping: {reason}")
    pytest.skip(reason)


@contextmanager
def netns_or_skip() -> Iterator[NetNs]:
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)
    with private_netns() as ns:
        yield ns

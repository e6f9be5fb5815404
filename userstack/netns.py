"""A private network namespace for the whole process: where `userstack demo` and the bench run.

`enter_private_netns()` must be called before the process starts any thread (so before
`trio.run`): it moves the process into a new network namespace holding only `lo`, so the
TUN it creates, the sockets it opens and every process it starts (curl, nc, the bench's
peers) see nothing of the host's network, and all of it vanishes when the process exits.

As root this is `unshare(CLONE_NEWNET)`. Without root it tries an unprivileged user
namespace first (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`, mapping our uid to root inside
it), which many kernels allow; where neither works it raises NamespaceError with a
message that says why.

The system calls underneath (`unshare`, `setns`) and `set_up` (bring an interface up)
are here for anything else that moves between namespaces, such as the tests' fixture.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(RuntimeError):
    """No private network namespace could be made here."""


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread (Python 3.11 has no os.unshare)."""
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """setns(2): move the calling thread into the namespace open on `fd`."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns({nstype:#x}): {os.strerror(err)}")


def set_up(interface: str) -> None:
    """`ip link set INTERFACE up`, without a subprocess (SIOCGIFFLAGS, SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        name = interface.encode()
        reply = fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack("16sH22x", name, 0))
        (flags,) = struct.unpack_from("16xH", reply)
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", name, flags | _IFF_UP))


def _map_to_root(uid: int, gid: int) -> None:
    """Inside a fresh user namespace: our uid and gid become 0 (user_namespaces(7))."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def enter_private_netns() -> str:
    """Move this (single-threaded) process into a new network namespace with `lo` up.

    Returns how ("root" or "user namespace"); raises NamespaceError if neither works.
    """
    if threading.active_count() > 1:
        raise NamespaceError("enter_private_netns() must run before any thread starts")
    if not os.path.exists("/dev/net/tun"):
        raise NamespaceError("/dev/net/tun is missing: no TUN devices on this machine")
    if os.geteuid() == 0:
        try:
            unshare(CLONE_NEWNET)
        except OSError as exc:
            raise NamespaceError(f"unshare(CLONE_NEWNET) failed as root: {exc}") from exc
        how = "root"
    else:
        if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
            raise NamespaceError(
                "not root, and /dev/net/tun is not open to this user (a user namespace "
                "cannot make a TUN then): run as root (sudo), or chmod 0666 /dev/net/tun"
            )
        uid, gid = os.geteuid(), os.getegid()
        try:
            unshare(CLONE_NEWUSER | CLONE_NEWNET)
            _map_to_root(uid, gid)
        except OSError as exc:
            raise NamespaceError(
                f"not root, and this kernel refuses an unprivileged user namespace ({exc}); "
                "run as root (sudo), or allow user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)"
            ) from exc
        how = "user namespace"
    try:
        set_up("lo")
    except OSError as exc:
        raise NamespaceError(f"cannot bring lo up in the new namespace: {exc}") from exc
    return how

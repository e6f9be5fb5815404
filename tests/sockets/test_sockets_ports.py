"""connect()'s ephemeral port is never a port that a socket has bound but not used yet
(Linux: __inet_hash_connect skips a port whose bind bucket bind(2) made), in either
family; the stack alone does not know those ports, the sockets' host does."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address

import pytest

from userstack.sockets import SocketHost
from userstack.stack import Stack
from userstack.wire.addr import Endpoint

REMOTE = Endpoint(IPv4Address("10.0.0.2"), 80)


def host(low: int, high: int) -> SocketHost:
    """A stack at 10.0.0.1 (and fd00::1) with ephemeral ports low..high only."""
    stack = Stack("10.0.0.1", address6="fd00::1", key=b"k", ephemeral_ports=(low, high))
    return SocketHost(stack, lambda: None)


@pytest.mark.parametrize("version", [4, 6])
def test_connect_skips_a_port_a_bound_socket_holds(version: int) -> None:
    sockets = host(40000, 40001)
    assert sockets.bind_port(40000, reuse=False, version=version) == 40000
    for _ in range(3):  # whatever the RFC 6056 order, 40000 is never picked
        handle = sockets.connect(REMOTE, 0.0, config=None)
        assert handle.local.port == 40001
        handle.abort(0.0)
        handle.release()


def test_connect_fails_when_bound_sockets_hold_every_ephemeral_port() -> None:
    sockets = host(40000, 40000)
    sockets.bind_port(0, reuse=False)  # bind(port 0) takes the only one
    with pytest.raises(OSError) as caught:
        sockets.connect(REMOTE, 0.0, config=None)
    assert caught.value.errno == errno.EADDRNOTAVAIL
    sockets.release_port(40000, reuse=False)  # close() of the bound socket frees it
    assert sockets.connect(REMOTE, 0.0, config=None).local.port == 40000

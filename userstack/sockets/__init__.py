"""Sockets: trio's socket API over a userstack (socket.py), and `trio_network()`
(network.py), which makes trio and every library on it use the stack unchanged; inside
it, a TCP listener made with the stdlib is the stack's too (stdlib.py)."""

from .errors import FAILURE_ERRNO, failure_error
from .host import SocketHost
from .network import trio_network
from .resolver import Resolver
from .socket import Mode, UserSocket

__all__ = [
    "FAILURE_ERRNO",
    "Mode",
    "Resolver",
    "SocketHost",
    "UserSocket",
    "failure_error",
    "trio_network",
]

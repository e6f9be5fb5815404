"""userstack: a TCP/IP stack in user space over a Linux TUN device, for trio programs.

    async with userstack.open_stack(link, address="10.0.0.2") as stack:
        stream = await stack.open_tcp_stream("10.0.0.1", 80)

The public names load on first use, so `import userstack.wire` (or the sans-I/O core)
does not pull in trio, the driver or the TUN link.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .link.memory import memory_link_pair as memory_link_pair
    from .link.tun import TunLink as TunLink
    from .streams import TcpListener as TcpListener
    from .streams import TcpStream as TcpStream
    from .streams import UserStack as UserStack
    from .streams import open_stack as open_stack
    from .tcp.config import TcpConfig as TcpConfig

_EXPORTS = {
    "TcpConfig": ".tcp.config",
    "TcpListener": ".streams",
    "TcpStream": ".streams",
    "TunLink": ".link.tun",
    "UserStack": ".streams",
    "memory_link_pair": ".link.memory",
    "open_stack": ".streams",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'userstack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

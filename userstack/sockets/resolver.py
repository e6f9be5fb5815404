"""Names for the stack's sockets: numeric addresses, `localhost`, and a table the user fills.

Nothing here asks a DNS server or reads /etc/hosts: a name the table does not hold
fails with EAI_NONAME, as an unknown name does on a host without DNS. (The only file
read is /etc/services, for service names like "http", through socket.getservbyname.)
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

LOCALHOST = "localhost"
LOOPBACK = IPv4Address("127.0.0.1")

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]


class Resolver:
    """A host table: `hosts["example.test"] = IPv4Address(...)` makes that name resolve."""

    def __init__(self, own: IPv4Address | IPv6Address) -> None:
        self.own = own
        self.hosts: dict[str, IPv4Address | IPv6Address] = {}

    def resolve(
        self, host: str | bytes | IPv4Address | IPv6Address | None, *, passive: bool = False
    ) -> IPv4Address | IPv6Address:
        """One address for `host`, or socket.gaierror as getaddrinfo(3) raises.

        None is the wildcard 0.0.0.0 for a passive socket (AI_PASSIVE) and this stack's
        own address otherwise; `localhost` and 127.0.0.0/8 are this stack's own address
        too (the stack has no separate loopback interface: its packets to itself loop back
        inside the driver)."""
        if host is None or host in ("", b""):
            return IPv4Address(0) if passive else self.own
        if isinstance(host, bytes):
            host = host.decode("idna")
        if isinstance(host, IPv4Address | IPv6Address):
            address = host
        else:
            try:
                parsed = ip_address(host)
            except ValueError:
                name = host.lower().rstrip(".")
                if name == LOCALHOST:
                    return self.own
                try:
                    return self.hosts[name]
                except KeyError:
                    raise socket.gaierror(
                        socket.EAI_NONAME,
                        f"Name or service not known: {host!r} is not in the userstack's "
                        "host table (UserStack.hosts)",
                    ) from None
            address = parsed
        return self.own if address.is_loopback else address

    def getaddrinfo(
        self,
        host: str | bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[AddrInfo]:
        """getaddrinfo(3) for TCP over IPv4 only: one entry (the stack serves nothing else)."""
        if family not in (0, socket.AF_INET):
            raise socket.gaierror(
                socket.EAI_FAMILY, f"the userstack serves AF_INET only, not family {family}"
            )
        if type not in (0, socket.SOCK_STREAM) or proto not in (0, socket.IPPROTO_TCP):
            raise socket.gaierror(
                socket.EAI_SOCKTYPE, "the userstack serves TCP (SOCK_STREAM) only"
            )
        passive = bool(flags & socket.AI_PASSIVE)
        if flags & socket.AI_NUMERICHOST and host is not None:
            text = host.decode() if isinstance(host, bytes) else host
            try:
                ip_address(text)
            except ValueError:
                raise socket.gaierror(
                    socket.EAI_NONAME, f"{host!r} is not a numeric address"
                ) from None
        address = self.resolve(host, passive=passive)
        if address.version != 4:
            raise socket.gaierror(
                socket.EAI_ADDRFAMILY, f"{host!r}: the userstack's sockets are AF_INET only"
            )
        return [
            (
                socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (str(address), _port_number(port)),
            )
        ]

    def getnameinfo(self, sockaddr: tuple[str, int], flags: int) -> tuple[str, str]:
        """The table's name for an address (or the address), and the port as digits."""
        host, port = sockaddr[0], sockaddr[1]
        if not flags & socket.NI_NUMERICHOST:
            address = IPv4Address(host)
            for name, known in self.hosts.items():
                if known == address:
                    host = name
                    break
            else:
                if address == self.own:
                    host = LOCALHOST
        return host, str(port)


def _port_number(port: bytes | str | int | None) -> int:
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        if port.isdigit():
            return int(port)
        try:
            return socket.getservbyname(port, "tcp")
        except OSError:
            raise socket.gaierror(socket.EAI_SERVICE, f"unknown service {port!r}") from None
    return int(port)

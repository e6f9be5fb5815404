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

AddrInfo = tuple[
    socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int] | tuple[str, int, int, int]
]


class Resolver:
    """A host table: `hosts["example.test"] = IPv4Address(...)` makes that name resolve."""

    def __init__(self, own: IPv4Address | None, own6: IPv6Address | None = None) -> None:
        primary = own or own6
        assert primary is not None, "a stack has at least one address"
        self.own: IPv4Address | IPv6Address = primary
        self.own6 = own6
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
        if address.is_loopback:  # 127.0.0.0/8 and ::1 are the stack itself
            return self.own6 if address.version == 6 and self.own6 is not None else self.own
        return address

    def getaddrinfo(
        self,
        host: str | bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[AddrInfo]:
        """getaddrinfo(3) for TCP only: an entry per family the name has here (`localhost`:
        each of the stack's addresses; a table name or number: its one address)."""
        if family not in (0, socket.AF_INET, socket.AF_INET6):
            raise socket.gaierror(
                socket.EAI_FAMILY, f"the userstack serves AF_INET and AF_INET6, not {family}"
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
        addresses = [self.resolve(host, passive=passive)]
        if self.own6 is not None and addresses[0] == self.own and self.own != self.own6:
            addresses.append(self.own6)  # localhost (or no name): both our addresses
        wanted = {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family)
        number = _port_number(port)
        entries: list[AddrInfo] = [
            (
                socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (str(address), number, 0, 0) if address.version == 6 else (str(address), number),
            )
            for address in addresses
            if wanted is None or address.version == wanted
        ]
        if not entries:
            raise socket.gaierror(socket.EAI_ADDRFAMILY, f"{host!r}: none in family {family}")
        return entries

    def getnameinfo(self, sockaddr: tuple[str, int], flags: int) -> tuple[str, str]:
        """The table's name for an address (or the address), and the port as digits."""
        host, port = sockaddr[0], sockaddr[1]
        if not flags & socket.NI_NUMERICHOST:
            address = ip_address(host)
            for name, known in self.hosts.items():
                if known == address:
                    host = name
                    break
            else:
                if address in (self.own, self.own6):
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

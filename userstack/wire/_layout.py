"""Header layouts declared once with construct, run as one struct call on the hot path.

Each fixed header (IPv4, TCP, ICMP echo, the virtio-net header) is declared as a construct
``Struct`` of flat integer fields, all of one byte order (network order, except the
virtio-net header, which is little-endian): that declaration is the single source of truth for
field names, order and widths. A compiled construct parser still assigns each field
into a ``Container`` one by one (about 4 us per 20-byte header here), while a single
``struct.Struct.unpack_from`` over the same layout takes about 0.2 us. So ``Layout``
derives that ``struct.Struct`` from the construct declaration and the codecs use it;
the compiled construct parser (``Layout.compiled``) is kept as the cross-check the
tests and ``scripts/bench_wire`` run against it. construct objects never leave wire/.
"""

from __future__ import annotations

import struct
from functools import cached_property

import construct


class Layout:
    """A flat header: the construct declaration, its compiled parser, and one struct.Struct."""

    def __init__(self, spec: construct.Struct) -> None:
        order = ""
        fmt = ""
        names: list[str] = []
        for sub in spec.subcons:
            field = sub.subcon if isinstance(sub, construct.Renamed) else sub
            if not isinstance(field, construct.FormatField) or field.fmtstr[0] not in "<>":
                raise TypeError(f"{sub!r}: a Layout takes only flat integer fields")
            if order and field.fmtstr[0] != order:
                raise TypeError(f"{sub!r}: a Layout takes integer fields of one byte order")
            order = field.fmtstr[0]
            fmt += field.fmtstr[1:]
            names.append(sub.name)
        self.spec = spec
        self.names = tuple(names)
        self.fast = struct.Struct(order + fmt)
        self.size = self.fast.size

    @cached_property
    def compiled(self) -> construct.Compiled:
        """The compiled construct parser/builder for the same layout (tests, benchmarks)."""
        return self.spec.compile()

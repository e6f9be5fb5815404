"""The struct fast path decodes and encodes exactly as the compiled construct declaration."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from userstack.wire._layout import Layout
from userstack.wire.icmp import ICMP_ECHO_HEADER
from userstack.wire.icmpv6 import ICMPV6_ECHO_HEADER, ICMPV6_ERROR_HEADER
from userstack.wire.ipv4 import IPV4_HEADER
from userstack.wire.ipv6 import FRAGMENT_HEADER, IPV6_HEADER
from userstack.wire.tcp import TCP_HEADER
from userstack.wire.virtio import VIRTIO_NET_HDR

LAYOUTS = [
    IPV4_HEADER,
    TCP_HEADER,
    ICMP_ECHO_HEADER,
    VIRTIO_NET_HDR,
    IPV6_HEADER,
    FRAGMENT_HEADER,
    ICMPV6_ECHO_HEADER,
    ICMPV6_ERROR_HEADER,
]
IDS = ["ipv4", "tcp", "icmp", "virtio", "ipv6", "fragment", "icmpv6-echo", "icmpv6-error"]


@pytest.mark.parametrize("layout", LAYOUTS, ids=IDS)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_fast_path_matches_compiled_construct(layout: Layout, data: st.DataObject) -> None:
    raw = data.draw(st.binary(min_size=layout.size, max_size=layout.size + 8))
    values = layout.fast.unpack_from(raw)
    parsed = layout.compiled.parse(raw)
    assert tuple(parsed[name] for name in layout.names) == values
    assert layout.compiled.build(dict(zip(layout.names, values, strict=True))) == raw[: layout.size]
    assert layout.spec.sizeof() == layout.size


def test_sizes() -> None:
    assert [layout.size for layout in LAYOUTS] == [20, 20, 8, 10, 40, 8, 8, 8]


def test_virtio_header_is_little_endian() -> None:
    assert VIRTIO_NET_HDR.fast.format == "<BBHHHH"


def test_layout_refuses_nested_fields() -> None:
    with pytest.raises(TypeError, match="flat integer fields"):
        Layout(construct.Struct("x" / construct.Bytes(2)))


def test_layout_refuses_mixed_byte_orders() -> None:
    with pytest.raises(TypeError, match="one byte order"):
        Layout(construct.Struct("x" / construct.Int16ub, "y" / construct.Int16ul))

"""The fast checksum against a word-by-word RFC 1071 loop and against dpkt."""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt
from hypothesis import given, settings
from hypothesis import strategies as st

from userstack.wire import internet_checksum, ones_complement_sum, pseudo_header_sum


def reference_checksum(data: bytes) -> int:
    """RFC 1071 4.1, literally: add 16-bit words with end-around carry, complement."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_rfc1071_example() -> None:
    # RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is 220d.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_complement_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D


def test_the_two_zeros() -> None:
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(bytes(20)) == 0xFFFF  # all zero: +0, checksum 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0x0000  # non-zero multiple: -0, checksum 0
    assert internet_checksum(b"\x00\x01\xff\xfe") == 0x0000


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.sampled_from([b"\xff" * 7, b"\xff\xff" * 9, b"\0" * 5]))
def test_matches_word_loop_and_dpkt(data: bytes) -> None:
    assert internet_checksum(data) == reference_checksum(data) == dpkt.in_cksum(data)


@settings(max_examples=100)
@given(st.binary(max_size=40).map(lambda b: b[: len(b) // 2 * 2]), st.binary(max_size=40))
def test_partial_sums_chain(head: bytes, tail: bytes) -> None:
    assert internet_checksum(tail, ones_complement_sum(head)) == reference_checksum(head + tail)


@settings(max_examples=100)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=80))
def test_pseudo_header(src: int, dst: int, segment: bytes) -> None:
    a, b = IPv4Address(src), IPv4Address(dst)
    pseudo = a.packed + b.packed + bytes((0, 6)) + len(segment).to_bytes(2, "big")
    got = internet_checksum(segment, pseudo_header_sum(a, b, 6, len(segment)))
    assert got == reference_checksum(pseudo + segment)

"""SeqNum: arithmetic modulo 2**32 and comparisons that survive wraparound (RFC 9293 3.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from userstack.wire import SeqNum

M = 2**32
values = st.integers(0, M - 1) | st.integers(M - 1000, M - 1) | st.integers(0, 1000)
steps = st.integers(-(2**31) + 1, 2**31 - 1)
small = st.integers(0, 2**31 - 1)


def test_wraps_at_2_32() -> None:
    top = SeqNum(M - 1)
    assert (top + 1).value == 0
    assert (SeqNum(0) - 1) == top
    assert top < SeqNum(0)  # 0 is one ahead of 2**32 - 1
    assert SeqNum(0) - top == 1
    assert top - SeqNum(0) == -1
    assert SeqNum(M + 5) == SeqNum(5)
    assert SeqNum(-1) == top


def test_add_rejects_seqnum() -> None:
    with pytest.raises(TypeError):
        SeqNum(1) + SeqNum(2)  # type: ignore[operator]


@settings(max_examples=200)
@given(values, steps)
def test_add_then_distance(a: int, n: int) -> None:
    s = SeqNum(a)
    t = s + n
    assert 0 <= t.value < M
    assert t.value == (a + n) % M
    assert t - s == n
    assert s - t == -n
    assert t - n == s
    assert s.distance(t) == -n


@settings(max_examples=200)
@given(values, st.integers(1, 2**31 - 1))
def test_order_follows_distance(a: int, n: int) -> None:
    s, t = SeqNum(a), SeqNum(a) + n
    assert s < t and s <= t and t > s and t >= s
    assert not (t < s) and not (s > t) and not (s >= t)
    assert s <= s and s >= s and not (s < s)


@settings(max_examples=200)
@given(values, values | values.map(lambda v: v + 2**31))
def test_distance_range_and_antisymmetry(a: int, b: int) -> None:
    d = SeqNum(a).distance(SeqNum(b))
    assert -(2**31) <= d < 2**31
    assert (b + d) % M == a
    if d != -(2**31):  # the one point where both directions are half the space
        assert SeqNum(b).distance(SeqNum(a)) == -d


@settings(max_examples=300)
@given(values, values | values.map(lambda v: (v + 2**31) % M))
def test_comparisons_are_the_sign_of_distance(a: int, b: int) -> None:
    """The comparisons are written out for speed; they must mean exactly distance()'s sign."""
    s, t = SeqNum(a), SeqNum(b)
    d = s.distance(t)
    assert (s < t, s <= t, s > t, s >= t) == (d < 0, d <= 0, d > 0, d >= 0)
    assert (s + 7) == SeqNum((a + 7) % M) and (s - 7) == SeqNum((a - 7) % M)
    assert hash(s + 0) == hash(SeqNum(a)) and repr(s - 0) == f"SeqNum({a})"


def test_half_the_space_apart_is_ambiguous() -> None:
    a, b = SeqNum(5), SeqNum(5 + 2**31)
    assert a.distance(b) == b.distance(a) == -(2**31)
    assert a < b and b < a  # documented: RFC 1982 leaves this case undefined


@settings(max_examples=200)
@given(values, small, st.integers(-(2**20), 2**20))
def test_in_window(start: int, size: int, offset: int) -> None:
    s = SeqNum(start)
    assert (s + offset).in_window(s, size) == (0 <= offset < size)


def test_in_window_across_wrap() -> None:
    start = SeqNum(M - 10)
    assert SeqNum(M - 10).in_window(start, 20)
    assert SeqNum(5).in_window(start, 20)
    assert not SeqNum(10).in_window(start, 20)
    assert not SeqNum(M - 11).in_window(start, 20)
    assert not start.in_window(start, 0)

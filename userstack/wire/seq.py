"""32-bit sequence numbers with modular comparison (RFC 9293 3.4).

Sequence numbers wrap at 2**32, so "a < b" means "b is ahead of a by less than
half the space". Keeping them in their own type means the core can never compare
two raw ints by accident, which is the classic wraparound bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

MODULUS = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True, slots=True)
class SeqNum:
    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value < MODULUS:
            object.__setattr__(self, "value", self.value % MODULUS)

    def __add__(self, n: int) -> SeqNum:
        if not isinstance(n, int):
            return NotImplemented
        return _seqnum((self.value + n) % MODULUS)

    @overload
    def __sub__(self, other: SeqNum) -> int: ...
    @overload
    def __sub__(self, other: int) -> SeqNum: ...
    def __sub__(self, other: SeqNum | int) -> int | SeqNum:
        """SeqNum - SeqNum is the signed distance; SeqNum - int steps back."""
        if isinstance(other, SeqNum):
            return self.distance(other)
        if isinstance(other, int):
            return _seqnum((self.value - other) % MODULUS)
        return NotImplemented

    def distance(self, other: SeqNum) -> int:
        """Signed distance self - other, in [-2**31, 2**31).

        Exactly half the space apart is ambiguous (RFC 1982 3.2 leaves it undefined):
        both distances are then -2**31, so each number compares as "before" the other.
        A TCP window is at most 2**30 (RFC 7323 2.3), so the core never gets there.
        """
        d = (self.value - other.value) % MODULUS
        return d - MODULUS if d >= _HALF else d

    # The comparisons are distance() < 0 etc., written out on (a - b) mod 2**32 because
    # the core compares sequence numbers on every segment: d >= 2**31 is a negative distance.

    def __lt__(self, other: SeqNum) -> bool:
        return (self.value - other.value) % MODULUS >= _HALF

    def __le__(self, other: SeqNum) -> bool:
        d = (self.value - other.value) % MODULUS
        return d == 0 or d >= _HALF

    def __gt__(self, other: SeqNum) -> bool:
        return 0 < (self.value - other.value) % MODULUS < _HALF

    def __ge__(self, other: SeqNum) -> bool:
        return (self.value - other.value) % MODULUS < _HALF

    def in_window(self, start: SeqNum, size: int) -> bool:
        """start <= self < start + size, modulo 2**32 (RFC 9293 3.4)."""
        return 0 <= (self.value - start.value) % MODULUS < size

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"SeqNum({self.value})"

    def __str__(self) -> str:
        return str(self.value)


_new = object.__new__
_set_value = SeqNum.value.__set__  # type: ignore[attr-defined]  # the slot, past frozen


def _seqnum(value: int) -> SeqNum:
    """SeqNum(value) for a value already in [0, 2**32): the arithmetic's result, built
    without the frozen dataclass's __setattr__ detour and range check (half the time)."""
    seq = _new(SeqNum)
    _set_value(seq, value)
    return seq

"""A seeded mutation fuzzer against the stack, with a connection in every RFC 9293 state.

Each round builds a fresh stack with a listener, and a connection in each of SYN-SENT,
SYN-RECEIVED, ESTABLISHED (idle, with data in flight, with a hole in what it received),
FIN-WAIT-1, FIN-WAIT-2, CLOSING, TIME-WAIT, CLOSE-WAIT and LAST-ACK; then fires hostile
packets at them (fuzz_scene.hostile_packet: segments aimed at the edges of each window
with hostile flags and options, the same with bits flipped and the checksums fixed or
not, cut or lengthened packets, ICMP errors quoting the stack's own packets, noise),
while time runs and the application now and then acts. After every packet: nothing
escaped, no bug counter moved, the TCB invariants hold (fuzz_scene.check_invariants),
and everything the stack sent parses. After the attack the stack serves a transfer
each way, checked by sha256.

The normal suite fires 30,000 packets; `scripts/test --soak` a million.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from fuzz_scene import CONFIG, Scene, check_invariants, fuzz, serves_a_transfer
from stack_helpers import KEY, US

from userstack.stack import Stack
from userstack.stack.counters import StackCounters
from userstack.tcp.info import TcbInfo
from userstack.tcp.state import State


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hostile_packets_break_no_invariant_and_the_stack_still_serves(seed: int) -> None:
    scene = fuzz(seed, 10_000)
    serves_a_transfer(scene)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_a_million_hostile_packets() -> None:
    scene = fuzz(1_000_000, 1_000_000)
    serves_a_transfer(scene)


def test_the_invariants_catch_a_broken_table() -> None:
    """The checks are not vacuous: a snapshot with SND.UNA past SND.NXT, or a TIME-WAIT
    without its timer, fails them."""
    scene = Scene(Stack(US, key=KEY, config=CONFIG))
    scene.every_state()
    check_invariants(scene.stack, scene.now)
    rows = scene.stack.connections(scene.now)
    for broken in (
        [replace(rows[-1], snd_una=(rows[-1].snd_nxt + 1) % 2**32)],
        [replace(r, timer=None) if r.state is State.TIME_WAIT else r for r in rows],
        [replace(rows[-1], recv_q=CONFIG.recv_buffer + 1)],
        [replace(rows[-1], state=State.CLOSED)],
    ):
        with pytest.raises(AssertionError):
            check_invariants(Table(scene.stack, broken), scene.now)  # type: ignore[arg-type]


@dataclass
class Table:
    """A stack whose snapshot is replaced: for testing the checks themselves."""

    stack: Stack
    rows: list[TcbInfo]

    @property
    def counters(self) -> StackCounters:
        return self.stack.counters

    def connections(self, now: float) -> list[TcbInfo]:
        return self.rows

"""The runs docs/why.md quotes: two userstacks in memory, in virtual time, one of them traced
as `userstack serve --trace --why` traces (observe/trace.py's Tracer with observe/why.py's
LiveWhy), each run set up so that one question of why.md happens in it.

    python tests/docs/why_scenarios.py NAME     prints the run NAME (see SCENARIOS)

The traced stack is 10.0.0.2 ("us"); the other stack, 10.0.0.1, is the peer. A `Tamper`
link under each stack drops the packets a run names (or marks them CE, as a congested
router would), or lets it send one the run forges.
Everything is fixed (the ISN key, the virtual clock), so a run prints the same lines every
time; tests/docs/test_why_doc.py checks that every line why.md quotes is in its run.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import trio
import trio.testing

from userstack.link.base import LinkBase
from userstack.link.memory import memory_link_pair
from userstack.observe.trace import Tracer
from userstack.observe.why import LiveWhy
from userstack.streams import TcpStream, UserStack, open_stack
from userstack.tcp.config import TcpConfig
from userstack.wire.ipv4 import Ecn, IPv4Packet, with_ecn
from userstack.wire.offload import LinkPacket
from userstack.wire.packet import build_tcp_packet
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpSegment

US, PEER = "10.0.0.2", "10.0.0.1"
KEY = b"why.md, fixed ISN"
MSL = 2.0  # so that TIME-WAIT is over in the run


class Tamper(LinkBase):
    """A link that drops what `drop` says, marks CE what `mark` says (RFC 3168 5), and
    can send a forged packet."""

    def __init__(self, inner: LinkBase, drop: Callable[[TcpSegment], bool],
                 mark: Callable[[TcpSegment], bool] | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.offload = inner.offload
        self.drop = drop
        self.mark = mark

    async def send_batch(self, packets: Sequence[LinkPacket]) -> None:
        kept = []
        for packet in packets:
            assert isinstance(packet, bytes)
            ip = IPv4Packet.parse(packet)
            seg = TcpSegment.parse(ip.payload, ip.src, ip.dst)
            if not self.drop(seg):
                marked = self.mark is not None and self.mark(seg)
                kept.append(with_ecn(packet, Ecn.CE) if marked else packet)
        await self.inner.send_batch(kept)

    async def _receive_batch(self) -> list[bytes]:
        return await self.inner.receive_batch()

    async def _aclose(self) -> None:
        await self.inner.aclose()


def nth(n: int, what: Callable[[TcpSegment], bool]) -> Callable[[TcpSegment], bool]:
    """Drop only the n-th (1-based) segment for which `what` holds."""
    seen = [0]

    def drop(seg: TcpSegment) -> bool:
        if not what(seg):
            return False
        seen[0] += 1
        return seen[0] == n

    return drop


def has_data(seg: TcpSegment) -> bool:
    return bool(seg.payload)


def never(seg: TcpSegment) -> bool:
    return False


@dataclass
class Run:
    us: UserStack
    peer: UserStack
    peer_link: Tamper


Story = Callable[[Run], Awaitable[None]]


async def _discard(stream: TcpStream) -> None:
    async with stream:
        async for _ in stream:
            pass


async def _echo(stream: TcpStream) -> None:
    async with stream:
        async for data in stream:
            await stream.send_all(data)


def run(story: Story, *, us_drop: Callable[[TcpSegment], bool] = never,
        peer_drop: Callable[[TcpSegment], bool] = never,
        us_mark: Callable[[TcpSegment], bool] | None = None,
        us_config: TcpConfig | None = None, peer_config: TcpConfig | None = None) -> str:
    """Play `story` and return the traced stack's lines. Both stacks leave timestamps
    (RFC 7323) out: the stories are about other rules, and their segments read shorter."""
    out = io.StringIO()
    us_config = replace(us_config or TcpConfig(msl=MSL), timestamps=False)
    peer_config = replace(peer_config or TcpConfig(msl=MSL), timestamps=False)

    async def main() -> None:
        left, right = memory_link_pair()
        us_link, peer_link = Tamper(right, us_drop, us_mark), Tamper(left, peer_drop)
        tracer = Tracer(out, relative=True)
        why = LiveWhy(out, stamp=lambda: tracer.stamp(trio.current_time()))
        async with (
            open_stack(us_link, US, config=us_config, isn_key=KEY,
                       observer=tracer, explain=why) as us,
            open_stack(peer_link, PEER, config=peer_config, isn_key=KEY + b"peer") as peer,
        ):
            await story(Run(us, peer, peer_link))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return out.getvalue()


# ---- the runs --------------------------------------------------------------------------------


async def delayed_ack(r: Run) -> None:
    """The peer sends one line to our discard service and waits: our ACK waits too."""
    async with trio.open_nursery() as nursery:
        await nursery.start(r.us.serve_tcp, _discard, 9)
        stream = await r.peer.open_tcp_stream(US, 9)
        await stream.send_all(b"hello\n")
        await trio.sleep(1)
        await stream.aclose()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()


async def echo_once(r: Run) -> None:
    """The peer sends one line to our echo service, reads it back and closes."""
    async with trio.open_nursery() as nursery:
        await nursery.start(r.us.serve_tcp, _echo, 7)
        stream = await r.peer.open_tcp_stream(US, 7)
        await stream.send_all(b"hello\n")
        assert await stream.receive_some(100) == b"hello\n"
        await stream.aclose()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()


async def bulk_to_peer(r: Run) -> None:
    """We send 20 segments' worth to the peer's discard service, then close."""
    async with trio.open_nursery() as nursery:
        await nursery.start(r.peer.serve_tcp, _discard, 9)
        stream = await r.us.open_tcp_stream(PEER, 9)
        await stream.send_all(b"x" * (20 * 1460))
        await stream.aclose()
        await trio.sleep(2)
        nursery.cancel_scope.cancel()


async def forged_rst(r: Run) -> None:
    """A blind attacker's RST: in our window, but not at RCV.NXT."""
    async with trio.open_nursery() as nursery:
        await nursery.start(r.us.serve_tcp, _discard, 9)
        stream = await r.peer.open_tcp_stream(US, 9)
        await stream.send_all(b"hello\n")
        await trio.sleep(0.5)
        (conn,) = [c for c in r.peer.connections() if c.remote.port == 9]
        assert conn.snd_nxt is not None
        rst = TcpSegment(conn.local.port, 9, SeqNum(conn.snd_nxt + 1000), SeqNum(0),
                         TcpFlags.RST, 0)
        await r.peer_link.inner.send(build_tcp_packet(conn.local.ip, conn.remote.ip, rst))
        await trio.sleep(0.5)
        await stream.aclose()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()


async def closed_port(r: Run) -> None:
    """The peer connects to a port nobody listens on."""
    try:
        await r.peer.open_tcp_stream(US, 81)
    except ConnectionRefusedError:
        return
    raise AssertionError("port 81 accepted a connection")


async def zero_window(r: Run) -> None:
    """We send more than the peer's small receive buffer while its reader sleeps."""
    got = bytearray()

    async def slow_reader(stream: TcpStream) -> None:
        async with stream:
            await trio.sleep(4)
            async for data in stream:
                got.extend(data)

    async with trio.open_nursery() as nursery:
        await nursery.start(r.peer.serve_tcp, slow_reader, 9)
        stream = await r.us.open_tcp_stream(PEER, 9)
        await stream.send_all(b"z" * 6000)
        await stream.aclose()
        await trio.sleep(6)
        nursery.cancel_scope.cancel()
    assert bytes(got) == b"z" * 6000


async def _close_first(r: Run) -> None:
    """We connect to the peer's echo service, send a line, and close first."""
    stream = await r.us.open_tcp_stream(PEER, 7)
    await stream.send_all(b"hello\n")
    await stream.send_eof()
    assert await stream.receive_some(100) == b"hello\n"
    assert await stream.receive_some(100) == b""
    await stream.aclose()


async def time_wait(r: Run) -> None:
    """We close first, and wait out TIME-WAIT."""
    async with trio.open_nursery() as nursery:
        await nursery.start(r.peer.serve_tcp, _echo, 7)
        await _close_first(r)
        await trio.sleep(2 * MSL + 1)
        nursery.cancel_scope.cancel()


async def fin_again(r: Run) -> None:
    """As time_wait, then the peer's FIN comes again (as if our last ACK had been lost):
    the stack's TIME-WAIT record answers it, the Connection gone (nobody holds it)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(r.peer.serve_tcp, _echo, 7)
        await _close_first(r)
        await trio.sleep(1)
        (tw,) = r.us.connections()
        assert tw.snd_nxt is not None and tw.rcv_nxt is not None
        fin = TcpSegment(7, tw.local.port, SeqNum(tw.rcv_nxt - 1), SeqNum(tw.snd_nxt),
                         TcpFlags.FIN | TcpFlags.ACK, 32768)
        await r.peer_link.inner.send(build_tcp_packet(tw.remote.ip, tw.local.ip, fin))
        await trio.sleep(2 * MSL + 1)
        nursery.cancel_scope.cancel()


SCENARIOS: dict[str, Callable[[], str]] = {
    # a buffer the SYN's unscaled window describes whole: reading opens no window, so
    # nothing but the delayed-ACK rules decides when the ACK goes
    # (and a peer without SACK, whose tail loss probe would race the delayed ACK)
    "delayed-ack": lambda: run(delayed_ack, us_config=TcpConfig(msl=MSL, recv_buffer=65535),
                               peer_config=TcpConfig(msl=MSL, sack=False)),
    # without SACK: no tail loss probe (RFC 8985 7) comes first, the RTO repairs the loss
    "retransmission": lambda: run(echo_once, us_drop=nth(1, has_data),
                                  us_config=TcpConfig(msl=MSL, sack=False)),
    "loss-probe": lambda: run(echo_once, us_drop=nth(1, has_data)),
    "fast-retransmit": lambda: run(bulk_to_peer, us_drop=nth(2, has_data),
                                   us_config=TcpConfig(msl=MSL, sack=False)),
    # we ask for ECN (the peer agrees by default); a router marks our second data segment
    "ecn": lambda: run(bulk_to_peer, us_mark=nth(2, has_data),
                       us_config=TcpConfig(msl=MSL, ecn="on")),
    "challenge-ack": lambda: run(forged_rst),
    "closed-port": lambda: run(closed_port),
    "zero-window": lambda: run(zero_window,
                               peer_config=TcpConfig(msl=MSL, recv_buffer=4000,
                                                     window_scale=False)),
    "time-wait": lambda: run(time_wait),
    "fin-again": lambda: run(fin_again),
}


if __name__ == "__main__":
    print(SCENARIOS[sys.argv[1]](), end="")

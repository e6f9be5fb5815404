"""Two stacks on the two queues of one TUN, in one process, against the kernel's TCP: the rule
for a segment that arrives on the queue of a stack with no TCB for it (docs/scaling.md).

Stack A (queue 0) opens connections to a kernel listener from its ephemeral slice. The kernel's
first answer to each SYN goes by hash (the TUN records the SYN's queue only after delivering
it); B drops the ones that land on queue 1, and the SYN sent twice gets a second answer to A at
once. After A has been silent longer than the kernel remembers a flow's queue, the kernel
steers each flow by its hash again, and some land on queue 1: B drops and counts them instead
of answering with RST, A's next segment brings each flow back, and the kernel's retransmission
reaches A. Nothing is lost, nothing is reset.
"""

from __future__ import annotations

import os

import pytest
import trio

from userstack import TunLink, open_stack
from userstack.stack import QueueShare

pytestmark = pytest.mark.netns

KERNEL, STACK = "10.0.0.1", "10.0.0.2"
FLOWS = 16  # all 16 hashed onto queue 0 has odds 2**-16
# The kernel's TUN forgets a flow's queue 3 s after our last packet of it (TUN_FLOW_EXPIRE),
# at the next sweep of a timer that runs every 3 s: 3 to 6 s after.
FLOW_MEMORY = 6.0


async def test_a_flow_steered_to_the_other_queue_is_dropped_there_and_comes_back(
    netns: object,
) -> None:
    first = TunLink.create(queues=2)
    second = first.open_queue()
    key = os.urandom(16)
    try:
        async with (
            open_stack(first, STACK, isn_key=key, queue=QueueShare(0, 2)) as a,
            open_stack(second, STACK, isn_key=key, queue=QueueShare(1, 2)) as b,
        ):
            b_listens = await b.open_tcp_listeners(7000)  # b listens too, as every worker
            with trio.socket.socket() as listener:
                await listener.bind((KERNEL, 0))
                listener.listen(FLOWS)
                port = listener.getsockname()[1]
                streams, peers = [], []
                for _ in range(FLOWS):
                    # The kernel's first SYN,ACK goes by hash, before the TUN records our SYN's
                    # queue; B drops it, and the SYN the stack sends twice brings a second at
                    # once: no connect waits for the kernel's retransmission (1 s).
                    with trio.fail_after(0.9):
                        streams.append(await a.open_tcp_stream(KERNEL, port))
                        peers.append((await listener.accept())[0])
                low, high = QueueShare(0, 2).ports
                assert all(low <= s.local_address.port <= high for s in streams)
                assert b.counters.other_queue_drops > 0 and b.counters.rst_sent == 0
                dropped = b.counters.other_queue_drops
                await trio.sleep(FLOW_MEMORY + 1)  # a kernel timer, not a race: A stays silent
                for n, peer in enumerate(peers):
                    await peer.send(b"late %d" % n)
                with trio.fail_after(10):  # some flows hashed onto queue 1 again: B drops them
                    while b.counters.other_queue_drops == dropped:
                        await trio.sleep(0.01)
                assert b.counters.rst_sent == 0
                for stream in streams:  # A's segments record queue 0 for each flow again
                    await stream.send_all(b"wake")
                with trio.fail_after(15):  # the kernel's retransmissions now reach A
                    for n, (stream, peer) in enumerate(zip(streams, peers, strict=True)):
                        assert await stream.receive_some(100) == b"late %d" % n
                        assert await peer.recv(100) == b"wake"  # not reset
                for stream in streams:
                    await stream.aclose()
                for peer in peers:
                    peer.close()
            for listener_b in b_listens:
                await listener_b.aclose()
    finally:
        await second.aclose()
        await first.aclose()

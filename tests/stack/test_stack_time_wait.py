"""The stack keeps a compact record, not the Connection, for a four-tuple in TIME-WAIT
(stack/time_wait_table.py, tcp/time_wait.py)."""

from __future__ import annotations

import errno
import gc
import random
import tracemalloc
import weakref

import pytest
from stack_helpers import (
    ACK,
    FIN,
    KEY,
    PEER,
    SYN,
    US,
    connected_pair,
    packet,
    replies,
    seg,
    shuttle,
)

from userstack.stack import Stack
from userstack.stack.isn import IsnGenerator
from userstack.stack.time_wait_table import TimeWaitTable
from userstack.tcp.config import TcpConfig
from userstack.tcp.events import Closed, StateChanged
from userstack.tcp.info import TimerKind
from userstack.tcp.state import State
from userstack.tcp.time_wait import TimeWait
from userstack.wire.addr import Endpoint
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags, TcpOptions


def server_in_time_wait(
    *, timestamps: bool = False
) -> tuple[Stack, int, SeqNum, SeqNum, weakref.ref[object]]:
    """The server closed first and is in TIME-WAIT (MSL 1 s): (server, the client's port,
    the server's SND.NXT and RCV.NXT, a weak reference to the server's Connection).
    Without timestamps unless asked: the tests send hand-made segments."""
    server, client, conn, peer = connected_pair(msl=1.0, delayed_ack=0.0, timestamps=timestamps)
    peer.close(0.0)
    shuttle(client, server, 0.0)
    conn.close(0.0)
    shuttle(client, server, 0.0)
    assert peer.state is State.TIME_WAIT
    server.take_events()
    server.take_changed()
    info = peer.info(0.0)
    assert info.rcv_nxt is not None
    # the handle is the application's; the Connection behind it must be free to go
    tcb = weakref.ref(peer._conn)
    return server, conn.local.port, SeqNum(info.snd_nxt), SeqNum(info.rcv_nxt), tcb


def test_the_connection_is_freed_and_the_row_stays_with_its_timer() -> None:
    server, port, snd_nxt, rcv_nxt, ref = server_in_time_wait()
    gc.collect()
    assert ref() is None  # nobody holds the Connection any more: the stack let it go
    [row] = [r for r in server.connections(0.5) if r.remote.port == port]
    assert row.state is State.TIME_WAIT and row.local == Endpoint(US, 80)
    assert row.remote == Endpoint(PEER, port)
    assert (row.timer, row.timer_left) == (TimerKind.TIME_WAIT, 1.5)  # ss -o: timewait
    assert (row.snd_nxt, row.rcv_nxt) == (snd_nxt.value, rcv_nxt.value)
    assert server.next_deadline() == 2.0
    server.on_timer(2.0)
    assert [r.state for r in server.connections(2.0)] == [State.LISTEN]
    [(whose, events)] = server.take_events()
    assert (whose.local, whose.remote) == (Endpoint(US, 80), Endpoint(PEER, port))
    assert events == [StateChanged(State.TIME_WAIT, State.CLOSED), Closed()]


def test_a_retransmitted_fin_is_acked_and_restarts_2msl() -> None:
    server, port, snd_nxt, rcv_nxt, _ = server_in_time_wait()
    server.receive_packet(packet(seg(port, 80, FIN | ACK, seq=rcv_nxt.value - 1,
                                     ack=snd_nxt.value)), 1.5)
    [ack] = replies(server)
    assert (ack.flags, ack.seq, ack.ack) == (ACK, snd_nxt, rcv_nxt)
    assert server.next_deadline() == 3.5
    server.on_timer(2.0)
    assert any(r.state is State.TIME_WAIT for r in server.connections(2.0))


def test_connect_does_not_reuse_a_four_tuple_in_time_wait() -> None:
    client = Stack(PEER, key=b"k", config=TcpConfig(msl=1.0), ephemeral_ports=(40000, 40000))
    server = Stack(US, key=b"s")
    server.listen(80, 4)
    conn = client.connect(Endpoint(US, 80), 0.0)
    shuttle(client, server, 0.0)
    peer = server.accept(80)
    assert peer is not None
    conn.close(0.0)
    shuttle(client, server, 0.0)
    peer.close(0.0)
    shuttle(client, server, 0.0)
    assert [r.state for r in client.connections(0.0)] == [State.TIME_WAIT]
    with pytest.raises(OSError) as raised:
        client.connect(Endpoint(US, 80), 0.5)
    assert raised.value.errno == errno.EADDRNOTAVAIL
    client.on_timer(2.0)
    assert client.connect(Endpoint(US, 80), 2.0).local.port == 40000


def test_100_000_records_cost_256_bytes_or_less_each() -> None:
    """The issue's target, measured with the table's own dicts (packed four-tuple keys)."""
    rnd = random.Random(7)
    n = 100_000
    config = TcpConfig()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        table = TimeWaitTable()
        for i in range(n):
            key = (rnd.getrandbits(32), rnd.randrange(1024, 65536), 80)
            record = TimeWait(SeqNum(rnd.getrandbits(32)), SeqNum(rnd.getrandbits(32)),
                              200_000 + rnd.getrandbits(16), 3, 240.0 + i * 1e-3,
                              (rnd.getrandbits(32), rnd.getrandbits(32)))  # timestamps too
            table.add(key, record, config)
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(table) == n
    print(f"TIME-WAIT record: {per_entry:.0f} bytes per entry over {n}")
    assert per_entry <= 256


def ts_packet(port: int, flags: TcpFlags, seq: SeqNum, ack: SeqNum, tsval: int) -> bytes:
    return packet(seg(port, 80, flags, seq=seq.value, ack=ack.value,
                      options=TcpOptions(timestamps=(tsval, 0))))


def test_the_record_keeps_ts_recent_stamps_its_acks_and_applies_paws() -> None:
    """RFC 7323 in TIME-WAIT: the record's ACK carries TSval from the connection's clock
    and TSecr = TS.Recent; a segment without TSopt is dropped (3.2), one with an older
    TSval is answered but restarts nothing (PAWS, 5.3 R1)."""
    server, port, snd_nxt, rcv_nxt, _ = server_in_time_wait(timestamps=True)
    record, _config = server._time_wait.find((int(PEER), port, 80))  # type: ignore[misc]
    recent = record.ts_recent
    assert recent is not None
    offset = IsnGenerator(KEY).ts_offset(Endpoint(US, 80), Endpoint(PEER, port))
    fin = FIN | ACK
    server.receive_packet(packet(seg(port, 80, fin, seq=rcv_nxt.value - 1, ack=snd_nxt.value)),
                          1.5)
    assert replies(server) == [] and server.next_deadline() == 2.0  # no TSopt: dropped
    server.receive_packet(ts_packet(port, fin, rcv_nxt - 1, snd_nxt, recent - 1), 1.5)
    [ack] = replies(server)  # PAWS: an ACK, and 2*MSL goes on
    assert server.next_deadline() == 2.0
    server.receive_packet(ts_packet(port, fin, rcv_nxt - 1, snd_nxt, recent + 1), 1.5)
    [ack] = replies(server)  # the FIN again: ACKed, 2*MSL restarted
    assert ack.options.timestamps == ((offset + 1500) % 2**32, recent)
    assert (ack.seq, ack.ack, server.next_deadline()) == (snd_nxt, rcv_nxt, 3.5)


def test_a_syn_with_a_newer_timestamp_takes_the_four_tuple_over() -> None:
    """RFC 6191 2: with timestamps, a SYN whose TSval is newer than TS.Recent starts a new
    incarnation whatever its sequence number; an older one may be an old duplicate: it is
    dropped silently and TIME-WAIT goes on, record and deadline unchanged."""
    server, port, snd_nxt, rcv_nxt, _ = server_in_time_wait(timestamps=True)
    record, _config = server._time_wait.find((int(PEER), port, 80))  # type: ignore[misc]
    recent = record.ts_recent
    assert recent is not None
    deadline = server.next_deadline()
    server.receive_packet(ts_packet(port, SYN, rcv_nxt - 1000, SeqNum(0), recent - 5), 1.0)
    assert replies(server) == [] and server.counters.time_wait_reuses == 0
    assert server._time_wait.find((int(PEER), port, 80)) == (record, _config)
    assert record.ts_recent == recent and server.next_deadline() == deadline
    server.receive_packet(ts_packet(port, SYN, rcv_nxt - 1000, SeqNum(0), recent + 5), 1.0)
    [syn_ack] = replies(server)
    assert syn_ack.flags == SYN | ACK and syn_ack.ack == rcv_nxt - 999
    assert syn_ack.seq > snd_nxt  # the ISS stays above the old incarnation's (as Linux)
    assert syn_ack.options.timestamps is not None
    assert syn_ack.options.timestamps[1] == recent + 5
    assert server.counters.time_wait_reuses == 1

"""With explanations on (`serve --trace --why`), the stack's compact TIME-WAIT record
names its rules as the Connection it replaced did, to the same recorder: a retransmitted
FIN, a RST, 2*MSL running out, a new SYN taking the four-tuple over."""

from __future__ import annotations

import gc
import io
import weakref

from stack_helpers import (
    ACK,
    FIN,
    PEER,
    RST,
    SYN,
    US,
    connected_pair,
    packet,
    replies,
    seg,
    shuttle,
)

from userstack.observe.why import LiveWhy
from userstack.stack import Stack
from userstack.tcp.rules import Decision, Explainer, Rule
from userstack.tcp.state import State
from userstack.wire.addr import Endpoint
from userstack.wire.seq import SeqNum


class Recorders:
    """Stack.explain's shape: one Explainer per connection, kept by endpoints."""

    def __init__(self) -> None:
        self.made: list[tuple[Endpoint, Endpoint, Explainer]] = []

    def __call__(self, local: Endpoint, remote: Endpoint) -> Explainer:
        why = Explainer()
        self.made.append((local, remote, why))
        return why


def server_in_time_wait(
    explain: Recorders | LiveWhy,
) -> tuple[Stack, Stack, int, SeqNum, SeqNum]:
    """The server closed first and is in TIME-WAIT (MSL 1 s), its Connection gone:
    (server, client, the client's port, the server's SND.NXT and RCV.NXT)."""
    server, client, conn, peer = connected_pair(msl=1.0, delayed_ack=0.0, explain=explain,
                                                timestamps=False)  # hand-made segments
    peer.close(0.0)
    shuttle(client, server, 0.0)
    conn.close(0.0)
    shuttle(client, server, 0.0)
    assert peer.state is State.TIME_WAIT
    info = peer.info(0.0)
    assert info.rcv_nxt is not None
    server.take_events()
    server.take_changed()
    tcb = weakref.ref(peer._conn)
    del peer
    gc.collect()
    assert tcb() is None  # nobody holds the Connection: only the record is left
    return server, client, conn.local.port, SeqNum(info.snd_nxt), SeqNum(info.rcv_nxt)


def rules(decisions: list[Decision]) -> list[Rule]:
    return [d.rule for d in decisions]


def test_the_record_names_its_rules_to_the_connections_recorder() -> None:
    recorders = Recorders()
    server, _, port, snd_nxt, rcv_nxt = server_in_time_wait(recorders)
    [(local, remote, why)] = recorders.made  # the connection's: no new one for the record
    assert (local, remote) == (Endpoint(US, 80), Endpoint(PEER, port))
    assert rules(why.take())[-1] is Rule.FIN_TIME_WAIT  # the Connection's last word
    fin = seg(port, 80, FIN | ACK, seq=rcv_nxt.value - 1, ack=snd_nxt.value)
    server.receive_packet(packet(fin), 0.5)
    again, not_acceptable = why.take()
    assert again == Decision(Rule.TIME_WAIT_FIN_AGAIN, (
        ("seg_seq", rcv_nxt - 1), ("rcv_nxt", rcv_nxt), ("msl", 1.0)))
    assert not_acceptable.rule is Rule.NOT_ACCEPTABLE
    assert [s.flags for s in replies(server)] == [ACK]  # and 2*MSL starts over
    server.receive_packet(packet(seg(port, 80, RST, seq=rcv_nxt.value)), 0.6)
    assert rules(why.take()) == [Rule.ACCEPTABLE, Rule.RST_TIME_WAIT_IGNORED]
    server.on_timer(2.5)  # 0.5 + 2*MSL
    assert why.take() == [Decision(Rule.TIME_WAIT_EXPIRED, (("msl", 1.0),))]
    assert recorders.made == [(local, remote, why)]


def test_a_new_syn_taking_the_four_tuple_over_is_named() -> None:
    recorders = Recorders()
    server, _, port, _, rcv_nxt = server_in_time_wait(recorders)
    [(_, _, old)] = recorders.made
    old.take()
    server.receive_packet(packet(seg(port, 80, SYN, seq=rcv_nxt.value + 10_000)), 0.5)
    assert rules(old.take()) == [Rule.NEW_INCARNATION]
    [_, (_, _, new)] = recorders.made  # the new incarnation's own recorder
    assert Rule.LISTEN_SYN in rules(new.take())


def test_live_why_numbers_the_records_decisions_from_the_connections_isns() -> None:
    """`serve --trace --why`: the record's lines read as the Connection's did."""
    out = io.StringIO()
    server, _, port, snd_nxt, rcv_nxt = server_in_time_wait(LiveWhy(out))
    out.seek(0)
    out.truncate()
    fin = seg(port, 80, FIN | ACK, seq=rcv_nxt.value - 1, ack=snd_nxt.value)
    server.receive_packet(packet(fin), 0.5)
    who = f"{Endpoint(US, 80)} {Endpoint(PEER, port)}"
    # relative to the client's ISN: its SYN and FIN took 0 and 1
    assert out.getvalue().splitlines()[0] == (
        f"    {who}  time_wait.fin_again  RFC 9293 3.10.7.4  SEG.SEQ=1 RCV.NXT=2 msl=1")

"""RFC 3168 6.1 for TCP, the object alone: negotiation flags, the receiver's ECE echo until
CWR, the sender's one reduction per window and its CWR."""

from __future__ import annotations

from userstack.tcp.ecn import CWR, ECE, Ecn, is_ecn_setup_syn, is_ecn_setup_syn_ack
from userstack.wire.seq import SeqNum
from userstack.wire.tcp import TcpFlags

SYN, ACK = TcpFlags.SYN, TcpFlags.ACK


def test_setup_segments() -> None:
    assert is_ecn_setup_syn(SYN | ECE | CWR)
    assert not is_ecn_setup_syn(SYN | ECE)  # both bits, or it is not a request
    assert not is_ecn_setup_syn(SYN | ACK | ECE | CWR)  # a SYN-ACK is not a SYN
    assert is_ecn_setup_syn_ack(SYN | ACK | ECE)
    # a SYN-ACK with both bits set is what a host that does not understand ECN sends by
    # reflecting the SYN's flags: not an agreement (RFC 3168 6.1.1)
    assert not is_ecn_setup_syn_ack(SYN | ACK | ECE | CWR)
    assert not is_ecn_setup_syn_ack(SYN | ACK)


def test_receiver_echoes_ece_until_cwr() -> None:
    ecn = Ecn(SeqNum(0))
    assert ecn.ack_flags() == 0
    ecn.on_arrival(ce=False, cwr=False)
    assert ecn.ack_flags() == 0
    ecn.on_arrival(ce=True, cwr=False)  # congestion experienced
    for _ in range(3):  # every ACK, also for later unmarked data
        assert ecn.ack_flags() == ECE
        ecn.on_arrival(ce=False, cwr=False)
    ecn.on_arrival(ce=False, cwr=True)  # the sender has reduced
    assert ecn.ack_flags() == 0
    ecn.on_arrival(ce=True, cwr=True)  # a CWR packet itself marked: echo again
    assert ecn.ack_flags() == ECE


def test_sender_reduces_once_per_window_and_sets_cwr_once() -> None:
    ecn = Ecn(SeqNum(1000))
    assert ecn.take_cwr() == 0
    assert ecn.on_ece(SeqNum(1000), SeqNum(11000))  # reduce; recover = SND.NXT
    assert ecn.take_cwr() == CWR and ecn.take_cwr() == 0  # on the next new data only
    # more ECEs for the same window of data: no further reduction
    assert not ecn.on_ece(SeqNum(5000), SeqNum(15000))
    assert not ecn.on_ece(SeqNum(10999), SeqNum(16000))
    assert ecn.take_cwr() == 0
    assert ecn.on_ece(SeqNum(11000), SeqNum(20000))  # the next window: reduce again
    assert ecn.reductions == 2 and ecn.take_cwr() == CWR

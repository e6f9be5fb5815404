"""The core names the rule behind each decision (tcp/rules.py): the right rule, with the
values it compared, at the step of SEGMENT ARRIVES that applied it."""

from __future__ import annotations

from tcp_harness import ACK, CFG, FIN, IRS, ISS, LOCAL, REMOTE, RST, SYN, seg, send, seq

from userstack.tcp.connection import Connection
from userstack.tcp.rules import Decision, Explainer, Rule, variable_name
from userstack.tcp.state import State


def explained_established() -> tuple[Connection, Explainer]:
    why = Explainer()
    conn = Connection.open_active(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG, explain=why)
    send(conn, seg(IRS, ISS + 1, SYN))
    conn.take_outgoing()
    return conn, why


def rules(decisions: list[Decision]) -> list[Rule]:
    return [d.rule for d in decisions]


def test_the_handshake_is_told_rule_by_rule_with_the_values_compared() -> None:
    conn, why = explained_established()
    assert conn.state is State.ESTABLISHED
    opened, established, sampled = why.take()
    assert opened == Decision(Rule.OPEN_ACTIVE, (("iss", ISS),))
    assert established == Decision(
        Rule.SYN_SENT_ESTABLISHED, (("seg_ack", ISS + 1), ("iss", ISS), ("irs", IRS))
    )
    assert sampled.rule is Rule.RTT_SAMPLE  # the SYN was timed (RFC 6298 2)
    assert why.take() == []  # taken once


def test_an_unacceptable_segment_names_the_window_it_missed() -> None:
    conn, why = explained_established()
    why.take()
    send(conn, seg(IRS + 1 + 50_000, ISS + 1, ACK, payload=b"x"))  # far beyond RCV.WND
    (decision,) = why.take()
    assert decision.rule is Rule.NOT_ACCEPTABLE
    assert dict(decision.compared) == {
        "seg_seq": IRS + 1 + 50_000, "seg_len": 1, "rcv_nxt": IRS + 1,
        "rcv_wnd": conn.tcb.rcv_wnd,
    }
    assert [s.flags for s in conn.take_outgoing()] == [ACK]  # the ACK the rule asks for


def test_an_in_window_rst_off_rcv_nxt_gets_a_challenge_ack_and_says_rfc_5961() -> None:
    conn, why = explained_established()
    why.take()
    send(conn, seg(IRS + 10, flags=RST))
    assert rules(why.take()) == [Rule.ACCEPTABLE, Rule.RST_IN_WINDOW]
    assert conn.state is State.ESTABLISHED
    assert [s.flags for s in conn.take_outgoing()] == [ACK]  # the challenge ACK
    assert Rule.RST_IN_WINDOW.citation == "RFC 5961 3.2"


def test_data_in_order_then_out_of_order() -> None:
    conn, why = explained_established()
    why.take()
    send(conn, seg(IRS + 1, ISS + 1, ACK, payload=b"a" * 10))
    assert rules(why.take()) == [Rule.ACCEPTABLE, Rule.ACK_OLD, Rule.TEXT_IN_ORDER]
    send(conn, seg(IRS + 21, ISS + 1, ACK, payload=b"b" * 10))  # a hole of 10
    decisions = why.take()
    assert rules(decisions) == [Rule.ACCEPTABLE, Rule.ACK_OLD, Rule.TEXT_OUT_OF_ORDER]
    assert dict(decisions[-1].compared)["rcv_nxt"] == IRS + 11


def test_time_wait_ends_after_2msl_by_name() -> None:
    conn, why = explained_established()
    conn.close(1.0)
    send(conn, seg(IRS + 1, ISS + 2, ACK | FIN), at=1.1)
    assert conn.state is State.TIME_WAIT
    decided = rules(why.take())
    assert decided.index(Rule.ACK_NEW) < decided.index(Rule.SLOW_START)  # then cwnd grows
    assert decided[-1] is Rule.FIN_TIME_WAIT
    conn.on_timer(1.1 + 2 * CFG.msl)
    assert rules(why.take()) == [Rule.TIME_WAIT_EXPIRED]
    assert conn.state is State.CLOSED


def test_retransmission_timeout_says_what_the_rto_became() -> None:
    conn, why = explained_established()
    conn.send(b"x" * 100, 0.0)
    why.take()
    rto = conn.info(0.0).rto
    conn.on_timer(conn.next_deadline() or 0.0)
    backoff, timeout = why.take()
    assert backoff.rule is Rule.RTO_BACKOFF
    assert backoff.changed == (("rto", rto, 2 * rto),)
    assert timeout.rule is Rule.CC_TIMEOUT  # RFC 5681 3.1: the loss window
    assert dict((k, new) for k, _, new in timeout.changed)["cwnd"] == conn.send_mss


def test_three_duplicate_acks_are_a_fast_retransmit() -> None:
    conn, why = explained_established()  # no SACK in CFG's SYN exchange: NewReno
    conn.send(b"y" * 5000, 0.0)
    why.take()
    send(conn, seg(IRS + 1, ISS + 1001, ACK), at=0.1)  # the first segment arrived
    for t in (0.2, 0.3, 0.4):
        send(conn, seg(IRS + 1, ISS + 1001, ACK), at=t)
    decided = rules(why.take())
    assert decided.count(Rule.ACK_DUPLICATE) == 3
    assert decided[-1] is Rule.FAST_RETRANSMIT


def test_a_sink_gets_each_decision_at_once() -> None:
    seen: list[Decision] = []
    why = Explainer(seen.append)
    Connection.open_passive(LOCAL, REMOTE, iss=seq(1), now=0.0, config=CFG, explain=why)
    assert rules(seen) == [Rule.OPEN_PASSIVE]
    assert why.take() == []


def test_a_segment_for_a_closed_tcb_is_reset_by_rule() -> None:
    why = Explainer()
    conn = Connection.open_passive(LOCAL, REMOTE, iss=ISS, now=0.0, config=CFG, explain=why)
    send(conn, seg(IRS, ISS + 1, ACK))  # an ACK in LISTEN
    assert rules(why.take()) == [Rule.OPEN_PASSIVE, Rule.LISTEN_ACK_RESET]
    assert [s.flags for s in conn.take_outgoing()] == [RST]
    assert Rule.LISTEN_ACK_RESET.citation == "RFC 9293 3.10.7.2"
    assert Rule.LISTEN_ACK_RESET.url == "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.2"


def test_rule_table_ids_are_unique_and_variables_are_spelled_as_the_rfc() -> None:
    ids = [r.rule_id for r in Rule]
    assert len(ids) == len(set(ids))
    assert all(r.summary and r.rfc.startswith("RFC ") for r in Rule)
    assert variable_name("seg_seq") == "SEG.SEQ"
    assert variable_name("max_snd_wnd") == "MAX.SND.WND"
    assert variable_name("iss") == "ISS"
    assert variable_name("cwnd") == "cwnd"

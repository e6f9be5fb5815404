"""What the stack drops, answers and survives, counted by name.

Anything a peer sends that the stack cannot use is dropped and counted here, never
raised: the counters are how a reader of `userstack ss` or a test sees that it happened.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True)
class StackCounters:
    packets_in: int = 0  # every packet handed to receive_packet()
    packets_out: int = 0  # every packet handed out by take_packets()
    malformed: int = 0  # WireError: bad IPv4/TCP/ICMP header, checksum, length, fragment
    not_for_us: int = 0  # IPv4 destination is not our address
    bad_source: int = 0  # source is broadcast, multicast or 0.0.0.0 (RFC 1122 3.2.1.3)
    unsupported_protocol: int = 0  # IPv4 payload is neither TCP nor ICMP
    icmp_echo_replies: int = 0  # echo requests answered (RFC 792, RFC 1122 3.2.2.6)
    icmp_ignored: int = 0  # other valid ICMP (echo replies, source quench, unknown codes)
    # ICMP errors quoting a TCP segment (RFC 9293 3.9.2.1): acted on by the connection;
    # quoting a sequence number outside SND.UNA..SND.NXT (RFC 5927 4.1); or matching no
    # connection (or not a TCP segment from us)
    icmp_errors_accepted: int = 0
    icmp_errors_out_of_window: int = 0
    icmp_errors_no_connection: int = 0
    rst_sent: int = 0  # RSTs for segments no connection owns (RFC 9293 3.10.7.1)
    other_queue_drops: int = 0  # no TCB, but another queue's stack owns the port: no RST
    rst_ignored: int = 0  # RSTs that arrived for no connection: dropped, never answered
    syn_backlog_drops: int = 0  # SYNs dropped because the listener's backlog was full
    listener_resets: int = 0  # embryonic / unaccepted connections reset when a listener closed
    orphan_aborts: int = 0  # data arrived for a connection the application had closed: RST
    time_wait_reuses: int = 0  # a new SYN took over a four-tuple in TIME-WAIT (RFC 1122 4.2.2.13)
    connection_bugs: int = 0  # an exception escaped one connection's processing: it was aborted
    internal_errors: int = 0  # an exception in the stack's own handling of a segment: dropped

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

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
    malformed: int = 0  # WireError: bad IP/TCP/ICMP(v6) header, checksum, length
    not_for_us: int = 0  # the destination is not our address
    # the source is not one host: broadcast, multicast, 0.0.0.0 (RFC 1122 3.2.1.3); in
    # IPv6 multicast, or in ::/80 (unspecified, loopback, IPv4-mapped: RFC 4291 2.5)
    bad_source: int = 0
    unsupported_protocol: int = 0  # the payload is neither TCP nor ICMP(v6)
    icmp_echo_replies: int = 0  # echo requests answered (RFC 792, RFC 1122 3.2.2.6)
    icmp_ignored: int = 0  # other valid ICMP (echo replies, source quench, unknown codes)
    # ICMP errors quoting a TCP segment (RFC 9293 3.9.2.1): acted on by the connection;
    # quoting a sequence number outside SND.UNA..SND.NXT (RFC 5927 4.1); or matching no
    # connection (or not a TCP segment from us)
    icmp_errors_accepted: int = 0
    icmp_errors_out_of_window: int = 0
    icmp_errors_no_connection: int = 0
    # IPv6 (RFC 8200): MLD, router and neighbour solicitations/advertisements the kernel
    # sends on any link it brings up; a TUN has no link layer to resolve, so none is spoken
    ipv6_link_chatter: int = 0
    icmp_errors_sent: int = 0  # Parameter Problem, Time Exceeded (reassembly) we sent
    icmp_errors_rate_limited: int = 0  # ... and those the rate limit held back (RFC 4443 2.4 (f))
    # Fragments (userstack/stack/reassembly.py): every one that arrived, every datagram
    # rebuilt, and every drop by its reason
    fragments_in: int = 0
    fragments_reassembled: int = 0
    fragments_overlap: int = 0  # overlapped another: the whole datagram dropped (RFC 5722)
    fragments_duplicate: int = 0  # an exact copy of one held: dropped alone
    fragments_no_upper_header: int = 0  # first fragment without it (RFC 7112, RFC 1858)
    fragments_bad_length: int = 0  # not 8n bytes and not last; or disagrees with the last
    fragments_too_big: int = 0  # would make a datagram over 65535 bytes
    fragments_timeout: int = 0  # datagrams not whole in time (RFC 8200 4.5, RFC 1122 3.3.2)
    fragments_evicted: int = 0  # datagrams dropped to make room for newer ones
    fragments_no_room: int = 0  # a fragment larger than the whole reassembly budget
    rst_sent: int = 0  # RSTs for segments no connection owns (RFC 9293 3.10.7.1)
    other_queue_drops: int = 0  # no TCB, but another queue's stack owns the port: no RST
    rst_ignored: int = 0  # RSTs that arrived for no connection: dropped, never answered
    # A listener's two queues (RFC 4987; stack/listener.py): SYNs dropped while the accept
    # queue was full; half-open TCBs recycled (reset, oldest first) to admit a SYN while
    # the SYN queue was full with cookies off (RFC 4987 3.4); SYNs answered with a SYN
    # cookie while the SYN queue was full; ACKs that brought a valid cookie back and became
    # connections, and ACKs to a listener that were not (answered as LISTEN does: RST);
    # cookie ACKs dropped because the accept queue was full; half-open TCBs that never
    # completed (SYN,ACK retries exhausted, RST)
    accept_queue_drops: int = 0
    syn_queue_recycled: int = 0
    syn_cookies_sent: int = 0
    syn_cookies_accepted: int = 0
    syn_cookies_invalid: int = 0
    syn_cookie_accept_queue_drops: int = 0
    half_open_dropped: int = 0
    listener_resets: int = 0  # embryonic / unaccepted connections reset when a listener closed
    orphan_aborts: int = 0  # data arrived for a connection the application had closed: RST
    time_wait_reuses: int = 0  # a new SYN took over a four-tuple in TIME-WAIT (RFC 1122 4.2.2.13)
    time_wait_syn_drops: int = 0  # such a SYN found the listener's queues full: dropped
    connection_bugs: int = 0  # an exception escaped one connection's processing: it was aborted
    internal_errors: int = 0  # an exception in the stack's own handling of a segment: dropped

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

"""The host: IP packets in, IP packets out, TCP connections in between (sans-I/O).

The Stack owns an IPv4 address, an IPv6 address, or both (addresses.py). It parses
every arriving packet, hands TCP segments to the connection their 4-tuple names (or to
a listener, or answers them with RST), answers ICMP echo requests, hands ICMP errors
about our segments to the
connection whose four-tuple they quote (RFC 9293 3.9.2.1; the core decides whether to
believe them), and turns what the connections want to send into IPv4 packets, with
each connection's TTL and DiffServ byte (MUST-48, MUST-49). It never reads a clock and
never blocks: time comes in as `now`, packets leave through `take_packets()`, and what
happened to each connection leaves through `take_changed()` (the handles of the
connections whose state moved, for the layer that wakes the application) and
`take_events()` (every event, for tracing).

The application reaches a connection only through its `ConnectionHandle` (handle.py),
which `connect()` and `accept()` return.

Packets arrive in batches (`receive_packets`, one per link wake-up): each connection
a batch touched is collected once, after the batch (its segments become packets, its
events are queued, its next deadline goes on the timer heap), not once per segment.

A peer can send anything; nothing it sends raises out of `receive_packets()`. Bad
packets are dropped and counted (`counters`), and an exception inside one
connection's processing aborts that connection alone (also counted).

Offload: with a link that completes checksums (`offload`, from `Link.offload`), every TCP
packet leaves as an `OffloadedPacket` with only the pseudo-header sum in its checksum field,
and a segment longer than the MSS, where the link also segments, as a super-segment cut at
the connection's MSS. A packet the link vouches for (`Vouched`) is not checksummed again.

TCP is point to point: a packet whose source is not one host (broadcast, multicast,
0.0.0.0) is dropped, so no SYN from one is answered and no RST goes to one, and an
OPEN to such an address is refused (RFC 1122 3.2.1.3 and 4.2.3.10; RFC 9293 3.9.1
MUST-46, 3.10.7.2 MUST-63).

Both families go through the same code: the demux key's remote address is an int, and
its size says its family (addresses.py); a connection's packets are IPv4 or IPv6 by it.
Each family has its own listeners (a port may listen in one or both, as with
trio.open_tcp_listeners's one socket per family), an IPv6 connection advertises an MSS
20 bytes smaller (the MTU minus 60, RFC 9293 3.7.1) and carries its own flow label (RFC
6437). IPv6 packets the stack cannot process are answered with a Parameter Problem (RFC
8200 4); the kernel's link chatter (MLD, neighbour discovery) is counted and dropped.
Fragments of either family are reassembled (reassembly.py) and then handled like any
packet; the stack sends none.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import weakref
from collections.abc import Callable, Container, Iterable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from ..tcp.config import TcpConfig
from ..tcp.connection import Connection, reset_for
from ..tcp.events import (
    Closed,
    Connected,
    DataReadable,
    Error,
    ErrorReason,
    Event,
    StateChanged,
)
from ..tcp.icmp_errors import IPV6_EXTRA, classify, classify6, path_mtu, path_mtu6
from ..tcp.info import TcbInfo
from ..tcp.rules import Explainer, Rule
from ..tcp.state import State
from ..tcp.time_wait import TimeWait
from ..tcp.timestamps import clock_at
from ..wire.addr import Endpoint
from ..wire.errors import WireError
from ..wire.icmp import ICMP_ERROR_TYPES, IcmpEcho, IcmpError, IcmpType, icmp_type
from ..wire.icmpv6 import (
    ICMPV6_ERROR_TYPES,
    LINK_CHATTER_TYPES,
    UNRECOGNIZED_NEXT_HEADER,
    Icmpv6Echo,
    Icmpv6Error,
    Icmpv6Type,
    icmpv6_type,
)
from ..wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPv4Packet
from ..wire.ipv6 import IPPROTO_ICMPV6, IPPROTO_NONE, IPv6Packet, ParameterProblem
from ..wire.offload import NO_OFFLOAD, LinkPacket, OffloadCapability, OffloadedPacket, Vouched
from ..wire.packet import (
    build_icmp_packet,
    build_icmpv6_packet,
    build_tcp6_packet,
    build_tcp_packet,
)
from ..wire.tcp import TcpFlags, TcpSegment
from .addresses import FlowLabels, HostAddresses, address_of, is_ipv6, is_one_host6
from .counters import StackCounters
from .handle import ConnectionHandle
from .icmp_out import IcmpErrors
from .isn import IsnGenerator
from .listener import DEFAULT_SYN_BACKLOG, DemuxKey, Listener
from .ports import EphemeralPorts
from .queues import QueueShare
from .reassembly import Reassembler
from .syncookies import COOKIE_PERIOD, MAX_AGE, SynCookies, cookie_syn_ack
from .time_wait_table import TimeWaitEnd, TimeWaitTable

_SYN, _ACK, _RST = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.RST
_LINK_CHATTER = frozenset(bytes((kind,)) for kind in LINK_CHATTER_TYPES)  # first octets
_GONE = (State.CLOSED, State.LISTEN)  # a TCB in either is removed from the demux table

# whose events: a Connection, or the endpoints of a TIME-WAIT record that ended
ConnectionEvents = tuple[Connection | TimeWaitEnd, list[Event]]
_TIME_WAIT_ENDS = [StateChanged(State.TIME_WAIT, State.CLOSED), Closed()]


class Stack:
    """Demultiplexes segments to connections; see the module docstring."""

    def __init__(
        self,
        address: IPv4Address | IPv6Address | IPv4Interface | IPv6Interface | str | None,
        *,
        key: bytes,
        address6: IPv6Address | IPv6Interface | str | None = None,
        config: TcpConfig | None = None,
        ephemeral_ports: tuple[int, int] | None = None,
        offload: OffloadCapability = NO_OFFLOAD,
        queue: QueueShare | None = None,
        syn_cookies: bool = True,
    ) -> None:
        """`key` is the secret behind ISNs (RFC 6528), SYN cookies (RFC 4987 3.6; on
        unless `syn_cookies` is False), ephemeral ports (RFC 6056) and flow labels
        (RFC 6437). `offload` is what the link takes (see the module docstring).

        `queue` makes this stack one of several on a multi-queue TUN (userstack.workers):
        it opens connections from its own slice of the ephemeral ports, and leaves alone
        segments for another stack's slice (see `_segment_arrives`).

        `address` is the IPv4 address or, for a stack with one family, either;
        `address6` the IPv6 address of a stack with both (see HostAddresses).
        """
        self.addresses = addresses = HostAddresses(address, address6)
        self.address = addresses.primary
        self.address6 = addresses.ipv6
        self._address = addresses.v4  # the demux works on addresses as ints (-1: none)
        self._address6 = addresses.v6
        self.config = config or TcpConfig()
        self.counters = StackCounters()
        self.offload = offload
        self.reassembly = Reassembler(self.counters)
        self._icmp_errors = IcmpErrors(addresses, self.counters)
        self._flow_labels = FlowLabels(key)
        self._configs6: dict[TcpConfig, TcpConfig] = {}
        self._isn = IsnGenerator(key)
        self._queue = queue
        if queue is not None:
            ephemeral_ports = queue.ports
        self._cookies = SynCookies(key) if syn_cookies else None
        self._ports = EphemeralPorts(key, *(ephemeral_ports or ()))
        self._conns: dict[DemuxKey, Connection] = {}
        self._listeners: dict[int, Listener] = {}  # IPv4, by port
        self._listeners6: dict[int, Listener] = {}  # IPv6, by port
        self._time_wait = TimeWaitTable()  # four-tuples in TIME-WAIT, without their TCBs
        # ...but a TCB the application still holds hears when its TIME-WAIT ends
        self._time_wait_held: weakref.WeakValueDictionary[DemuxKey, Connection] = (
            weakref.WeakValueDictionary()
        )
        self._time_wait_why: dict[DemuxKey, Explainer] = {}  # with `explain` on only
        self._half_open: dict[DemuxKey, Listener] = {}  # SYN-RECEIVED TCBs of listeners
        self._orphans: set[DemuxKey] = set()  # the application closed and forgot these
        self._touched: dict[DemuxKey, Connection] = {}  # by this batch, not yet collected
        self._packets: list[LinkPacket] = []
        self._looped: list[bytes] = []  # packets to our own address (`localhost`)
        self._events: list[ConnectionEvents] = []
        self._accept_ready: set[int] = set()
        self._changed: dict[ConnectionHandle, None] = {}  # handles with new events, in order
        # Timers: a heap of (deadline, tiebreak, key) with lazy deletion; `_deadlines`
        # holds each connection's current deadline, and heap entries that disagree are stale.
        self._timers: list[tuple[float, int, DemuxKey]] = []
        self._deadlines: dict[DemuxKey, float] = {}
        self._tiebreak = itertools.count()
        # Who hears each new connection's decisions (tcp/rules.py; `serve --trace --why`):
        # called with (local, remote) when a connection is made; None: nobody, no cost.
        self.explain: Callable[[Endpoint, Endpoint], Explainer] | None = None

    # ---- packets in ----------------------------------------------------------------

    def receive_packets(self, packets: Iterable[bytes], now: float) -> None:
        """A batch of IPv4 packets from the link. Never raises for anything a peer sent."""
        receive = self._packet_arrives
        for data in packets:
            receive(data, now)
        self._collect_touched(now)

    def receive_packet(self, data: bytes, now: float) -> None:
        """One IPv4 packet: a batch of one."""
        self._packet_arrives(data, now)
        self._collect_touched(now)

    def _packet_arrives(self, data: bytes, now: float) -> None:
        counters = self.counters
        counters.packets_in += 1
        if data and data[0] >> 4 == 6:
            found = self._ipv6_arrives(data, now)
            if found is None:
                return
            src, seg = found
        else:
            try:
                ip = IPv4Packet.parse(data, view=True)  # the payload is parsed at once
                if int(ip.dst) != self._address:
                    counters.not_for_us += 1
                    return
                src = int(ip.src)
                if not self._is_one_host(src):  # RFC 1122 3.2.1.3: silently discard
                    counters.bad_source += 1
                    return
                if ip.is_fragment:
                    whole = self.reassembly.add_ipv4(ip, data, now)
                    if whole is None:
                        return
                    data = whole  # a rebuilt datagram: its checksum is for us to verify
                    ip = IPv4Packet.parse(whole)
                if ip.protocol == IPPROTO_TCP:
                    vouched = isinstance(data, Vouched)  # the link checked it: no second sum
                    seg = TcpSegment.parse(
                        ip.payload, src, self._address, verify=not vouched, ecn=ip.tos
                    )
                elif ip.protocol == IPPROTO_ICMP:
                    self._icmp_arrives(ip.src, bytes(ip.payload), now)
                    return
                else:
                    counters.unsupported_protocol += 1
                    return
            except WireError:
                counters.malformed += 1
                return
        try:
            self._segment_arrives(src, seg, now)
        except Exception:  # a bug in the stack itself: drop this packet, keep the host up
            counters.internal_errors += 1

    def _ipv6_arrives(self, data: bytes, now: float) -> tuple[int, TcpSegment] | None:
        """An IPv6 packet: the IPv4 path's twin, plus RFC 8200 4's Parameter Problems.
        Returns the TCP segment in it, with its source, for `_segment_arrives`."""
        counters = self.counters
        try:
            try:
                ip = IPv6Packet.parse(data)
                if ip.next_header == IPPROTO_ICMPV6 and ip.payload[:1] in _LINK_CHATTER:
                    counters.ipv6_link_chatter += 1  # MLD, ND: nothing to resolve on a TUN
                    return None
                dst = int(ip.dst)
                if dst != self._address6:
                    counters.not_for_us += 1
                    return None
                src = int(ip.src)
                if not is_one_host6(src):  # also keeps IPv6 demux keys apart from IPv4's
                    counters.bad_source += 1
                    return None
                if ip.fragment is not None:
                    whole = self.reassembly.add_ipv6(ip, data, now)
                    if whole is None:
                        return None
                    data = whole
                    ip = IPv6Packet.parse(whole)
                protocol = ip.next_header
                if protocol == IPPROTO_TCP:
                    vouched = isinstance(data, Vouched)  # the link checked it (TSO6)
                    seg = TcpSegment.parse(
                        ip.payload, src, dst, verify=not vouched, ecn=ip.traffic_class
                    )
                elif protocol == IPPROTO_ICMPV6:
                    self._icmp6_arrives(ip, now)
                    return None
                else:  # RFC 8200 4: an unrecognized Next Header is a Parameter Problem
                    counters.unsupported_protocol += 1
                    if protocol != IPPROTO_NONE:
                        self._parameter_problem(
                            data, UNRECOGNIZED_NEXT_HEADER, ip.next_header_offset, now
                        )
                    return None
            except ParameterProblem as problem:
                counters.malformed += 1
                self._parameter_problem(data, problem.code, problem.pointer, now)
                return None
        except WireError:
            counters.malformed += 1
            return None
        return src, seg

    def _parameter_problem(self, original: bytes, code: int, pointer: int, now: float) -> None:
        packet = self._icmp_errors.parameter_problem(original, code, pointer, now)
        if packet is not None:
            self._packets.append(packet)

    def _is_one_host(self, address: int) -> bool:
        """Whether `address` names a single host (addresses.py: either family)."""
        return self.addresses.is_one_host(address)

    def _icmp_arrives(self, src: IPv4Address, message: bytes, now: float) -> None:
        """Echo requests are answered; errors go to `_icmp_error_arrives`; every other
        valid ICMP message is counted and dropped (RFC 1122 3.2.2: a host may discard
        types it does not implement). Garbage raises WireError."""
        kind = icmp_type(message)
        if kind == IcmpType.ECHO_REQUEST:  # RFC 1122 3.2.2.6: MUST answer
            echo = IcmpEcho.parse(message)
            self.counters.icmp_echo_replies += 1
            self._packets.append(build_icmp_packet(self._address, src, echo.reply()))
        elif kind in ICMP_ERROR_TYPES:
            self._icmp_error_arrives(IcmpError.parse(message), now)
        else:
            self.counters.icmp_ignored += 1

    def _icmp6_arrives(self, ip: IPv6Packet, now: float) -> None:
        """ICMPv6 as `_icmp_arrives` does ICMP: every node answers echo requests (RFC
        4443 4.1), errors go to their connection, other valid messages are dropped."""
        src, message = ip.src, ip.payload
        kind = icmpv6_type(message, src, ip.dst)
        if kind == Icmpv6Type.ECHO_REQUEST:
            echo = Icmpv6Echo.parse(message, src, ip.dst)
            self.counters.icmp_echo_replies += 1
            self._packets.append(build_icmpv6_packet(self._address6, src, echo.reply()))
        elif kind in ICMPV6_ERROR_TYPES:
            self._icmp_error_arrives(Icmpv6Error.parse(message, src, ip.dst), now)
        else:
            self.counters.icmp_ignored += 1

    def _icmp_error_arrives(self, error: IcmpError | Icmpv6Error, now: float) -> None:
        """RFC 9293 3.9.2.1 (MUST-54): an ICMP error about a TCP segment we sent goes to
        the connection of the quoted four-tuple, which checks the quoted sequence number
        (RFC 5927 4.1) and reacts by kind (userstack/tcp/icmp_errors.py). Source Quench
        (RFC 6633, MUST-55) and codes TCP does not know are ignored."""
        counters = self.counters
        if isinstance(error, Icmpv6Error):  # RFC 4443 3, RFC 8201
            kind, local = classify6(error.type, error.code), self._address6
            mtu = path_mtu6(error.mtu)
        else:
            kind, local = classify(error.type, error.code), self._address
            mtu = path_mtu(error.next_hop_mtu, error.original_length)
        if kind is None:
            counters.icmp_ignored += 1
            return
        key = (int(error.dst), error.dst_port, error.src_port)
        conn = self._conns.get(key)
        if conn is None or error.protocol != IPPROTO_TCP or int(error.src) != local:
            counters.icmp_errors_no_connection += 1
            return
        try:
            accepted = conn.on_icmp_error(kind, error.seq, now, mtu=mtu)
        except Exception:
            self._contain(key, conn, now)
            return
        if not accepted:
            counters.icmp_errors_out_of_window += 1
            return
        counters.icmp_errors_accepted += 1
        self._settle(key, conn, now)

    def _segment_arrives(self, src: int, seg: TcpSegment, now: float) -> None:
        key = (src, seg.src_port, seg.dst_port)
        conn = self._conns.get(key)
        listener = (self._listeners6 if is_ipv6(src) else self._listeners).get(seg.dst_port)
        if conn is not None:
            self._drive_segment(key, conn, seg, now)
            return
        time_wait = self._time_wait.find(key)
        if time_wait is not None:
            self._time_wait_segment(listener, key, *time_wait, seg, now)
            return
        if listener is not None:
            self._listen_segment(listener, key, seg, now)
            return
        if self._queue is not None and self._queue.owned_elsewhere(seg.dst_port):
            # Not ours to answer: another queue's stack opened this four-tuple, and the
            # kernel steered the segment here (its record of the flow's queue expired). A
            # RST would kill that connection; the owner's next transmission re-steers it.
            self.counters.other_queue_drops += 1
            return
        # No TCB: the reply of RFC 9293 3.10.7.1 for CLOSED (none to a RST).
        remote = address_of(src)
        replies = reset_for(seg, None if self.explain is None else self.explain(
            Endpoint(self.addresses.local_for(remote), seg.dst_port),
            Endpoint(remote, seg.src_port)))
        if not replies:
            self.counters.rst_ignored += 1
            return
        self.counters.rst_sent += len(replies)
        out = self._looped if src in (self._address, self._address6) else self._packets
        out.extend(self._tcp_packet(src, rst, self.config) for rst in replies)

    def _time_wait_segment(
        self, listener: Listener | None, key: DemuxKey, record: TimeWait, config: TcpConfig,
        seg: TcpSegment, now: float,
    ) -> None:
        """A segment for a four-tuple in TIME-WAIT: the record answers it (RFC 9293
        3.10.7.4, tcp/time_wait.py), unless it is a new SYN for a listening port."""
        why = None if self.explain is None else self._time_wait_explainer(key)
        # RFC 6191 2: would the new incarnation use timestamps (if the SYN asks)?
        timestamps = (config if listener is None else listener.config).timestamps
        new_syn = None if listener is None else record.new_incarnation_rule(
            seg, timestamps=timestamps)
        if new_syn is not None:  # RFC 1122 4.2.2.13, or RFC 6191 2 by timestamps
            if why is not None:
                why.decide(new_syn, seg_seq=seg.seq, rcv_nxt=record.rcv_nxt)
            self._new_incarnation(listener, key, record, config, seg, now)
            return
        expiry = record.expiry
        reply = record.on_segment(seg, now, 2 * config.msl, config.challenge_ack_limit, why,
                                  timestamps=timestamps)
        if record.expiry != expiry:  # the peer's FIN again: 2*MSL starts over
            self._time_wait.add(key, record, config)
        if reply is not None:
            self._packets.append(self._tcp_packet(key[0], reply, config))

    def _new_incarnation(
        self, listener: Listener, key: DemuxKey, old: TimeWait, config: TcpConfig,
        seg: TcpSegment, now: float,
    ) -> None:
        """A new SYN for a four-tuple in TIME-WAIT that cannot be an old duplicate
        (RFC 1122 4.2.2.13, RFC 9293 3.6.1 MAY-2): delete the TIME-WAIT record and let the
        listener take the SYN, with an ISS above every sequence number the old
        incarnation used. With the listener's queues full, the SYN is dropped and the
        record kept (a SYN cookie could not keep the ISS rule)."""
        if listener.accept_queue_full or listener.syn_queue_full:
            self.counters.time_wait_syn_drops += 1
            return
        self.counters.time_wait_reuses += 1
        self._time_wait.remove(key, config)
        self._end_time_wait(key, now)
        self._listen_segment(listener, key, seg, now, previous=old)

    def _time_wait_explainer(self, key: DemuxKey) -> Explainer:
        """Who hears a TIME-WAIT record's decisions (explanations on): its connection's
        recorder, so a live trace goes on as it did (its ISNs known), else a new one."""
        why = self._time_wait_why.get(key)
        if why is None:
            assert self.explain is not None
            end = self._time_wait_end(key)
            why = self._time_wait_why[key] = self.explain(end.local, end.remote)
        return why

    def _time_wait_end(self, key: DemuxKey) -> TimeWaitEnd:
        remote = address_of(key[0])
        return TimeWaitEnd(
            Endpoint(self.addresses.local_for(remote), key[2]), Endpoint(remote, key[1])
        )

    def _listen_segment(
        self,
        listener: Listener,
        key: DemuxKey,
        seg: TcpSegment,
        now: float,
        *,
        previous: TimeWait | None = None,
    ) -> None:
        """A segment for a listening port and no TCB: a fully specified passive OPEN
        takes it through the LISTEN rules of RFC 9293 3.10.7.2 (RST ignored, ACK
        answered with RST, SYN -> SYN-RECEIVED). A TCB left in LISTEN is discarded.
        `previous` is the TIME-WAIT incarnation this SYN replaces, if any.

        The listener's queues come first (RFC 4987): a SYN finds the accept queue full
        (dropped), or the SYN queue full (a SYN cookie; without cookies the oldest
        half-open TCB makes room); a bare ACK may bring a cookie back
        (`_cookie_ack_arrives`)."""
        control = seg.flags & (_SYN | _ACK | _RST)
        if control == _SYN:
            if listener.accept_queue_full:
                self.counters.accept_queue_drops += 1
                return
            if listener.syn_queue_full and self._syn_queue_full(listener, key, seg, now):
                return
        elif control == _ACK and self._cookie_ack_arrives(listener, key, seg, now):
            return
        remote = Endpoint(address_of(key[0]), key[1])
        iss = self._isn.isn(listener.local, remote, now)
        if previous is not None:
            iss = previous.new_incarnation_iss(iss)
        conn = Connection.open_passive(
            listener.local, remote, iss=iss, now=now, config=listener.config,
            explain=None if self.explain is None else self.explain(listener.local, remote),
            ts_offset=self._isn.ts_offset(listener.local, remote),  # RFC 7323 7.1
        )
        self._offer_segmentation(conn)
        self._conns[key] = conn
        if control == _SYN:  # it will be in SYN-RECEIVED: a half-open TCB
            self._half_open[key] = listener
            listener.half_open[key] = None
        self._drive_segment(key, conn, seg, now)

    def _syn_queue_full(
        self, listener: Listener, key: DemuxKey, seg: TcpSegment, now: float
    ) -> bool:
        """No room for another half-open TCB. RFC 4987 3.6: answer with a SYN cookie and
        remember nothing (True: the SYN is done). With cookies off, RFC 4987 3.4: the
        oldest half-open TCB makes room (False: the SYN takes its place)."""
        if self._cookies is None:
            self._recycle_oldest_half_open(listener, now)
            return False
        iss = self._cookies.make(*self._packed_addresses(key[0]), seg, now)
        listener.cookie_sent_at = now
        self.counters.syn_cookies_sent += 1
        cfg = listener.config
        offset = self._isn.ts_offset(listener.local, Endpoint(address_of(key[0]), key[1]))
        reply = cookie_syn_ack(seg, iss, cfg, clock_at(offset, now))  # RFC 7323 7.1's clock
        self._packets.append(self._tcp_packet(key[0], reply, cfg))
        return True

    def _recycle_oldest_half_open(self, listener: Listener, now: float) -> None:
        """RFC 4987 3.4, "recycling the oldest half-open TCB": the one waiting longest is
        the likeliest spoofed, since a real peer answers within a round trip. It is
        aborted as any half-open TCB that gives up is (a RST: RFC 9293 3.10.5), and
        counted. One already ESTABLISHED by this batch, not yet collected, is skipped."""
        for key in listener.half_open:
            conn = self._conns[key]
            if conn.state is State.SYN_RECEIVED:
                break
        else:
            return
        del listener.half_open[key]
        del self._half_open[key]
        self.counters.syn_queue_recycled += 1
        conn.abort(now)
        self._collect(key, conn, now)

    def _packed_addresses(self, remote: int) -> tuple[bytes, bytes]:
        """(ours, theirs) as bytes, for the keyed hashes of a four-tuple, in either family."""
        theirs = address_of(remote)
        return self.addresses.local_for(theirs).packed, theirs.packed

    def _tcp_packet(self, remote: int, seg: TcpSegment, cfg: TcpConfig) -> bytes:
        """A segment no Connection sent (a cookie's SYN,ACK, a TIME-WAIT record's ACK) as
        an IP packet to `remote`, in its family, with `cfg`'s TTL and DiffServ byte."""
        if is_ipv6(remote):
            local = self._address6
            label = self._flow_labels.label(local, seg.src_port, remote, seg.dst_port)
            return build_tcp6_packet(local, remote, seg, hop_limit=cfg.ttl,
                                     traffic_class=cfg.tos, flow_label=label)
        return build_tcp_packet(self._address, remote, seg, ttl=cfg.ttl, tos=cfg.tos)

    def _cookie_ack_arrives(
        self, listener: Listener, key: DemuxKey, seg: TcpSegment, now: float
    ) -> bool:
        """A bare ACK for a listener, no TCB: if the listener sent cookies lately and this
        ACK echoes a valid one, the connection is made in ESTABLISHED, queued for
        accept, and handed the ACK (which may carry data). Returns False for the ACK to
        be answered as LISTEN answers it (RFC 9293 3.10.7.2: RST)."""
        sent_at = listener.cookie_sent_at
        if self._cookies is None or sent_at is None or now - sent_at >= MAX_AGE * COOKIE_PERIOD:
            return False  # no cookie of ours can be out there (as Linux's recent-overflow test)
        syn_options = self._cookies.check(*self._packed_addresses(key[0]), seg, now,
                                          timestamps=listener.config.timestamps)
        if syn_options is None:
            self.counters.syn_cookies_invalid += 1
            return False
        if listener.accept_queue_full:
            self.counters.syn_cookie_accept_queue_drops += 1  # the peer will retransmit
            return True
        remote = Endpoint(address_of(key[0]), key[1])
        conn = Connection.from_syn_cookie(
            listener.local, remote, ack=seg, syn_options=syn_options, now=now,
            config=listener.config,
            ts_offset=self._isn.ts_offset(listener.local, remote),  # the cookie's clock
        )
        self.counters.syn_cookies_accepted += 1
        self._conns[key] = conn
        self._half_open[key] = listener  # so that its Connected event queues it for accept
        self._drive_segment(key, conn, seg, now)
        return True

    # ---- driving connections, guarded ------------------------------------------------

    def _drive_segment(self, key: DemuxKey, conn: Connection, seg: TcpSegment, now: float) -> None:
        try:
            conn.on_segment(seg, now)
        except Exception:  # a bug in one connection must not take the others down
            self._contain(key, conn, now)
            return
        self._settle(key, conn, now)

    def _settle(self, key: DemuxKey, conn: Connection, now: float) -> None:
        """After input from the peer: collect `conn` after the batch, or now if it closed
        or reached TIME-WAIT: out of the table (or into the TIME-WAIT records) now, for
        the batch's next segment, which may be a new SYN."""
        if conn.state in _GONE or conn.state is State.TIME_WAIT:
            self._collect_guarded(key, conn, now)
        else:
            self._touched[key] = conn

    def _collect_touched(self, now: float) -> None:
        """After a batch: collect every connection it touched, once."""
        touched = self._touched
        if touched:
            self._touched = {}
            for key, conn in touched.items():
                self._collect_guarded(key, conn, now)

    def _collect_guarded(self, key: DemuxKey, conn: Connection, now: float) -> None:
        try:
            self._collect(key, conn, now)
        except Exception:
            self._contain(key, conn, now)

    def _drive_timer(self, key: DemuxKey, conn: Connection, now: float) -> None:
        try:
            conn.on_timer(now)
            self._collect(key, conn, now)
        except Exception:
            self._contain(key, conn, now)

    def _contain(self, key: DemuxKey, conn: Connection, now: float) -> None:
        """Abort a connection whose processing raised, and tell its owner it broke."""
        self.counters.connection_bugs += 1
        try:
            conn.fail(ErrorReason.CONNECTION_RESET, now)
            self._collect(key, conn, now)
        except Exception:
            self.counters.connection_bugs += 1
            self._events.append((conn, [Error(ErrorReason.CONNECTION_RESET), Closed()]))
            self._note_changed(conn)
        self._remove(key, conn)

    def _collect(self, key: DemuxKey, conn: Connection, now: float) -> None:
        """After any input to `conn`: its segments become packets, its events are
        queued for the application layer, and its place in the tables is updated."""
        out = conn.take_outgoing()
        if out:
            self._packets_for(conn, key[0], out)
        events = conn.take_events()
        if events:
            self._events.append((conn, events))
            self._note_changed(conn)
            for event in events:
                kind = type(event)
                if kind is Connected:
                    self._established(key, conn)
                elif kind is DataReadable and key in self._orphans:
                    self._orphan_data(key, conn, now)
                    return
        if conn.state in _GONE:
            self._remove(key, conn)
            return
        if conn.state is State.TIME_WAIT:
            self._enter_time_wait(key, conn)
            return
        deadline = conn.next_deadline()
        if deadline != self._deadlines.get(key):
            if deadline is None:
                del self._deadlines[key]
            else:
                self._deadlines[key] = deadline
                heapq.heappush(self._timers, (deadline, next(self._tiebreak), key))

    def _note_changed(self, conn: Connection) -> None:
        handle = conn.owner  # the ConnectionHandle, if the application holds one
        if handle is not None:
            self._changed[handle] = None  # type: ignore[index]

    def _offer_segmentation(self, conn: Connection) -> None:
        """A link that cuts super-segments: the connection may send them (and only then),
        in either family (TSO4, TSO6)."""
        if self.offload.segmentation:
            conn.allow_super_segments(self.offload.max_packet)

    def _packets_for(self, conn: Connection, remote: int, out: list[TcpSegment]) -> None:
        """The connection's segments as IP packets, with its own TTL and DiffServ
        byte (RFC 9293 3.9.1 MUST-48, 3.9.2 MUST-49): in IPv6 the hop limit and the
        traffic class, and its flow label (RFC 6437). With offload, the checksum (and
        the cutting of a super-segment) is left to the link in either family."""
        cfg, offload = conn.config, self.offload
        ttl, tos = cfg.ttl, cfg.tos
        gso_size = conn.send_mss if offload.segmentation else 0
        if is_ipv6(remote):
            local, lport = self._address6, conn.local.port
            label = self._flow_labels.label(local, lport, remote, conn.remote.port)
            if remote == local:  # to ourselves: it never reaches the link, as IPv4's below
                self._looped.extend(build_tcp6_packet(
                    local, local, seg, hop_limit=ttl, traffic_class=tos, flow_label=label
                ) for seg in out)
            elif offload.checksum:
                offloaded6 = OffloadedPacket.from_segment6
                self._packets.extend(offloaded6(
                    local, remote, seg, gso_size=gso_size, hop_limit=ttl, traffic_class=tos,
                    flow_label=label,
                ) for seg in out)
            else:
                self._packets.extend(build_tcp6_packet(
                    local, remote, seg, hop_limit=ttl, traffic_class=tos, flow_label=label
                ) for seg in out)
            return
        local = self._address
        if remote == local:  # to ourselves: it never reaches the link (take_looped)
            looped = self._looped
            looped.extend(build_tcp_packet(local, local, seg, ttl=ttl, tos=tos) for seg in out)
            return
        if not offload.checksum:
            build = build_tcp_packet
            self._packets.extend(build(local, remote, seg, ttl=ttl, tos=tos) for seg in out)
            return
        offloaded = OffloadedPacket.from_segment
        self._packets.extend(
            offloaded(local, remote, seg, gso_size=gso_size, ttl=ttl, tos=tos) for seg in out
        )

    def _established(self, key: DemuxKey, conn: Connection) -> None:
        listener = self._half_open.pop(key, None)
        if listener is not None:
            listener.half_open.pop(key, None)
            if self._listeners_for(listener.local.ip).get(listener.local.port) is listener:
                listener.accept_queue.append(conn)
                self._accept_ready.add(listener.local.port)

    def _orphan_data(self, key: DemuxKey, conn: Connection, now: float) -> None:
        """Data for a connection nobody will read: reset it, as Linux and BSD do
        (RFC 9293 3.10.4 leaves a fully closed user's incoming data undefined)."""
        self.counters.orphan_aborts += 1
        conn.abort(now)
        self._collect(key, conn, now)

    def _enter_time_wait(self, key: DemuxKey, conn: Connection) -> None:
        """The stack lets the TCB go and keeps a compact record (tcp/time_wait.py) for the
        rest of its 2*MSL, which the connection's own timer measures."""
        expiry = conn.next_deadline()
        assert expiry is not None  # in TIME-WAIT only the 2*MSL timer runs
        if conn.owner is not None:  # the application holds it: tell it at the end (weakly)
            self._time_wait_held[key] = conn
        self._remove(key, conn)
        self._time_wait.add(key, TimeWait.from_tcb(conn.tcb, expiry, conn.timestamps),
                            conn.config)
        if conn.explainer is not None:
            self._time_wait_why[key] = conn.explainer

    def _end_time_wait(self, key: DemuxKey, now: float) -> None:
        """A record's TIME-WAIT is over (2*MSL, or a new SYN took the four-tuple): the
        events of its end, from its Connection if the application still holds that one
        (which then enters CLOSED as RFC 9293 3.10.8 says; ABORT in TIME-WAIT sends
        nothing, 3.10.5), else from the record's endpoints."""
        if self._time_wait_why:
            self._time_wait_why.pop(key, None)
        conn = self._time_wait_held.pop(key, None)
        if conn is None:
            self._events.append((self._time_wait_end(key), list(_TIME_WAIT_ENDS)))
            return
        deadline = conn.next_deadline()
        if deadline is not None and deadline <= now:
            conn.on_timer(now)  # its own 2*MSL is over (RFC 9293 3.10.8; explained so)
        else:
            conn.abort(now)
        conn.take_outgoing()
        self._events.append((conn, conn.take_events()))

    def _remove(self, key: DemuxKey, conn: Connection) -> None:
        if self._conns.get(key) is not conn:
            return
        del self._conns[key]
        conn.owner = None
        self._touched.pop(key, None)
        self._deadlines.pop(key, None)
        self._orphans.discard(key)
        listener = self._half_open.pop(key, None)
        if listener is not None:
            listener.half_open.pop(key, None)
            self.counters.half_open_dropped += 1
        else:
            listener = (self._listeners6 if is_ipv6(key[0]) else self._listeners).get(key[2])
            if listener is not None and conn in listener.accept_queue:
                listener.accept_queue.remove(conn)

    # ---- timers ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time any connection or TIME-WAIT record needs on_timer(), or None."""
        timers, deadlines = self._timers, self._deadlines
        earliest = self.reassembly.next_deadline()
        tw = self._time_wait.next_deadline()
        if tw is not None and (earliest is None or tw < earliest):
            earliest = tw
        while timers:
            deadline, _, key = timers[0]
            if deadlines.get(key) == deadline:
                return deadline if earliest is None else min(deadline, earliest)
            heapq.heappop(timers)
        return earliest

    def on_timer(self, now: float) -> None:
        """Fire every connection timer due at `now`, time out reassembly, and end the
        TIME-WAIT records whose 2*MSL is over (RFC 9293 3.10.8)."""
        for key, config in self._time_wait.expire(now):
            if self.explain is not None and key not in self._time_wait_held:
                # the record's 2*MSL (a held TCB names its own)
                self._time_wait_explainer(key).decide(Rule.TIME_WAIT_EXPIRED, msl=config.msl)
            self._end_time_wait(key, now)
        for expired in self.reassembly.expire(now):
            if expired.first_fragment is not None:  # RFC 792, RFC 4443 3.3: code 1
                packet = self._icmp_errors.reassembly_timed_out(
                    expired.version, expired.first_fragment, now
                )
                if packet is not None:
                    self._packets.append(packet)
        timers, deadlines = self._timers, self._deadlines
        due: list[DemuxKey] = []
        while timers and timers[0][0] <= now:
            deadline, _, key = heapq.heappop(timers)
            if deadlines.get(key) == deadline:
                del deadlines[key]
                due.append(key)
        for key in due:
            conn = self._conns.get(key)
            if conn is not None:
                self._drive_timer(key, conn, now)

    # ---- what leaves -----------------------------------------------------------------

    def take_packets(self) -> list[LinkPacket]:
        """IPv4 packets to put on the link, in order."""
        packets, self._packets = self._packets, []
        self.counters.packets_out += len(packets)
        return packets

    def take_looped(self) -> list[bytes]:
        """IPv4 packets to our own address (a connection to `localhost`): the driver
        hands them straight back to receive_packets, as a loopback interface would."""
        looped, self._looped = self._looped, []
        return looped

    def take_events(self) -> list[ConnectionEvents]:
        """(connection, its new events) since the last call, in order: for tracing."""
        events, self._events = self._events, []
        return events

    def take_changed(self) -> list[ConnectionHandle]:
        """The handles of the connections that had events since the last call, in order:
        their readers and writers should look again."""
        changed, self._changed = self._changed, {}
        return list(changed)

    def take_accept_ready(self) -> set[int]:
        """Listening ports whose accept queue gained a connection since the last call."""
        ready, self._accept_ready = self._accept_ready, set()
        return ready

    # ---- the user side: OPEN, listen, accept, SEND, RECEIVE, CLOSE, ABORT --------------

    def connect(
        self,
        remote: Endpoint,
        now: float,
        *,
        config: TcpConfig | None = None,
        local_port: int | None = None,
        reserved: Container[int] = (),
    ) -> ConnectionHandle:
        """Active OPEN (RFC 9293 3.10.1) from `local_port` (a socket bound before
        connect) or else an ephemeral port (RFC 6056), never one in `reserved` (the ports
        sockets have bound: Linux's connect skips a port that bind(2) holds). One whose
        four-tuple is taken is refused with EADDRNOTAVAIL, as connect(2) does.

        An OPEN to an address that is not one host (broadcast, multicast, 0.0.0.0) is
        refused with ENETUNREACH, as Linux does (RFC 9293 3.9.1 MUST-46); so is one to a
        family the stack has no address in. The local address is ours in `remote`'s family.
        """
        if not self._is_one_host(int(remote.ip)):
            raise OSError(
                errno.ENETUNREACH,
                f"cannot connect to {remote.ip}: not a single host (broadcast, multicast "
                "or unspecified); TCP is point to point (RFC 9293 3.9.1)",
            )
        address = self.addresses.local_for(remote.ip)
        conns, rip, rport = self._conns, int(remote.ip), remote.port
        v4, v6 = self._listeners, self._listeners6
        if local_port is None:
            port = self._ports.pick(
                address,
                remote,
                lambda p: (rip, rport, p) not in conns and p not in v4 and p not in v6
                and (rip, rport, p) not in self._time_wait and p not in reserved,
            )
        elif (rip, rport, local_port) in conns or (rip, rport, local_port) in self._time_wait:
            raise OSError(errno.EADDRNOTAVAIL, f"{address}:{local_port} -> {remote} is taken")
        else:
            port = local_port
        local = Endpoint(address, port)
        conn = Connection.open_active(
            local,
            remote,
            iss=self._isn.isn(local, remote, now),  # RFC 6528, over either family's four-tuple
            now=now,
            config=self._config_for(address, config or self.config),
            explain=None if self.explain is None else self.explain(local, remote),
            ts_offset=self._isn.ts_offset(local, remote),  # RFC 7323 7.1
        )
        self._offer_segmentation(conn)
        key = (rip, rport, port)
        conns[key] = conn
        handle = conn.owner = ConnectionHandle(self, conn)
        sent = len(self._packets)
        self._collect(key, conn, now)
        if self._queue is not None and self._queue.count > 1:
            # A multi-queue TUN records which queue a flow is on only after it has delivered
            # the packet, and the local kernel answers a SYN during that delivery: its SYN,ACK
            # goes by the flow's hash, maybe to another queue (whose stack drops it). The same
            # SYN again finds the record, and Linux answers a duplicate SYN by resending its
            # SYN,ACK, which reaches us at once (a peer that answers with a bare ACK instead
            # has it dropped in SYN-SENT, RFC 9293 3.10.7.3 fifth: harmless).
            self._packets.extend(self._packets[sent:])
        return handle

    def listen(
        self,
        port: int,
        backlog: int,
        *,
        config: TcpConfig | None = None,
        version: int | None = None,
        syn_backlog: int = DEFAULT_SYN_BACKLOG,
    ) -> int:
        """Passive OPEN on `port` (0: pick a free one) in one family, `version` 4 or 6
        (None: the stack's primary family, IPv4 if it has it); returns the port. Each
        family has its own listener, as each of trio.open_tcp_listeners's sockets does.
        `backlog` bounds the accept queue, `syn_backlog` the SYN queue (stack/listener.py)."""
        address = self._family_address(version)
        listeners = self._listeners_for(address)
        if port == 0:
            port = self.free_port((), version=address.version)
        elif not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        elif port in listeners:
            raise OSError(errno.EADDRINUSE, f"{Endpoint(address, port)} is already listening")
        listeners[port] = Listener(
            Endpoint(address, port), backlog, self._config_for(address, config or self.config),
            syn_backlog,
        )
        return port

    def free_port(self, taken: Container[int], *, version: int | None = None) -> int:
        """An ephemeral port no listener, connection (TIME-WAIT too) or `taken` (ports
        the user layer has bound) uses: what bind(port 0) and listen(port 0) get."""
        in_use = {key[2] for key in self._conns} | self._time_wait.local_ports()
        v4, v6 = self._listeners, self._listeners6
        return self._ports.pick(
            self._family_address(version),
            Endpoint(address_of(0), 0),
            lambda p: p not in v4 and p not in v6 and p not in in_use and p not in taken,
        )

    def port_in_use(self, port: int) -> bool:
        """Whether a listener or a connection (in any state, TIME-WAIT too) has `port`."""
        return (
            port in self.listening_ports
            or any(key[2] == port for key in self._conns)
            or port in self._time_wait.local_ports()
        )

    def is_listening(self, port: int, *, version: int | None = None) -> bool:
        """Whether `port` has a listener in the family of IP `version` (None: primary)."""
        return port in self._listeners_for(self._family_address(version))

    def accept_pending(self, port: int, *, version: int | None = None) -> int:
        """How many ESTABLISHED connections wait for accept() on `port`."""
        return len(self._listeners_for(self._family_address(version))[port].accept_queue)

    def _family_address(self, version: int | None) -> IPv4Address | IPv6Address:
        """Our address of IP `version` (None: the primary one); OSError if we have none."""
        if version is None:
            return self.address
        if version not in (4, 6):
            raise ValueError(f"IP version must be 4 or 6, not {version}")
        return self.addresses.local_for(address_of(0 if version == 4 else 1 << 64))

    def _listeners_for(self, address: IPv4Address | IPv6Address) -> dict[int, Listener]:
        return self._listeners6 if address.version == 6 else self._listeners

    def _config_for(self, address: IPv4Address | IPv6Address, config: TcpConfig) -> TcpConfig:
        """An IPv6 connection advertises an MSS 20 bytes smaller: the MTU minus 60 (40 of
        IPv6 header, 20 of TCP; RFC 9293 3.7.1), where `config.mss` is the MTU minus 40."""
        if address.version == 4:
            return config
        config6 = self._configs6.get(config)
        if config6 is None:
            config6 = self._configs6[config] = replace(config, mss=config.mss - IPV6_EXTRA)
        return config6

    def accept(self, port: int, *, version: int | None = None) -> ConnectionHandle | None:
        """The oldest ESTABLISHED connection not yet accepted on `port`, or None."""
        queue = self._listeners_for(self._family_address(version))[port].accept_queue
        if not queue:
            return None
        conn = queue.popleft()
        handle = conn.owner = ConnectionHandle(self, conn)
        return handle

    def unlisten(self, port: int, now: float, *, version: int | None = None) -> None:
        """Close the listener; its embryonic and unaccepted connections are reset."""
        listener = self._listeners_for(self._family_address(version)).pop(port)
        for key in list(listener.half_open):
            self._reset_pending(key, now)
        while listener.accept_queue:
            self._reset_pending(self._key(listener.accept_queue.popleft()), now)

    def _reset_pending(self, key: DemuxKey, now: float) -> None:
        conn = self._conns.get(key)
        if conn is not None:
            self.counters.listener_resets += 1
            try:
                conn.abort(now)
            finally:
                self._after_user_call(conn, now)

    # ---- for ConnectionHandle: after every user call -----------------------------------

    def _release(self, conn: Connection) -> None:
        """The application closed `conn` and will never read it again (handle.release)."""
        conn.owner = None  # nobody to wake any more
        key = self._key(conn)
        if self._conns.get(key) is conn:
            self._orphans.add(key)

    def _after_user_call(self, conn: Connection, now: float) -> None:
        key = self._key(conn)
        if self._conns.get(key) is conn:
            self._collect(key, conn, now)
            return
        # already removed: still send what it queued (e.g. an ABORT's RST)
        self._packets_for(conn, key[0], conn.take_outgoing())
        events = conn.take_events()
        if events:
            self._events.append((conn, events))
            self._note_changed(conn)

    @staticmethod
    def _key(conn: Connection) -> DemuxKey:
        remote = conn.remote
        return (int(remote.ip), remote.port, conn.local.port)

    # ---- looking in ------------------------------------------------------------------

    def connections(self, now: float) -> list[TcbInfo]:
        """Every TCB, plus one LISTEN row per listener (remote 0.0.0.0:0 or [::]:0) and
        one TIME-WAIT row per record."""
        rows = [listener.info() for listener in self._listeners.values()]
        rows.extend(listener.info() for listener in self._listeners6.values())
        rows.extend(conn.info(now) for conn in self._conns.values())
        rows.extend(self._time_wait.rows(now, self.addresses.local_for))
        return rows

    @property
    def listening_ports(self) -> list[int]:
        """Every port listening in either family, once."""
        return list(dict.fromkeys([*self._listeners, *self._listeners6]))

"""The host: IPv4 packets in, IPv4 packets out, TCP connections in between (sans-I/O).

The Stack owns one local IPv4 address. It parses every arriving packet, hands TCP
segments to the connection their 4-tuple names (or to a listener, or answers them
with RST), answers ICMP echo requests, hands ICMP errors about our segments to the
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
"""

from __future__ import annotations

import errno
import heapq
import itertools
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Interface

from ..tcp.config import TcpConfig
from ..tcp.connection import Connection, reset_for
from ..tcp.events import Closed, Connected, DataReadable, Error, ErrorReason, Event
from ..tcp.icmp_errors import classify, path_mtu
from ..tcp.info import TcbInfo
from ..tcp.rules import Explainer, Rule
from ..tcp.state import State
from ..wire.addr import Endpoint
from ..wire.errors import WireError
from ..wire.icmp import ICMP_ERROR_TYPES, IcmpEcho, IcmpError, IcmpType, icmp_type
from ..wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPv4Packet
from ..wire.offload import NO_OFFLOAD, LinkPacket, OffloadCapability, OffloadedPacket, Vouched
from ..wire.packet import build_icmp_packet, build_tcp_packet
from ..wire.tcp import TcpFlags, TcpSegment
from .counters import StackCounters
from .handle import ConnectionHandle
from .isn import IsnGenerator
from .listener import DemuxKey, Listener
from .ports import EphemeralPorts
from .queues import QueueShare

_SYN, _ACK, _RST = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.RST
_LIMITED_BROADCAST = 0xFFFFFFFF  # 255.255.255.255
_MULTICAST, _MULTICAST_MASK = 0xE0000000, 0xF0000000  # 224.0.0.0/4
_GONE = (State.CLOSED, State.LISTEN)  # a TCB in either is removed from the demux table

ConnectionEvents = tuple[Connection, list[Event]]


class Stack:
    """Demultiplexes segments to connections; see the module docstring."""

    def __init__(
        self,
        address: IPv4Address | IPv4Interface | str,
        *,
        key: bytes,
        config: TcpConfig | None = None,
        ephemeral_ports: tuple[int, int] | None = None,
        offload: OffloadCapability = NO_OFFLOAD,
        queue: QueueShare | None = None,
    ) -> None:
        """`key` is the secret behind ISNs (RFC 6528) and ephemeral ports (RFC 6056).
        `offload` is what the link takes (see the module docstring).

        `queue` makes this stack one of several on a multi-queue TUN (userstack.workers):
        it opens connections from its own slice of the ephemeral ports, and leaves alone
        segments for another stack's slice (see `_segment_arrives`).

        `address` may carry its prefix ("10.0.0.2/24"): then the subnet's broadcast
        address is known too, and treated like any other broadcast address.
        """
        interface = IPv4Interface(address)
        self.address = interface.ip
        self._address = int(interface.ip)  # the demux works on addresses as ints
        self._broadcasts = {_LIMITED_BROADCAST}
        if interface.network.prefixlen < 31:  # /31 and /32 have no broadcast (RFC 3021)
            self._broadcasts.add(int(interface.network.broadcast_address))
        self.config = config or TcpConfig()
        self.counters = StackCounters()
        self.offload = offload
        self._isn = IsnGenerator(key)
        self._queue = queue
        if queue is not None:
            ephemeral_ports = queue.ports
        self._ports = EphemeralPorts(key, *(ephemeral_ports or ()))
        self._conns: dict[DemuxKey, Connection] = {}
        self._listeners: dict[int, Listener] = {}
        self._half_open: dict[DemuxKey, Listener] = {}  # SYN-RECEIVED TCBs of listeners
        self._orphans: set[DemuxKey] = set()  # the application closed and forgot these
        self._touched: dict[DemuxKey, Connection] = {}  # by this batch, not yet collected
        self._packets: list[LinkPacket] = []
        self._events: list[ConnectionEvents] = []
        self._accept_ready: set[int] = set()
        self._handles: dict[Connection, ConnectionHandle] = {}  # connections the user holds
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
        try:
            ip = IPv4Packet.parse(data, view=True)  # the payload is parsed at once
            if int(ip.dst) != self._address:
                counters.not_for_us += 1
                return
            src = int(ip.src)
            if not self._is_one_host(src):  # RFC 1122 3.2.1.3: silently discard
                counters.bad_source += 1
                return
            if ip.protocol == IPPROTO_TCP:
                vouched = isinstance(data, Vouched)  # the link checked it: no second sum
                seg = TcpSegment.parse(ip.payload, src, self._address, verify=not vouched)
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

    def _is_one_host(self, address: int) -> bool:
        """Whether `address` names a single host: not broadcast, multicast or 0.0.0.0."""
        return not (
            address & _MULTICAST_MASK == _MULTICAST or address in self._broadcasts or not address
        )

    def _icmp_arrives(self, src: IPv4Address, message: bytes, now: float) -> None:
        """Echo requests are answered; errors go to `_icmp_error_arrives`; every other
        valid ICMP message is counted and dropped (RFC 1122 3.2.2: a host may discard
        types it does not implement). Garbage raises WireError."""
        kind = icmp_type(message)
        if kind == IcmpType.ECHO_REQUEST:  # RFC 1122 3.2.2.6: MUST answer
            echo = IcmpEcho.parse(message)
            self.counters.icmp_echo_replies += 1
            self._packets.append(build_icmp_packet(self.address, src, echo.reply()))
        elif kind in ICMP_ERROR_TYPES:
            self._icmp_error_arrives(IcmpError.parse(message), now)
        else:
            self.counters.icmp_ignored += 1

    def _icmp_error_arrives(self, error: IcmpError, now: float) -> None:
        """RFC 9293 3.9.2.1 (MUST-54): an ICMP error about a TCP segment we sent goes to
        the connection of the quoted four-tuple, which checks the quoted sequence number
        (RFC 5927 4.1) and reacts by kind (userstack/tcp/icmp_errors.py). Source Quench
        (RFC 6633, MUST-55) and codes TCP does not know are ignored."""
        counters = self.counters
        kind = classify(error.type, error.code)
        if kind is None:
            counters.icmp_ignored += 1
            return
        key = (int(error.dst), error.dst_port, error.src_port)
        conn = self._conns.get(key)
        if conn is None or error.protocol != IPPROTO_TCP or int(error.src) != self._address:
            counters.icmp_errors_no_connection += 1
            return
        mtu = path_mtu(error.next_hop_mtu, error.original_length)
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
        listener = self._listeners.get(seg.dst_port)
        if conn is not None:
            if listener is not None and conn.accepts_new_syn(seg):
                if self.explain is not None:
                    self.explain(conn.local, conn.remote).decide(
                        Rule.NEW_INCARNATION, seg_seq=seg.seq, rcv_nxt=conn.tcb.rcv_nxt
                    )
                self._new_incarnation(listener, key, conn, seg, now)
            else:
                self._drive_segment(key, conn, seg, now)
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
        replies = reset_for(seg, None if self.explain is None else self.explain(
            Endpoint(self.address, seg.dst_port), Endpoint(IPv4Address(src), seg.src_port)))
        if not replies:
            self.counters.rst_ignored += 1
            return
        self.counters.rst_sent += len(replies)
        self._packets.extend(build_tcp_packet(self._address, src, rst) for rst in replies)

    def _new_incarnation(
        self, listener: Listener, key: DemuxKey, old: Connection, seg: TcpSegment, now: float
    ) -> None:
        """A new SYN for a four-tuple in TIME-WAIT that cannot be an old duplicate
        (RFC 1122 4.2.2.13, RFC 9293 3.6.1 MAY-2): delete the TIME-WAIT TCB (ABORT
        there sends nothing, RFC 9293 3.10.5) and let the listener take the SYN, with an
        ISS above every sequence number the old incarnation used."""
        self.counters.time_wait_reuses += 1
        old.abort(now)
        self._collect(key, old, now)
        self._listen_segment(listener, key, seg, now, previous=old)

    def _listen_segment(
        self,
        listener: Listener,
        key: DemuxKey,
        seg: TcpSegment,
        now: float,
        *,
        previous: Connection | None = None,
    ) -> None:
        """A segment for a listening port and no TCB: a fully specified passive OPEN
        takes it through the LISTEN rules of RFC 9293 3.10.7.2 (RST ignored, ACK
        answered with RST, SYN -> SYN-RECEIVED). A TCB left in LISTEN is discarded.
        `previous` is the TIME-WAIT incarnation this SYN replaces, if any."""
        if seg.flags & (_SYN | _ACK | _RST) == _SYN and listener.full:
            self.counters.syn_backlog_drops += 1
            return
        remote = Endpoint(IPv4Address(key[0]), key[1])
        iss = self._isn.isn(listener.local, remote, now)
        if previous is not None:
            iss = previous.new_incarnation_iss(iss)
        conn = Connection.open_passive(
            listener.local, remote, iss=iss, now=now, config=listener.config,
            explain=None if self.explain is None else self.explain(listener.local, remote),
        )
        self._conns[key] = conn
        self._half_open[key] = listener
        listener.half_open.add(key)
        self._drive_segment(key, conn, seg, now)

    # ---- driving connections, guarded ------------------------------------------------

    def _drive_segment(self, key: DemuxKey, conn: Connection, seg: TcpSegment, now: float) -> None:
        try:
            conn.on_segment(seg, now)
        except Exception:  # a bug in one connection must not take the others down
            self._contain(key, conn, now)
            return
        self._settle(key, conn, now)

    def _settle(self, key: DemuxKey, conn: Connection, now: float) -> None:
        """After input from the peer: collect `conn` after the batch, or now if it closed."""
        if conn.state in _GONE:  # out of the table now: the batch's next segment may be a new SYN
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
        deadline = conn.next_deadline()
        if deadline != self._deadlines.get(key):
            if deadline is None:
                del self._deadlines[key]
            else:
                self._deadlines[key] = deadline
                heapq.heappush(self._timers, (deadline, next(self._tiebreak), key))

    def _note_changed(self, conn: Connection) -> None:
        handle = self._handles.get(conn)
        if handle is not None:
            self._changed[handle] = None

    def _packets_for(self, conn: Connection, remote: int, out: list[TcpSegment]) -> None:
        """The connection's segments as IPv4 packets, with its own TTL and DiffServ
        byte (RFC 9293 3.9.1 MUST-48, 3.9.2 MUST-49)."""
        local, cfg, offload = self._address, conn.config, self.offload
        ttl, tos = cfg.ttl, cfg.tos
        if not offload.checksum:
            build = build_tcp_packet
            self._packets.extend(build(local, remote, seg, ttl=ttl, tos=tos) for seg in out)
            return
        gso_size = conn.send_mss if offload.segmentation else 0
        offloaded = OffloadedPacket.from_segment
        self._packets.extend(
            offloaded(local, remote, seg, gso_size=gso_size, ttl=ttl, tos=tos) for seg in out
        )

    def _established(self, key: DemuxKey, conn: Connection) -> None:
        listener = self._half_open.pop(key, None)
        if listener is not None:
            listener.half_open.discard(key)
            if self._listeners.get(listener.local.port) is listener:
                listener.accept_queue.append(conn)
                self._accept_ready.add(listener.local.port)

    def _orphan_data(self, key: DemuxKey, conn: Connection, now: float) -> None:
        """Data for a connection nobody will read: reset it, as Linux and BSD do
        (RFC 9293 3.10.4 leaves a fully closed user's incoming data undefined)."""
        self.counters.orphan_aborts += 1
        conn.abort(now)
        self._collect(key, conn, now)

    def _remove(self, key: DemuxKey, conn: Connection) -> None:
        if self._conns.get(key) is not conn:
            return
        del self._conns[key]
        self._handles.pop(conn, None)
        self._touched.pop(key, None)
        self._deadlines.pop(key, None)
        self._orphans.discard(key)
        listener = self._half_open.pop(key, None)
        if listener is not None:
            listener.half_open.discard(key)
        else:
            listener = self._listeners.get(key[2])
            if listener is not None and conn in listener.accept_queue:
                listener.accept_queue.remove(conn)

    # ---- timers ----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time any connection needs on_timer(), or None."""
        timers, deadlines = self._timers, self._deadlines
        while timers:
            deadline, _, key = timers[0]
            if deadlines.get(key) == deadline:
                return deadline
            heapq.heappop(timers)
        return None

    def on_timer(self, now: float) -> None:
        """Fire every connection timer due at `now`."""
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
        self, remote: Endpoint, now: float, *, config: TcpConfig | None = None
    ) -> ConnectionHandle:
        """Active OPEN (RFC 9293 3.10.1) from an ephemeral port (RFC 6056).

        An OPEN to an address that is not one host (broadcast, multicast, 0.0.0.0) is
        refused with ENETUNREACH, as Linux does (RFC 9293 3.9.1 MUST-46).
        """
        if not self._is_one_host(int(remote.ip)):
            raise OSError(
                errno.ENETUNREACH,
                f"cannot connect to {remote.ip}: not a single host (broadcast, multicast "
                "or unspecified); TCP is point to point (RFC 9293 3.9.1)",
            )
        conns, listeners, rip, rport = self._conns, self._listeners, int(remote.ip), remote.port
        port = self._ports.pick(
            self.address,
            remote,
            lambda p: (rip, rport, p) not in conns and p not in listeners,
        )
        local = Endpoint(self.address, port)
        conn = Connection.open_active(
            local,
            remote,
            iss=self._isn.isn(local, remote, now),
            now=now,
            config=config or self.config,
            explain=None if self.explain is None else self.explain(local, remote),
        )
        key = (rip, rport, port)
        conns[key] = conn
        handle = self._handles[conn] = ConnectionHandle(self, conn)
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

    def listen(self, port: int, backlog: int, *, config: TcpConfig | None = None) -> int:
        """Passive OPEN on `port` (0: pick a free one); returns the port."""
        if port == 0:
            in_use = {key[2] for key in self._conns}
            port = self._ports.pick(
                self.address,
                Endpoint(IPv4Address(0), 0),
                lambda p: p not in self._listeners and p not in in_use,
            )
        elif not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        elif port in self._listeners:
            raise OSError(errno.EADDRINUSE, f"{self.address}:{port} is already listening")
        self._listeners[port] = Listener(
            Endpoint(self.address, port), backlog, config or self.config
        )
        return port

    def accept(self, port: int) -> ConnectionHandle | None:
        """The oldest ESTABLISHED connection not yet accepted on `port`, or None."""
        queue = self._listeners[port].accept_queue
        if not queue:
            return None
        conn = queue.popleft()
        handle = self._handles[conn] = ConnectionHandle(self, conn)
        return handle

    def unlisten(self, port: int, now: float) -> None:
        """Close the listener; its embryonic and unaccepted connections are reset."""
        listener = self._listeners.pop(port)
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
        self._handles.pop(conn, None)  # nobody to wake any more
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
        """Every TCB, plus one LISTEN row per listener (remote 0.0.0.0:0)."""
        rows = [listener.info() for listener in self._listeners.values()]
        rows.extend(conn.info(now) for conn in self._conns.values())
        return rows

    @property
    def listening_ports(self) -> list[int]:
        return list(self._listeners)

"""Byte queues for one connection: what we must send, and what we received.

Both are bounded and move payloads as slices (no per-byte loops). The send buffer keeps
its bytes in one bytearray whose front is deleted as data leaves: CPython keeps an offset
for that, so `del buf[:n]` does not copy the rest. The receive buffer keeps the segments'
own payloads, in order, and copies only when a read spans several (one `join`): with
offload a segment is up to 64 KB, and appending it to a bytearray cost more than all the
rest of its way through the stack (regrowing the array, 80 us per 64 KB here).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import deque

# A hostile peer could send a window's worth of one-byte fragments; beyond this many
# held fragments we drop new out-of-order data (the peer retransmits it later).
MAX_OUT_OF_ORDER_PIECES = 1024


class SendBuffer:
    """Unacknowledged and unsent bytes, from SND.UNA (the SYN excluded) onwards.

    How much it may hold is the configuration's `send_buffer`, which the Sender passes to
    write(), not a copy in every buffer. An empty one holds nothing of its connection's,
    so every sender with nothing queued shares NOTHING_QUEUED, and takes a buffer of its
    own to write into (issue 13: an idle connection keeps none)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        # the shared b"" while empty: a buffer between writes keeps no bytearray
        self._buf: bytearray | bytes = b""

    def __len__(self) -> int:
        return len(self._buf)

    def write(self, data: bytes | bytearray | memoryview, capacity: int) -> int:
        """Queue as much of `data` as `capacity` leaves room for; return how much that was."""
        buf = self._buf
        n = min(len(data), capacity - len(buf))
        if n > 0:
            if buf:
                buf += memoryview(data)[:n]  # a bytearray: grows in place
            else:
                self._buf = bytearray(memoryview(data)[:n])
        return n

    def peek(self, offset: int, n: int) -> bytes:
        """n bytes starting `offset` bytes after the first unacknowledged one."""
        with memoryview(self._buf) as view:
            return bytes(view[offset : offset + n])

    def consume(self, n: int) -> None:
        """The first n bytes were acknowledged."""
        buf = self._buf
        if n >= len(buf):  # all of it: back to the shared b""
            self._buf = b""
        else:
            del buf[:n]


class _NothingQueued(SendBuffer):
    """The one empty send buffer all senders with nothing queued share."""

    __slots__ = ()

    def write(self, data: bytes | bytearray | memoryview, capacity: int) -> int:
        raise AssertionError("the shared empty send buffer must never be written to")


NOTHING_QUEUED: SendBuffer = _NothingQueued()


class HeldPieces:
    """Out-of-order text a receive buffer holds for later (RFC 9293 3.10.7.4, seventh
    step): pieces that never overlap, by stream offset. A receive buffer makes one for
    its first gap and lets it go once the gaps are filled, so an idle connection keeps
    none (issue 13)."""

    __slots__ = ("pieces", "recent", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []  # sorted starts of the pieces
        self.pieces: dict[int, bytes] = {}  # start -> bytes
        # left edges of the SACK blocks to report first: the block of the latest
        # out-of-order segment, then those reported most recently (RFC 2018 4)
        self.recent: list[int] = []

    def block_around(self, off: int) -> tuple[int, int] | None:
        """The contiguous run of held pieces that contains stream offset `off`."""
        starts = self.starts
        pieces = self.pieces
        i = bisect_right(starts, off) - 1
        if i < 0 or starts[i] + len(pieces[starts[i]]) <= off:
            return None
        j = i
        while i > 0 and starts[i - 1] + len(pieces[starts[i - 1]]) == starts[i]:
            i -= 1
        right = starts[j] + len(pieces[starts[j]])
        while j + 1 < len(starts) and starts[j + 1] == right:
            j += 1
            right = starts[j] + len(pieces[starts[j]])
        return starts[i], right

    def holds(self, start: int, end: int) -> bool:
        """[start, end) lies wholly within held pieces."""
        starts = self.starts
        pieces = self.pieces
        i = bisect_right(starts, start) - 1
        if i < 0:
            return False
        right = starts[i] + len(pieces[starts[i]])
        while right < end and i + 1 < len(starts) and starts[i + 1] == right:
            i += 1
            right += len(pieces[right])
        return right >= end

    def all_blocks(self) -> list[tuple[int, int]]:
        blocks: list[tuple[int, int]] = []
        for start in self.starts:
            end = start + len(self.pieces[start])
            if blocks and blocks[-1][1] == start:
                blocks[-1] = (blocks[-1][0], end)
            else:
                blocks.append((start, end))
        return blocks

    def hold(self, start: int, end: int, view: memoryview) -> None:
        """Keep the parts of [start, end) that no held piece already covers."""
        starts = self.starts
        pieces = self.pieces
        i = bisect_right(starts, start) - 1
        if i >= 0:
            prev_end = starts[i] + len(pieces[starts[i]])
            if prev_end > start:
                start = prev_end
        j = i + 1
        base = end - len(view)  # stream offset of view[0]
        while start < end:
            if len(starts) >= MAX_OUT_OF_ORDER_PIECES:
                return
            if j < len(starts) and starts[j] < end:
                nxt = starts[j]
                if nxt > start:
                    pieces[start] = bytes(view[start - base : nxt - base])
                    insort(starts, start)
                    j += 1
                start = max(start, nxt + len(pieces[nxt]))
                j += 1
            else:
                pieces[start] = bytes(view[start - base : end - base])
                insort(starts, start)
                return

    def drop_beyond(self, limit: int) -> None:
        """Forget held bytes at or past `limit` (the FIN's offset)."""
        starts = self.starts
        while starts and starts[-1] >= limit:
            del self.pieces[starts.pop()]
        if starts:
            last = starts[-1]
            piece = self.pieces[last]
            if last + len(piece) > limit:
                self.pieces[last] = piece[: limit - last]


class ReceiveBuffer:
    """In-order bytes waiting for the reader, plus out-of-order pieces held for later.

    Positions are absolute stream offsets (ints that never wrap): `next` is the offset
    of RCV.NXT. The connection converts sequence numbers to offsets relative to RCV.NXT.
    """

    __slots__ = ("_held", "_ready", "_ready_len", "capacity", "dsack", "fin_at", "next")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # in-order text, as it came; None while there is none: an empty deque costs 600
        # bytes, most of an idle connection's memory
        self._ready: deque[bytes | memoryview] | None = None
        self._ready_len = 0
        self.next = 0  # stream offset of RCV.NXT: bytes delivered in order so far
        self._held: HeldPieces | None = None  # out-of-order text, while there is some
        self.fin_at: int | None = None  # stream offset of a FIN seen ahead of RCV.NXT
        # [left, right) of the latest duplicate segment, for the first block of the next
        # SACK option (D-SACK, RFC 2883 4), reported once
        self.dsack: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self._ready_len

    @property
    def space(self) -> int:
        """Free buffer space: what we may offer as RCV.WND."""
        return max(0, self.capacity - self._ready_len)

    @property
    def has_gaps(self) -> bool:
        return self._held is not None

    @property
    def fin_reached(self) -> bool:
        """A held FIN is now in sequence."""
        return self.fin_at == self.next

    def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` in-order bytes: a whole segment's payload is handed out as it
        is, and only a read that spans segments (or splits one) copies."""
        n = min(max_bytes, self._ready_len)
        if n <= 0:
            return b""
        self._ready_len -= n
        ready = self._ready
        assert ready is not None  # _ready_len > 0
        first = ready.popleft()
        if len(first) >= n:
            if len(first) > n:
                ready.appendleft(memoryview(first)[n:])
                first = memoryview(first)[:n]
            elif not ready:
                self._ready = None
            return first if type(first) is bytes else bytes(first)
        parts = [first]
        left = n - len(first)
        while left:
            chunk = ready.popleft()
            if len(chunk) > left:
                ready.appendleft(memoryview(chunk)[left:])
                chunk = memoryview(chunk)[:left]
            parts.append(chunk)
            left -= len(chunk)
        if not ready:
            self._ready = None
        return b"".join(parts)

    def hold_fin(self, rel: int) -> None:
        """Remember a FIN `rel` bytes ahead of RCV.NXT; the first one seen wins."""
        if self.fin_at is None:
            self.fin_at = self.next + rel
            held = self._held
            if held is not None:
                held.drop_beyond(self.fin_at)
                if not held.starts:
                    self._held = None

    def insert(self, rel: int, data: bytes | memoryview, window: int) -> int:
        """Take a segment's text starting `rel` bytes after RCV.NXT.

        Whatever lies outside [RCV.NXT, RCV.NXT + window) is trimmed (RFC 9293 3.10.7.4,
        first and seventh steps); duplicates and overlaps are dropped. Returns how many
        bytes became readable in order (RCV.NXT advances by that much).
        """
        start = self.next + rel
        end = start + len(data)
        hi = self.next + window
        if self.fin_at is not None and self.fin_at < hi:
            hi = self.fin_at  # nothing exists beyond the FIN
        view = data if type(data) is bytes else bytes(data)  # kept as it is unless trimmed
        if start < self.next:
            self.dsack = (start, min(end, self.next))  # RFC 2883 4.1.1: already delivered
            view = memoryview(view)[self.next - start :]
            start = self.next
        if end > hi:
            end = hi
        if start >= end:
            return 0
        if len(view) != end - start:
            view = memoryview(view)[: end - start]
        if start != self.next:
            held = self._held
            if held is None:
                held = self._held = HeldPieces()  # the first gap
            elif held.holds(start, end):
                self.dsack = (start, end)  # RFC 2883 4.1.3: a duplicate of held data
            held.hold(start, end, view)
            held.recent = [start, *held.recent[:7]]
            return 0
        before = self.next
        ready = self._ready
        if ready is None:
            ready = self._ready = deque()
        ready.append(view)
        self._ready_len += end - start
        self.next = end
        held = self._held
        if held is not None and held.starts[0] <= end:
            self._deliver_held(held, ready)
        return self.next - before

    def _deliver_held(self, held: HeldPieces, ready: deque[bytes | memoryview]) -> None:
        """RCV.NXT reached held pieces: they become in-order text; once none is left,
        the held pieces' store goes."""
        starts, pieces = held.starts, held.pieces
        while starts and starts[0] <= self.next:
            s = starts.pop(0)
            piece = pieces.pop(s)
            e = s + len(piece)
            if e > self.next:
                ready.append(piece if s == self.next else memoryview(piece)[self.next - s :])
                self._ready_len += e - self.next
                self.next = e
        if not starts:
            self._held = None

    def note_duplicate(self, rel: int, n: int) -> None:
        """A segment of n bytes, `rel` (< 0) bytes from RCV.NXT, was all old: report it."""
        start = self.next + rel
        self.dsack = (start, start + n)

    def sack_blocks(self, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` [left, right) blocks for a SACK option: a D-SACK block first if
        a duplicate arrived (RFC 2883 4); then, of held data (RFC 2018 4), the block
        holding the most recently received segment, then the blocks reported most
        recently, then any others, lowest first."""
        dsack = self.dsack
        if dsack is not None:
            self.dsack = None
            limit -= 1
        blocks: list[tuple[int, int]] = []
        held = self._held
        if held is not None:
            for off in held.recent:
                block = held.block_around(off)
                if block is not None and block not in blocks:
                    blocks.append(block)
                    if len(blocks) == limit:
                        break
            if len(blocks) < limit:
                for block in held.all_blocks():
                    if block not in blocks:
                        blocks.append(block)
                        if len(blocks) == limit:
                            break
            held.recent = [left for left, _ in blocks]
        return blocks if dsack is None else [dsack, *blocks]

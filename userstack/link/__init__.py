"""Links move whole IPv4 packets between the stack and the world (see base.py for the rules).

TunLink (the kernel, over a TUN device), memory_link_pair (two stacks back to back), and wrappers
for any link: FaultyLink (seeded loss, duplication, reordering, corruption, delay), ShapedLink
(a rate limit behind a tail-drop queue) and PcapTap.
"""

from .base import Link, LinkBase
from .faults import FaultCounters, Faults, FaultyLink, open_faulty_link
from .memory import MemoryLink, memory_link_pair
from .pcap_tap import PcapTap
from .shaper import ShapedLink, open_shaped_link
from .tun import TunLink, TunStats

__all__ = [
    "FaultCounters",
    "Faults",
    "FaultyLink",
    "Link",
    "LinkBase",
    "MemoryLink",
    "PcapTap",
    "ShapedLink",
    "TunLink",
    "TunStats",
    "memory_link_pair",
    "open_faulty_link",
    "open_shaped_link",
]

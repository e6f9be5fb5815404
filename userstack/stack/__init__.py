"""The sans-I/O host: demultiplexing, listeners, RST for strays, ICMP echo, counters."""

from .counters import StackCounters
from .handle import ConnectionHandle
from .listener import ANY, Listener
from .ports import EphemeralPorts
from .queues import QueueShare
from .stack import ConnectionEvents, Stack

__all__ = [
    "ANY",
    "ConnectionEvents",
    "ConnectionHandle",
    "EphemeralPorts",
    "Listener",
    "QueueShare",
    "Stack",
    "StackCounters",
]

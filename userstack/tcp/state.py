"""The eleven states of RFC 9293 3.3.2, named as the RFC names them."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"
    CLOSED = "CLOSED"

    def __str__(self) -> str:
        return self.value

    @property
    def synchronized(self) -> bool:
        """ESTABLISHED and after: both ISNs are known (RFC 9293 3.5.2, 'synchronized')."""
        return self in _SYNCHRONIZED

    @property
    def can_send(self) -> bool:
        """The user may still SEND (RFC 9293 3.10.2): we have not sent our FIN yet."""
        return self in _CAN_SEND

    @property
    def can_receive(self) -> bool:
        """The peer may still send us data: its FIN has not arrived yet."""
        return self in _CAN_RECEIVE


_SYNCHRONIZED = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)
_CAN_SEND = frozenset(
    {State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT}
)
_CAN_RECEIVE = frozenset(
    {State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1,
     State.FIN_WAIT_2}
)

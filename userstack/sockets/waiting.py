"""The one way a user layer (sockets, streams) waits for its connection: level-triggered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio
from trio.lowlevel import ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled

_T = TypeVar("_T")


async def wait_until(
    lot: ParkingLot, attempt: Callable[[], _T | None], closed: Callable[[], bool]
) -> _T:
    """A level-triggered wait with trio's checkpoint rules: a cancel point first; then
    `attempt()` until it gives a result (not None), parked on `lot` in between, and
    ClosedResourceError if `closed()` after a wake-up; a schedule point if it never parked.

    Level-triggered: the attempt re-reads the connection's state after every wake-up,
    so an event that fired before anybody waited is never lost, and a cancelled wait
    took nothing (the attempt either ran to its result or did not run)."""
    await checkpoint_if_cancelled()
    parked = False
    while (result := attempt()) is None:
        await lot.park()
        parked = True
        if closed():
            raise trio.ClosedResourceError("closed while waiting")
    if not parked:
        await cancel_shielded_checkpoint()
    return result

"""The services `userstack serve` can run: each an async handler of one connected stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

import trio

from .http import make_http_handler
from .simple import chargen, discard, echo

Handler = Callable[[trio.abc.Stream], Awaitable[None]]


class App(NamedTuple):
    handler: Handler
    port: int  # the well-known port (RFC 862/863/864, HTTP)


APPS: dict[str, App] = {
    "echo": App(echo, 7),
    "discard": App(discard, 9),
    "chargen": App(chargen, 19),
    "http": App(make_http_handler(), 80),
}

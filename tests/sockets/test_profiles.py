"""TcpConfig.rfc() and TcpConfig.linux(): the table of docs/profiles.md, and IW10 at work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
from streams_helpers import connect_pair, start_stacks
from trio.testing import MockClock

from userstack import TcpConfig

PROFILES = Path(__file__).parents[2] / "docs" / "profiles.md"


def test_the_default_is_the_rfc_profile() -> None:
    assert TcpConfig() == TcpConfig.rfc()


def test_every_difference_is_a_row_of_docs_profiles() -> None:
    rfc, linux = TcpConfig.rfc(), TcpConfig.linux()
    fields = rfc.__dataclass_fields__
    differ = {name for name in fields if getattr(rfc, name) != getattr(linux, name)}
    assert differ == {"initial_window", "rto_min", "rto_max", "delayed_ack", "syn_retries", "msl"}
    rows = PROFILES.read_text()
    for name in differ:
        assert re.search(rf"^\| `[^|]*\b{name}\b", rows, re.MULTILINE), name


def test_initial_window_is_checked() -> None:
    with pytest.raises(ValueError, match="RFC 6928"):
        TcpConfig(initial_window=11)


async def test_linux_profile_starts_with_ten_segments(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client, server, _, _ = await start_stacks(nursery, client_config=TcpConfig.linux())
        a, _ = await connect_pair(client, server)
        rfc_client, rfc_server, _, _ = await start_stacks(nursery)
        b, _ = await connect_pair(rfc_client, rfc_server)
        assert a.info().cwnd == 10 * a.info().mss  # RFC 6928
        assert b.info().cwnd == 3 * b.info().mss  # RFC 5681 3.1 at MSS 1460
        nursery.cancel_scope.cancel()

"""Every script in tests/pkt/scripts/ plays through the socket layer, in virtual time."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio.testing
from pkt_runner import ScriptError, play

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.pkt"))


def test_there_are_enough_scripts() -> None:
    assert len(SCRIPTS) >= 60, len(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[path.stem for path in SCRIPTS])
async def test_script(script: Path, autojump_clock: trio.testing.MockClock) -> None:
    await play(script)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("+0    > . 1:1(0) ack 2", "the stack sent nothing"),  # no such ACK comes
        ("+0    read(3, ..., 10) = 5", "returned -1 ENOTCONN"),
    ],
)
async def test_a_script_the_stack_does_not_follow_fails(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, line: str, complaint: str
) -> None:
    script = tmp_path / "wrong.pkt"
    script.write_text("0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" + line + "\n")
    with pytest.raises(ScriptError, match=complaint):
        await play(script)


async def test_an_unexpected_packet_fails(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    script = tmp_path / "stray.pkt"
    script.write_text("0     < . 0:0(0) ack 7 win 512\n")  # a CLOSED port answers with RST
    with pytest.raises(ScriptError, match="does not expect"):
        await play(script)

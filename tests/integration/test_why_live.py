"""`serve --trace --why`: under each traced segment, the rules the stack's core applied."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from .helpers import PATIENCE, STACK, Served, wait_until


def test_why_lines_follow_the_segments_they_explain(serve: Callable[..., Served]) -> None:
    served = serve("echo", "--port", "7", "--trace", "--why")
    result = subprocess.run(["nc", "-N", "-w", "5", STACK, "7"], input=b"why?\n",
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"why?\n"
    wait_until(lambda: "user.close" in served.stdout, PATIENCE, "the echo server's CLOSE")
    lines = served.stdout.splitlines()
    syn = next(i for i, line in enumerate(lines) if "Flags [S]," in line)
    # the passive OPEN, then the SYN by the LISTEN rule, right under the SYN's line
    assert lines[syn + 1].split()[2:4] == ["user.open_passive", "RFC"]
    assert lines[syn + 3].split()[2:6] == ["listen.syn", "RFC", "9293", "3.10.7.2"]
    assert lines[syn + 4].strip().startswith("LISTEN, third: a SYN")
    data = next(i for i, line in enumerate(lines)
                if "Flags [P.]" in line and f"> {STACK}.7:" in line)
    explained = lines[data + 1].split()
    assert explained[2] == "acceptability.acceptable"
    assert "SEG.SEQ=1" in explained and "SEG.LEN=5" in explained  # relative to the IRS

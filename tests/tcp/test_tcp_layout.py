"""The core stays readable: small functions, one job per module."""

from __future__ import annotations

import ast
from pathlib import Path

import userstack.tcp

CORE = Path(userstack.tcp.__file__).parent
LONGEST = 60  # lines, docstring and comments included


def test_no_function_in_the_core_is_over_60_lines() -> None:
    long = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > LONGEST:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_connection_holds_no_sender_or_receiver_state() -> None:
    """connection.py is the state machine: the send and receive machinery is elsewhere."""
    source = (CORE / "connection.py").read_text()
    for name in ("Scoreboard", "Rack", "RttEstimator", "SendBuffer", "ReceiveBuffer", "Reno"):
        assert f"{name}(" not in source, name

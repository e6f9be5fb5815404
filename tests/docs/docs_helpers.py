"""Reading the learner docs as data: their tables, their code references, their links.

The docs name functions (dotted paths such as
`userstack.tcp.connection.Connection._check_fin`) and tests (pytest node ids such as
`tests/tcp/test_tcp_close.py::test_fin_wait_2_fin_to_time_wait`). These helpers check that
each name still points at something, without running any test: functions are resolved by
import and getattr, tests by parsing the test file with ast (and, for parametrized ids like
`test_x[param]`, by asking pytest to collect that file, which runs nothing).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_CODE = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_DOTTED = re.compile(r"^userstack(\.[A-Za-z_]\w*)+$")
_NODE = re.compile(r"^(tests/[\w/.-]+\.py)::([\w:]+)(\[.*\])?$")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_TABLE_RULE = re.compile(r"\s*\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*")


def split_row(line: str) -> list[str]:
    """The cells of one markdown table row (a `|` inside backticks does not split)."""
    cells, cell, in_code = [], [], False
    for ch in line.strip().strip("|"):
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(cell).strip())
            cell = []
        else:
            cell.append(ch)
    cells.append("".join(cell).strip())
    return cells


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table in `text`, each a list of rows keyed by lower-case header."""
    out: list[list[dict[str, str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines) - 1:
        line, rule = lines[i], lines[i + 1]
        if line.lstrip().startswith("|") and _TABLE_RULE.fullmatch(rule):
            header = [h.lower() for h in split_row(line)]
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = split_row(lines[i])
                rows.append(dict(zip(header, cells, strict=False)))
                i += 1
            out.append(rows)
        else:
            i += 1
    return out


def code_spans(text: str) -> list[str]:
    """The inline code spans of `text` (fenced code blocks are skipped)."""
    return _CODE.findall(_FENCE.sub("", text))


def dotted_paths(text: str) -> list[str]:
    """Every `userstack.x.y` in backticks."""
    return [s for s in code_spans(text) if _DOTTED.match(s)]


# Short names the docs use for the classes a reader meets most: `Connection._check_fin`.
ALIASES = {
    "Connection": "userstack.tcp.connection.Connection",
    "Tcb": "userstack.tcp.tcb.Tcb",
    "Reno": "userstack.tcp.congestion.Reno",
    "RenoRecovery": "userstack.tcp.reno_recovery.RenoRecovery",
    "SackRecovery": "userstack.tcp.sack_recovery.SackRecovery",
    "Sender": "userstack.tcp.sender.Sender",
    "Receiver": "userstack.tcp.receiver.Receiver",
    "Timers": "userstack.tcp.timers.Timers",
    "SynOptions": "userstack.tcp.syn_options.SynOptions",
    "RttEstimator": "userstack.tcp.rtt.RttEstimator",
    "IsnGenerator": "userstack.stack.isn.IsnGenerator",
    "ReceiveBuffer": "userstack.tcp.buffers.ReceiveBuffer",
    "SendBuffer": "userstack.tcp.buffers.SendBuffer",
    "TcpConfig": "userstack.tcp.config.TcpConfig",
    "Stack": "userstack.stack.stack.Stack",
    "EphemeralPorts": "userstack.stack.ports.EphemeralPorts",
    "Driver": "userstack.driver.Driver",
    "UserStack": "userstack.streams.UserStack",
    "TcpStream": "userstack.streams.TcpStream",
    "TcpListener": "userstack.streams.TcpListener",
    "TunLink": "userstack.link.tun.TunLink",
    "Tracer": "userstack.observe.trace.Tracer",
    "IPv4Packet": "userstack.wire.ipv4.IPv4Packet",
    "TcpSegment": "userstack.wire.tcp.TcpSegment",
    "TcpOptions": "userstack.wire.tcp.TcpOptions",
    "IcmpEcho": "userstack.wire.icmp.IcmpEcho",
    "TimeWait": "userstack.tcp.time_wait.TimeWait",
}
_SHORT = re.compile(r"^(" + "|".join(ALIASES) + r")\.([A-Za-z_]\w*)$")


def short_names(text: str) -> list[str]:
    """Every `Class.attribute` in backticks, for a class in ALIASES, as a full dotted path."""
    out = []
    for span in code_spans(text):
        match = _SHORT.match(span)
        if match:
            out.append(f"{ALIASES[match.group(1)]}.{match.group(2)}")
    return out


def missing_attribute(dotted: str) -> str | None:
    """None if `dotted` resolves at all: a method, a class attribute, a property, or an
    instance attribute the class assigns (`self._passive = ...`)."""
    try:
        resolve(dotted)
    except (LookupError, ImportError) as exc:
        owner, _, attr = dotted.rpartition(".")
        cls = resolve(owner)
        if isinstance(cls, type) and re.search(
            rf"\bself\.{attr}\b(\s*:[^=]+)?\s*=", inspect.getsource(cls)
        ):
            return None
        return str(exc)
    return None


def node_ids(text: str) -> list[str]:
    """Every `tests/...py::name` in backticks."""
    return [s for s in code_spans(text) if _NODE.match(s)]


def resolve(dotted: str) -> Any:
    """Import the longest importable prefix of `dotted`, then getattr the rest.

    Raises LookupError naming what is missing.
    """
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and not module_name.startswith(exc.name):
                raise  # the module exists but one of its imports does not
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise LookupError(f"{dotted}: {obj!r} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise LookupError(f"{dotted}: no importable module")


@cache
def _defined_tests(path: Path) -> frozenset[str]:
    """'test_x' and 'Class::test_x' for every function a test file defines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return frozenset(names)


@cache
def _collected(path: str) -> frozenset[str]:
    """The node ids pytest collects from one file (collection only: no test runs)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", path],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    return frozenset(line.strip() for line in result.stdout.splitlines() if "::" in line)


def missing_test(node_id: str) -> str | None:
    """None if the test exists; otherwise what is wrong with `node_id`."""
    match = _NODE.match(node_id)
    if match is None:
        return f"{node_id}: not a pytest node id"
    rel, name, params = match.groups()
    path = ROOT / rel
    if not path.is_file():
        return f"{node_id}: no file {rel}"
    if name not in _defined_tests(path):
        return f"{node_id}: {rel} defines no {name}"
    if params and node_id not in _collected(rel):
        return f"{node_id}: pytest collects no such parametrization from {rel}"
    return None


def missing_function(dotted: str) -> str | None:
    """None if `dotted` resolves to something callable (or a property); otherwise why not."""
    try:
        obj = resolve(dotted)
    except (LookupError, ImportError) as exc:
        return str(exc)
    if not callable(obj) and not isinstance(obj, property):
        return f"{dotted}: resolves to {obj!r}, which is not callable"
    return None


def relative_links(path: Path) -> Iterable[tuple[str, Path]]:
    """(link as written, file it points at) for every relative markdown link in `path`."""
    for target in _LINK.findall(path.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, in-page anchors
        file_part = target.split("#", 1)[0]
        yield target, (path.parent / file_part).resolve()


def learner_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

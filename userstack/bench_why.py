"""What explanations cost (tcp/rules.py): the core moving data with them off, on, and with
the decision lines taken out of the code altogether. The last table of `scripts/bench`;
`scripts/bench --why-only` prints it alone (`--quick`: 1 MB, one run).

The claim under test: with explanations off (the default) a decision point costs one
``is not None`` test, nothing measurable on the hot path. So the same transfer runs in
four builds and runs, each in a process of its own:

- ``stripped``: a copy of the package with every decision line removed from its source
  (each ``if why is not None: why.decide(...)``, found by `strip_decisions` in the syntax
  tree, not by text), as if explanations had never been written;
- ``off``: the code as it is, ``Stack.explain`` None (the hot path of `serve`);
- ``on``: ``Stack.explain`` set, each decision kept as a `Decision` and never formatted;
- ``printed``: what ``serve --trace --why`` adds to that, every decision formatted
  (observe/why.py `LiveWhy`, into a discarding stream).

The transfer: two sans-I/O Stacks (no trio, no TUN, no network) joined by hand, moving
SIZE bytes client to server through the whole packet path (IPv4 and TCP build, parse and
checksum, demultiplexing, the Connection and its Sender and Receiver), in virtual time
with no loss; the receiver checks every byte against what was sent. Each variant's time
is the CPU time of its process for the transfer (`time.process_time`), the best of K runs,
the runs of the variants interleaved so that a busy machine slows them alike. "off vs
stripped" is the cost of the decision lines when off; "on vs off" what explaining costs.
"""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from .stack import Stack
from .tcp.config import TcpConfig
from .tcp.rules import Explainer
from .wire.addr import Endpoint

VARIANTS = ("stripped", "off", "on", "printed")
CLIENT, SERVER, PORT = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"), 5001
TICK = 0.0001  # virtual seconds per exchange of packets: a 0.1 ms round trip
CHUNK = 64 * 1024
_DATA = random.Random(0x3A1).randbytes(1 << 20)  # the bytes sent, 1 MiB over and over


def transfer(size: int, explain: Callable[[Endpoint, Endpoint], Explainer] | None) -> float:
    """Two stacks move `size` bytes; the CPU seconds it took. Raises if a byte is wrong."""
    started = time.process_time()
    client = Stack(CLIENT, key=b"client", config=TcpConfig())
    server = Stack(SERVER, key=b"server", config=TcpConfig())
    client.explain = server.explain = explain
    server.listen(PORT, 1)
    now = 0.0
    sender = client.connect(Endpoint(SERVER, PORT), now)
    receiver = None
    source = memoryview(_DATA * 2)  # a window of up to 1 MiB at any offset
    sent = received = 0
    while received < size:
        if sent < size and sender.send_space:
            offset = sent % len(_DATA)
            sent += sender.send(source[offset:offset + min(CHUNK, size - sent)], now)
        server.receive_packets(client.take_packets(), now)
        client.receive_packets(server.take_packets(), now)
        if receiver is None:
            receiver = server.accept(PORT)
        while receiver is not None and (data := receiver.receive(CHUNK, now)):
            offset = received % len(_DATA)
            if source[offset:offset + len(data)] != data:
                raise RuntimeError(f"byte {received} and on arrived wrong")
            received += len(data)
        now += TICK
        for stack in (client, server):
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= now:
                stack.on_timer(now)
    return time.process_time() - started


def _explain_for(variant: str) -> Callable[[Endpoint, Endpoint], Explainer] | None:
    if variant in ("off", "stripped"):
        return None
    if variant == "on":
        return lambda local, remote: Explainer(lambda decision: None)
    from .observe.why import LiveWhy

    return LiveWhy(open(os.devnull, "w"))


# ---- the build without decision lines --------------------------------------------------


_RECORDERS = ("why", "_why", "explain")  # what the core calls its Explainer (or its maker)


def is_decision_test(test: ast.expr) -> bool:
    """`why is not None`, `self._why is not None`, `sender.why is not None`, `explain is
    not None`, alone or as the first operand of an `and`."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        test = test.values[0]
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.IsNot)):
        return False
    none, left = test.comparators[0], test.left
    name = left.id if isinstance(left, ast.Name) else (
        left.attr if isinstance(left, ast.Attribute) else None)
    return isinstance(none, ast.Constant) and none.value is None and name in _RECORDERS


def _only_decides(body: list[ast.stmt]) -> bool:
    """Every statement names a decision (`.decide(...)`, or a `._explain...` helper)."""
    return all(
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
        and isinstance(s.value.func, ast.Attribute)
        and (s.value.func.attr == "decide" or s.value.func.attr.startswith("_explain"))
        for s in body
    )


class _Stripper(ast.NodeTransformer):
    def __init__(self) -> None:
        self.removed = 0

    def visit_If(self, node: ast.If) -> ast.AST | None:
        self.generic_visit(node)
        if is_decision_test(node.test) and not node.orelse and _only_decides(node.body):
            self.removed += 1
            return None
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and not body:  # a block that held only decisions
            body.append(ast.Pass())
        return node


def strip_decisions(source: str) -> tuple[str, int]:
    """The module's source without its decision lines, and how many were removed."""
    stripper = _Stripper()
    tree = ast.fix_missing_locations(stripper.visit(ast.parse(source)))
    return ast.unparse(tree), stripper.removed


def stripped_copy(into: Path) -> int:
    """Copy the package under `into` with the decision lines of its core (tcp/, stack/)
    removed; how many were."""
    package = Path(__file__).resolve().parent
    copy = into / package.name
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    removed = 0
    for part in ("tcp", "stack"):
        for path in sorted((copy / part).glob("*.py")):
            source, n = strip_decisions(path.read_text())
            if n:
                path.write_text(source)
                removed += n
    return removed


# ---- the runs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Costs:
    size: int
    runs: int
    removed: int  # decision lines the stripped build lacks
    seconds: dict[str, float]  # best CPU seconds per variant

    def ratio(self, variant: str, base: str) -> float:
        return self.seconds[variant] / self.seconds[base]


def run_once(variant: str, size: int, pythonpath: Path | None) -> float:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(
        [sys.executable, "-m", "userstack.bench_why", "_run", variant, str(size)],
        capture_output=True, text=True, env=env, timeout=600, check=True,
        cwd=pythonpath or Path(__file__).resolve().parent.parent,
    ).stdout
    answer = json.loads(out)
    if (pythonpath is not None) != (answer["package"] != str(Path(__file__).resolve().parent)):
        raise RuntimeError(f"{variant} ran the wrong build: {answer['package']}")
    return float(answer["seconds"])


def measure(size: int, runs: int) -> Costs:
    """Best of `runs` for each variant, interleaved (see the module docstring)."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="userstack-stripped-") as tmp:
        removed = stripped_copy(Path(tmp))
        for _ in range(runs):
            for variant in VARIANTS:
                path = Path(tmp) if variant == "stripped" else None
                seconds = run_once(variant, size, path)
                best[variant] = min(best.get(variant, seconds), seconds)
    return Costs(size, runs, removed, best)


def format_costs(costs: Costs) -> str:
    mb = costs.size / 1e6
    lines = [
        f"explanations, sans-I/O core: two stacks moving {mb:g} MB, CPU seconds, best of "
        f"{costs.runs}",
        f"{'':34}{'seconds':>10}{'MB/s':>10}{'vs stripped':>13}",
    ]
    labels = {
        "stripped": f"decision lines removed ({costs.removed})",
        "off": "explanations off (the default)",
        "on": "explanations on (recorded)",
        "printed": "on and printed (--why)",
    }
    for variant in VARIANTS:
        seconds = costs.seconds[variant]
        lines.append(f"{labels[variant]:34}{seconds:10.3f}{mb / seconds:10.1f}"
                     f"{costs.ratio(variant, 'stripped'):13.3f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m userstack.bench_why _run VARIANT SIZE`: one run, in the process of its
    own that `measure` starts (scripts/bench --why-only is the way in for a person)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["_run"] or len(argv) != 3 or argv[1] not in VARIANTS:
        print(f"usage: python -m userstack.bench_why _run {{{','.join(VARIANTS)}}} SIZE",
              file=sys.stderr)
        return 2
    variant, size = argv[1], int(argv[2])
    seconds = transfer(size, _explain_for(variant))
    package = str(Path(__file__).resolve().parent)
    print(json.dumps({"variant": variant, "seconds": seconds, "package": package}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

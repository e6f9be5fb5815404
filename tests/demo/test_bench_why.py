"""bench_why (scripts/bench's explanations table): the build without decision lines lacks
every one of them and still moves data intact. Nothing here is timed."""

from __future__ import annotations

import ast
from pathlib import Path

from userstack.bench_why import (
    VARIANTS,
    Costs,
    format_costs,
    is_decision_test,
    run_once,
    strip_decisions,
    stripped_copy,
)

SOURCE = '''
def arrives(self, seg, why):
    if self._why is not None:
        self._why.decide(Rule.ACCEPTABLE, seg_seq=seg.seq)
    if seg.flags & RST:
        if why is not None and seg.seq:
            why.decide(Rule.RST_RESET)
    elif why is not None:
        self._explain_ack(seg, why)
    if self.other is not None:
        self.other.decide(seg)
    if why is not None:
        self.count += 1  # not a decision: kept
'''


def test_strip_decisions_removes_the_decision_lines_and_nothing_else() -> None:
    stripped, removed = strip_decisions(SOURCE)
    assert removed == 3
    assert "Rule." not in stripped and "_explain_ack" not in stripped
    assert "self.other.decide(seg)" in stripped  # not a recorder's test
    assert "self.count += 1" in stripped  # the body does more than decide
    assert "if seg.flags & RST:\n        pass" in stripped  # the emptied block still parses


def test_the_stripped_build_has_no_decision_left_and_moves_data(tmp_path: Path) -> None:
    removed = stripped_copy(tmp_path)
    assert removed > 50
    for path in [*(tmp_path / "userstack" / "tcp").glob("*.py"),
                 *(tmp_path / "userstack" / "stack").glob("*.py")]:
        tree = ast.parse(path.read_text())
        left = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.If)
                and is_decision_test(n.test)]
        assert left == [], (path, left)
    # it runs from the copy (the run checks which package it imported), bytes checked
    assert run_once("stripped", 200_000, tmp_path) > 0
    assert run_once("printed", 50_000, None) > 0


def test_the_table_names_each_variant_against_the_stripped_build() -> None:
    costs = Costs(20_000_000, 5, 80, {"stripped": 1.0, "off": 1.01, "on": 1.2, "printed": 2.0})
    table = format_costs(costs)
    assert "two stacks moving 20 MB, CPU seconds, best of 5" in table
    assert "decision lines removed (80)" in table
    assert "explanations off (the default)         1.010      19.8        1.010" in table
    assert len(table.splitlines()) == 2 + len(VARIANTS)

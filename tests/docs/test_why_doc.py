"""docs/why.md quotes real runs: each quoted segment, with the rule lines under it, is in
the run of tests/docs/why_scenarios.py it names, and every rule id the page names is in
the rule table."""

from __future__ import annotations

import re

import pytest
from docs_helpers import DOCS
from why_scenarios import SCENARIOS

from userstack.tcp.rules import Rule

WHY_MD = DOCS / "why.md"
QUOTE = re.compile(r"<!-- run: ([\w-]+) -->\n```text\n(.*?)\n```", re.S)


def quotes() -> list[tuple[str, str]]:
    found = QUOTE.findall(WHY_MD.read_text())
    assert found, "docs/why.md quotes no run"
    return found


def groups(text: str) -> list[list[str]]:
    """A trace line and the indented rule lines under it; `...` separates excerpts."""
    out: list[list[str]] = []
    for line in text.splitlines():
        if line == "...":
            out.append([])
        elif line.startswith(" ") and out:
            out[-1].append(line)
        else:
            out.append([line])
    return [g for g in out if g]


def contains(lines: list[str], group: list[str]) -> bool:
    n = len(group)
    return any(lines[i : i + n] == group for i in range(len(lines) - n + 1))


@pytest.mark.parametrize(("name", "quoted"), quotes(), ids=[n for n, _ in quotes()])
def test_each_quoted_segment_is_in_its_run(name: str, quoted: str) -> None:
    run = SCENARIOS[name]().splitlines()
    missing = [g for g in groups(quoted) if not contains(run, g)]
    assert missing == []


def test_every_run_is_quoted_and_every_rule_named_exists() -> None:
    assert {name for name, _ in quotes()} == set(SCENARIOS)
    ids = {rule.rule_id for rule in Rule}
    named = set(re.findall(r"`([a-z0-9_]+\.[a-z0-9_]+)`", WHY_MD.read_text()))
    assert named - ids == set()

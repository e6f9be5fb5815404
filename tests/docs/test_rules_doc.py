"""The rule table (userstack/tcp/rules.py) is the only way code names a rule: every
`Rule.NAME` written anywhere in userstack/ is a member of it, every member is named by the
code, and no two rules share an id; and every requirement docs/rfc-compliance.md marks
implemented names the rules that decide it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_rfc_compliance_doc import ROWS, status_of

from userstack.tcp.rules import Rule

PACKAGE = Path(__file__).resolve().parents[2] / "userstack"
REFERENCE = re.compile(r"\bRule\.([A-Z][A-Z0-9_]*)\b")


def rule_references() -> dict[str, list[str]]:
    """Each Rule member named in the source, and the files naming it."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in REFERENCE.findall(path.read_text()):
            found.setdefault(name, []).append(str(path.relative_to(PACKAGE.parent)))
    return found


def test_every_rule_the_code_names_is_in_the_table() -> None:
    references = rule_references()
    assert references, "the core names no rules at all"
    unknown = {name: files for name, files in references.items() if name not in Rule.__members__}
    assert unknown == {}


def test_every_rule_in_the_table_is_named_by_the_code() -> None:
    """No dead rows: each rule is one the core (or the stack) can really emit."""
    named = {name for name, files in rule_references().items()
             if any(not f.endswith("tcp/rules.py") for f in files)}
    assert [rule.name for rule in Rule if rule.name not in named] == []


def test_rule_ids_are_unique_and_dotted() -> None:
    ids = [rule.rule_id for rule in Rule]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", i) for i in ids), ids


@pytest.mark.parametrize("row", ROWS, ids=[r.get("req") or r.get("rfc", "?") for r in ROWS])
def test_every_implemented_requirement_names_its_rules(row: dict[str, str]) -> None:
    """docs/rfc-compliance.md's `rules` column: for a row implemented (or partly), the ids
    of the rules the core names when it applies that requirement, or `none` where no
    decision of the core is involved (a codec, a setting, an API)."""
    cell = row.get("rules")
    assert cell is not None, "the table has no rules column"
    if status_of(row) not in ("implemented", "partly"):
        return
    if cell == "none":
        return
    named = re.findall(r"`([^`]+)`", cell)
    assert named, f"name the rule ids in backticks, or write none: {cell!r}"
    assert [i for i in named if i not in {rule.rule_id for rule in Rule}] == []

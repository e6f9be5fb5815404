"""docs/rfc-compliance.md has a row, with a status, for every RFC 9293 MUST (1 to 69), and
each row's code and tests exist."""

from __future__ import annotations

import re

import pytest
from docs_helpers import DOCS, dotted_paths, missing_function, missing_test, node_ids, tables

COMPLIANCE_MD = DOCS / "rfc-compliance.md"
STATUSES = ("implemented", "partly", "not", "n/a")
NO_TEST = "*no test yet*"


def requirement_rows() -> list[dict[str, str]]:
    rows = [
        row
        for table in tables(COMPLIANCE_MD.read_text())
        if table and {"status", "where", "test"} <= table[0].keys()
        for row in table
    ]
    assert rows, "docs/rfc-compliance.md has no requirement table"
    return rows


ROWS = requirement_rows()
MUST_ROWS = [r for r in ROWS if re.fullmatch(r"MUST-\d+", r.get("req", ""))]


def status_of(row: dict[str, str]) -> str | None:
    """The leading status word ("**not** by default: ..." counts as "not")."""
    match = re.match(r"\W*(implemented|partly|not|n/a)\b", row["status"])
    return match.group(1) if match else None


def test_every_must_from_1_to_69_has_exactly_one_row() -> None:
    numbers = [int(r["req"].split("-")[1]) for r in MUST_ROWS]
    assert sorted(numbers) == list(range(1, 70))


@pytest.mark.parametrize("row", ROWS, ids=[r.get("req") or r.get("rfc", "?") for r in ROWS])
def test_row_has_a_status_and_real_references(row: dict[str, str]) -> None:
    status = status_of(row)
    assert status in STATUSES, f"status {row['status']!r} does not start with one of {STATUSES}"
    if status in ("implemented", "partly"):
        assert dotted_paths(row["where"]), "an implemented requirement names where it lives"
    assert node_ids(row["test"]) or row["test"] == NO_TEST, "name a test or write *no test yet*"
    if status == "implemented" and row["test"] != NO_TEST:
        assert node_ids(row["test"])
    problems = [p for p in map(missing_function, dotted_paths(row["where"])) if p]
    problems += [p for p in map(missing_test, node_ids(row["test"])) if p]
    assert problems == []

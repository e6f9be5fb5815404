"""docs/states.md's transition table names real functions and real tests; every relative
link and every code path in the learner docs (README.md, docs/*.md) points at something."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_helpers import (
    DOCS,
    ROOT,
    code_spans,
    dotted_paths,
    learner_docs,
    missing_attribute,
    missing_function,
    missing_test,
    node_ids,
    relative_links,
    short_names,
    tables,
)

from userstack.tcp.state import State

STATES_MD = DOCS / "states.md"
NO_TEST = "*no test yet*"
FIGURE_5 = {
    ("CLOSED", "LISTEN"), ("CLOSED", "SYN-SENT"), ("LISTEN", "SYN-RECEIVED"),
    ("LISTEN", "SYN-SENT"), ("LISTEN", "CLOSED"), ("SYN-SENT", "CLOSED"),
    ("SYN-SENT", "SYN-RECEIVED"), ("SYN-SENT", "ESTABLISHED"), ("SYN-RECEIVED", "LISTEN"),
    ("SYN-RECEIVED", "ESTABLISHED"), ("SYN-RECEIVED", "FIN-WAIT-1"),
    ("ESTABLISHED", "FIN-WAIT-1"), ("ESTABLISHED", "CLOSE-WAIT"), ("FIN-WAIT-1", "FIN-WAIT-2"),
    ("FIN-WAIT-1", "CLOSING"), ("FIN-WAIT-2", "TIME-WAIT"), ("CLOSING", "TIME-WAIT"),
    ("CLOSE-WAIT", "LAST-ACK"), ("LAST-ACK", "CLOSED"), ("TIME-WAIT", "CLOSED"),
}


def transition_rows() -> list[dict[str, str]]:
    rows = [
        row
        for table in tables(STATES_MD.read_text())
        if table and {"from", "to", "made by", "proven by"} <= table[0].keys()
        for row in table
    ]
    assert rows, "docs/states.md has no transition table"
    return rows


ROWS = transition_rows()
ROW_IDS = [f"{r['#']}:{r['from']}->{r['to']}" for r in ROWS]


def test_every_figure_5_transition_has_a_row() -> None:
    have = {(r["from"], r["to"]) for r in ROWS}
    assert FIGURE_5 - have == set()


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_row_names_real_states(row: dict[str, str]) -> None:
    names = {s.value for s in State}
    for column in ("from", "to"):
        for part in re.split(r",\s*", row[column]):
            state = re.sub(r"\s*\(.*\)$", "", part)  # "CLOSED (no TCB)" -> "CLOSED"
            assert state in names or state == "any state but CLOSED" or (
                state == "any sending state" and column == "from"
            ), f"{column} {part!r} is not an RFC 9293 state name"


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_row_functions_resolve(row: dict[str, str]) -> None:
    paths = dotted_paths(row["made by"])
    assert paths, "no function named"
    assert code_spans(row["made by"]) == paths, "a code span that is not a dotted path"
    assert [p for p in paths if missing_function(p)] == [], [missing_function(p) for p in paths]


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_row_tests_exist(row: dict[str, str]) -> None:
    cell = row["proven by"]
    ids = node_ids(cell)
    if cell == NO_TEST:
        return
    assert ids, "no test named (write *no test yet* if there is none)"
    assert code_spans(cell) == ids, "a code span that is not a pytest node id"
    problems = [p for p in map(missing_test, ids) if p]
    assert problems == []


@pytest.mark.parametrize("doc", learner_docs(), ids=lambda p: p.name)
def test_relative_links_point_at_files(doc: Path) -> None:
    broken = [link for link, target in relative_links(doc) if not target.exists()]
    assert broken == []


@pytest.mark.parametrize("doc", learner_docs(), ids=lambda p: p.name)
def test_code_references_resolve(doc: Path) -> None:
    """Outside the tables too: every `userstack.x.y`, `Connection.x`-style short name,
    `tests/...::test` and repo path."""
    text = doc.read_text()
    problems = [p for p in map(missing_attribute, dotted_paths(text)) if p]
    problems += [p for p in map(missing_attribute, short_names(text)) if p]
    problems += [p for p in map(missing_test, node_ids(text)) if p]
    for span in code_spans(text):
        is_path = re.fullmatch(r"(userstack|tests|scripts|docs)/[\w./-]*\w", span)
        if is_path and "::" not in span and not (ROOT / span).exists():
            problems.append(f"{span}: no such file")
    assert problems == []

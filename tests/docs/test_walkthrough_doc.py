"""docs/walkthrough.md is told from `userstack explain` of a real demo run: every block it
quotes is a run of lines of that output, for the capture kept beside the docs."""

from __future__ import annotations

import re

from docs_helpers import DOCS

from userstack.observe.why import explain_capture

WALKTHROUGH = DOCS / "walkthrough.md"
CAPTURE = DOCS / "images" / "viewer-demo.pcap"


def test_every_quoted_block_is_explain_output_of_the_kept_capture() -> None:
    explained = ["\n".join(e.lines) for e in explain_capture(CAPTURE)]
    blocks = re.findall(r"^```\n(.*?)\n```$", WALKTHROUGH.read_text(), re.S | re.M)
    assert len(blocks) >= 10
    assert [b.splitlines()[0] for b in blocks if not any(b in text for text in explained)] == []

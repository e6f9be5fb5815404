"""The Python example in README.md runs and prints what its comment says."""

from __future__ import annotations

import re
import subprocess
import sys

from docs_helpers import ROOT

EXAMPLE = re.compile(r"## Using it from Python.*?```python\n(.*?)```", re.DOTALL)


def test_readme_example_runs() -> None:
    match = EXAMPLE.search((ROOT / "README.md").read_text())
    assert match, "README.md has no python block under 'Using it from Python'"
    code = match.group(1)
    expected = re.search(r"print\(.*\)\s+# (.*)", code)
    assert expected, "the example's print() says what it prints in a comment"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected.group(1).strip()

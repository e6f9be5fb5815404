"""The socket tests reuse the two-stack helpers of tests/streams."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "streams"))

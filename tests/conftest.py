"""Shared fixtures. Keep this small and generic; area-specific helpers live beside their tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns import NetNs, netns_or_skip


@pytest.fixture
def netns() -> Iterator[NetNs]:
    """Run the test in its own network namespace (see tests/netns.py); marks it `netns`."""
    with netns_or_skip() as ns:
        yield ns


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "netns" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.netns)

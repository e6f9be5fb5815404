"""`userstack serve --loss --pcap`, then `userstack view` of its capture: the fault link's
drops (pcapng comments) are drawn as arrows that stop midway, and clicking one in a
headless Chromium (in the test's private namespace) says the fault link dropped it."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

from observe.chromium import Chromium, chromium_or_skip

from userstack.cli import main
from userstack.observe.replay import read_capture
from userstack.wire.pcapng import Fault

from .helpers import STACK, Served


def test_the_viewer_draws_the_drops_a_lossy_serve_recorded(
    serve: Callable[..., Served], workdir: Path
) -> None:
    binary = chromium_or_skip()
    # without offload every segment is a packet the faults may drop: some 100 packets in
    # all, so a run without a drop (0.9^100) does not happen
    served = serve("echo", "--loss", "0.1", "--seed", "3", "--no-offload", pcap=True)
    data = bytes(range(256)) * 200  # 51 kB: some 35 segments each way
    result = subprocess.run(["nc", "-N", STACK, "7"], input=data, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()
    assert served.stop() == 0  # flushes and closes the capture
    dropped = [p.number for p in read_capture(served.pcap).segments if p.fault is Fault.DROPPED]
    assert dropped  # TCP segments the fault link dropped, as the capture's comments say
    page = workdir / "lossy.html"
    assert main(["view", str(served.pcap), "-o", str(page)]) == 0  # nothing but the capture
    browser = Chromium(binary, workdir / "profile")
    try:
        browser.open(page.as_uri())
        lost = browser.evaluate(
            "[...document.querySelectorAll('g.segment.lost')].map(g => g.dataset.index)")
        assert len(lost) == len(dropped)
        x, y = browser.evaluate(f"""(() => {{
            const line = document.querySelector('g.segment.lost[data-index="{lost[0]}"] line');
            line.scrollIntoView({{block: "center"}});
            const r = line.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }})()""")
        browser.click(x, y)
        assert browser.evaluate(
            "document.querySelector('g.segment.selected').dataset.index") == lost[0]
        detail = browser.evaluate("document.querySelector('.detail').textContent")
        assert f"#{dropped[0]} " in detail  # the first dropped packet of the capture
        assert "dropped by the fault link (as the capture records)" in detail
        assert "no rule: the replay did not deliver it" in detail
    finally:
        browser.close()

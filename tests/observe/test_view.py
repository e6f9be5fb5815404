"""`userstack view`: one self-contained HTML page, checked as text and in a real headless
Chromium (Debian's `chromium`) that runs in a private network namespace with only `lo`."""

from __future__ import annotations

import re
from pathlib import Path

from userstack.cli import main
from userstack.observe.view import render_view
from userstack.wire.packet import build_tcp_packet
from userstack.wire.tcp import TcpFlags

from .chromium import Chromium, chromium_or_skip
from .test_why import EXCHANGE, C, S, seg, write_capture


def test_the_page_is_self_contained_and_carries_each_segments_decisions(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE)
    out = tmp_path / "x.html"
    assert main(["view", str(path), "-o", str(out)]) == 0
    page = out.read_text()
    # nothing for the browser to fetch: no src=, no <link>, no url(http...), a CSP of 'none'
    assert not re.search(r"\bsrc\s*=|<link\b|url\(\s*['\"]?https?:", page)
    assert "default-src 'none'" in page
    # the only addresses are the RFC links the reader may follow
    urls = set(re.findall(r"https?://[^\"'\s\\]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"} | {
        u for u in urls if u.startswith("https://www.rfc-editor.org/rfc/rfc")
    }
    assert "syn_sent.established" in page
    assert page.count('class="segment ') == len(EXCHANGE)


def test_figure_5_highlights_the_states_each_side_went_through(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE)
    (data,) = render_view(path, tmp_path / "x.html")
    figure = str(data["figure5"])
    assert re.search(r'class="state client" data-state="SYN-SENT"', figure)
    assert re.search(r'class="state server" data-state="LISTEN"', figure)
    assert re.search(r'class="state client server" data-state="ESTABLISHED"', figure)
    assert re.search(r'class="edge client" data-from="FIN-WAIT-2" data-to="TIME-WAIT"', figure)
    assert re.search(r'class="state" data-state="CLOSING"', figure)  # nobody went there


def test_a_packet_the_fault_link_dropped_is_drawn_as_lost(tmp_path: Path) -> None:
    handshake, rest = EXCHANGE[:3], EXCHANGE[4:]  # the capture lacks the lost request
    path = write_capture(tmp_path / "x.pcap", *handshake, *rest)
    lost = build_tcp_packet(C.ip, S.ip, seg(C, 101, 901, TcpFlags.PSH | TcpFlags.ACK, b"a" * 10))
    (data,) = render_view(path, tmp_path / "x.html", dropped=[(100.0025, lost)])
    steps = data["steps"]
    assert isinstance(steps, list)
    assert [i for i, s in enumerate(steps) if s["dropped"]] == [3]
    assert steps[3]["arrived"] == []  # it never reached the server's core
    assert 'class="segment client lost"' in (tmp_path / "x.html").read_text()


def test_clicking_a_segment_in_chromium_shows_its_decision(netns: object, tmp_path: Path) -> None:
    binary = chromium_or_skip()
    path = write_capture(tmp_path / "x.pcap", *EXCHANGE)
    page = tmp_path / "x.html"
    render_view(path, page)
    browser = Chromium(binary, tmp_path / "profile")
    try:
        browser.open(page.as_uri())
        assert browser.evaluate("document.querySelectorAll('g.segment').length") == len(EXCHANGE)
        x, y = browser.evaluate("""(() => {
            const line = document.querySelector('g.segment[data-index="1"] line');
            line.scrollIntoView({block: "center"});
            const r = line.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        })()""")
        browser.click(x, y)
        detail = browser.evaluate("document.querySelector('.detail').textContent")
        assert "#2 " in detail  # the SYN,ACK: packet 2 of the capture
        assert "syn_sent.established" in detail
        assert "RFC 9293 3.10.7.3" in detail
        assert browser.evaluate(
            "document.querySelector('g.segment.selected').dataset.index") == "1"
        assert browser.evaluate("document.querySelector('.detail a.rfc').href") == (
            "https://www.rfc-editor.org/rfc/rfc9293#section-3.10.7.3"
        )
        # the step control walks on to the client's ACK, acceptable to the server
        browser.evaluate("document.querySelector('button.next').click()")
        detail = browser.evaluate("document.querySelector('.detail').textContent")
        assert "acceptability.acceptable" in detail
        assert browser.evaluate("document.querySelector('.where').textContent") == (
            f"segment 3 of {len(EXCHANGE)}"
        )
        browser.screenshot(tmp_path / "view.png")
        assert (tmp_path / "view.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        browser.close()

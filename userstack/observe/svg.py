"""The few SVG helpers the figures share (ladder.py, plot.py): elements, numbers, the document.

The SVG is written by hand with xml.etree, which escapes every text and attribute.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"


def element(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    """A child element; attribute names use _ for - (stroke_width -> stroke-width)."""
    e = ET.SubElement(
        parent,
        tag,
        {k.rstrip("_").replace("_", "-"): attr(v) for k, v in attrs.items()},
    )
    if text is not None:
        e.text = text
    return e


def attr(v: object) -> str:
    """Attribute text: floats to 0.1 px (no 472.0000000001 in the file)."""
    return f"{v:.1f}".removesuffix(".0") if isinstance(v, float) else str(v)


def xy(x: float, y: float) -> str:
    return f"{attr(x)},{attr(y)}"


def document(svg: ET.Element) -> str:
    """The figure as the text of an SVG file."""
    ET.indent(svg)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(svg, encoding="unicode") + "\n"

#!/usr/bin/env python3
"""Draw docs/flow.txt (the steps a change takes to production) as docs/flow.svg.

Plain SVG written here, so the image needs no package; tests/unit/test_docs.py renders the source
again and fails when the committed image differs. Usage: scripts/render_flow.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "docs" / "flow.txt"
IMAGE = ROOT / "docs" / "flow.svg"

PER_ROW = 4
BOX_W, BOX_H, GAP, MARGIN = 180, 72, 44, 20
TITLE_PX, DETAIL_PX = 15, 11
# Average glyph width as a share of the font size (sans-serif); a label wider than its box is refused.
GLYPH = {TITLE_PX: 0.62, DETAIL_PX: 0.58}
COLOURS = {  # kind: (fill, stroke, legend)
    "git": ("#e8eef9", "#4a6fa5", "a commit or a review"),
    "check": ("#fdf3dc", "#b8860b", "a check"),
    "deploy": ("#e6f4ea", "#3c8d5a", "a deploy"),
}


class Step(NamedTuple):
    kind: str
    title: str
    details: tuple[str, ...]


def read_steps(path: Path = SOURCE) -> list[Step]:
    """Every non-comment line as a step; a bad kind or a label too wide for its box is an error."""
    steps = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) != 3 or fields[0] not in COLOURS:
            raise ValueError(f"{path.name}:{number}: want 'kind | title | detail', kind one of {sorted(COLOURS)}")
        step = Step(fields[0], fields[1], tuple(part.strip() for part in fields[2].split(";")))
        _check_fits(step, f"{path.name}:{number}")
        steps.append(step)
    return steps


def _check_fits(step: Step, where: str) -> None:
    for text, px in [(step.title, TITLE_PX), *((detail, DETAIL_PX) for detail in step.details)]:
        if len(text) * px * GLYPH[px] > BOX_W - 12:
            raise ValueError(f"{where}: {text!r} is too wide for its box")
    if len(step.details) > 2:
        raise ValueError(f"{where}: at most two detail lines")


def _origin(index: int) -> tuple[int, int]:
    row, column = divmod(index, PER_ROW)
    return MARGIN + column * (BOX_W + GAP), MARGIN + row * (BOX_H + GAP)


def _box(index: int, step: Step) -> list[str]:
    x, y = _origin(index)
    fill, stroke, _ = COLOURS[step.kind]
    middle = x + BOX_W // 2
    lines = [
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{stroke}"/>',
        f'<text x="{middle}" y="{y + 26}" class="title">{escape(step.title)}</text>',
    ]
    for line_number, detail in enumerate(step.details):
        lines.append(f'<text x="{middle}" y="{y + 46 + 14 * line_number}" class="detail">{escape(detail)}</text>')
    return lines


def _arrow(index: int) -> str:
    """From step index to the next: straight within a row, down and back to the next row's start."""
    x, y = _origin(index)
    nx, ny = _origin(index + 1)
    if ny == y:
        return f'<path d="M{x + BOX_W} {y + BOX_H // 2} H{nx - 2}" class="arrow"/>'
    turn = y + BOX_H + GAP // 2
    return f'<path d="M{x + BOX_W // 2} {y + BOX_H} V{turn} H{nx + BOX_W // 2} V{ny - 2}" class="arrow"/>'


def _legend(count: int) -> list[str]:
    """In the first free slot of the last row."""
    x, y = _origin(count)
    lines = []
    for row, (fill, stroke, label) in enumerate(COLOURS.values()):
        top = y + 8 + row * 22
        lines.append(f'<rect x="{x + 10}" y="{top}" width="16" height="14" rx="3" fill="{fill}" stroke="{stroke}"/>')
        lines.append(f'<text x="{x + 34}" y="{top + 11}" class="legend">{escape(label)}</text>')
    return lines


def render(steps: list[Step]) -> str:
    slots = len(steps) + 1  # the legend takes one slot
    rows = -(-slots // PER_ROW)
    width = 2 * MARGIN + PER_ROW * BOX_W + (PER_ROW - 1) * GAP
    height = 2 * MARGIN + rows * BOX_H + (rows - 1) * GAP
    summary = " → ".join(step.title for step in steps)
    body = [line for index, step in enumerate(steps) for line in _box(index, step)]
    body += [_arrow(index) for index in range(len(steps) - 1)]
    body += _legend(len(steps))
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(summary)}">',
        f"<title>{escape(summary)}</title>",
        "<defs>",
        '<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto">',
        '<path d="M0 0 L10 5 L0 10 z" fill="#57606a"/>',
        "</marker>",
        "<style>",
        "text { font-family: 'DejaVu Sans', Arial, sans-serif; fill: #1f2328; }",
        f".title {{ font-size: {TITLE_PX}px; font-weight: bold; text-anchor: middle; }}",
        f".detail {{ font-size: {DETAIL_PX}px; text-anchor: middle; fill: #424a53; }}",
        f".legend {{ font-size: {DETAIL_PX}px; }}",
        ".arrow { fill: none; stroke: #57606a; stroke-width: 2; marker-end: url(#head); }",
        "</style>",
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    return "\n".join([*head, *body, "</svg>"]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/flow.svg is not the source's rendering")
    args = parser.parse_args()
    svg = render(read_steps())
    if args.check:
        if IMAGE.read_text() != svg:
            print(f"{IMAGE.relative_to(ROOT)} differs from {SOURCE.relative_to(ROOT)}: run scripts/render_flow.py")
            return 1
        return 0
    IMAGE.write_text(svg)
    print(f"wrote {IMAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

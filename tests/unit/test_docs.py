"""README.md and docs/: the README stays short, every relative link and anchor resolves, and the
flow diagram (docs/flow.svg) is its source's (docs/flow.txt) rendering by scripts/render_flow.py."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from infra.spec import ROOT

README_MAX_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
EXTERNAL = ("http://", "https://", "mailto:")


# scripts/ is not a package: the renderer's functions, as `python scripts/render_flow.py` defines them.
render_flow = SimpleNamespace(**runpy.run_path(str(ROOT / "scripts" / "render_flow.py")))


def _unfenced(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)


def _prose(text: str) -> str:
    """The text outside code blocks and inline code, where a link is a link."""
    return re.sub(r"`[^`\n]*`", "", _unfenced(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*_]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2 suffixes for repeated ones."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _unfenced(path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `document` whose file or anchor does not exist, or that leaves `root`."""
    broken = []
    for target in LINK.findall(_prose(document.read_text())):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        path = (document.parent / file_part).resolve() if file_part else document
        if not path.is_relative_to(root.resolve()) or not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            broken.append(f"{target}: no heading #{anchor} in {path.name}")
    return broken


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_every_relative_link_points_at_an_existing_file_and_heading(document: Path) -> None:
    assert broken_links(document) == []


def test_the_link_check_finds_a_missing_file_a_missing_heading_and_a_link_out_of_the_repository(
    tmp_path: Path,
) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Sub `part` (two)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#sub-part-two) [self](#page) [gone](missing.md) [bad](other.md#nope)\n"
        "[out](../../etc/passwd) [web](https://example.org) `[code](missing.md)`\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "missing.md: no such file",
        "other.md#nope: no heading #nope in other.md",
        "../../etc/passwd: no such file",
    ]


def test_readme_is_shorter_than_250_lines_and_shows_the_flow_diagram() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < README_MAX_LINES
    assert "](docs/flow.svg)" in readme


def test_the_committed_flow_diagram_is_the_rendering_of_its_source() -> None:
    committed = (ROOT / "docs" / "flow.svg").read_text()
    assert committed == render_flow.render(render_flow.read_steps()), "run scripts/render_flow.py and commit"


def test_the_diagram_draws_every_step_in_order_and_refuses_a_label_wider_than_its_box(tmp_path: Path) -> None:
    steps = render_flow.read_steps()
    svg = render_flow.render(steps)
    positions = [svg.index(f'class="title">{step.title}</text>') for step in steps]
    assert positions == sorted(positions) and len(steps) == 7
    source = tmp_path / "flow.txt"
    source.write_text("check | gate | " + "x" * 40 + "\n")
    with pytest.raises(ValueError, match="too wide"):
        render_flow.read_steps(source)

"""A stack's desired state in Git: `living-codex:release` (and `living-codex:image`, and an override
`living-codex:breakGlass` when a release runs without its evidence) in Pulumi.<stack>.yaml.

The file is edited one line at a time, so its comments and layout stay as people wrote them; the result
is parsed back and must say exactly what was written, or nothing is written. The repository is the
checkout (ROOT), or CODEX_REPO_DIR (tests point it at a temporary clone).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from infra.spec import NAMESPACE, BreakGlass, repo_root, stack_file

RELEASE_KEY = f"{NAMESPACE}:release"
IMAGE_KEY = f"{NAMESPACE}:image"
BREAK_GLASS_KEY = f"{NAMESPACE}:breakGlass"


class StackFileError(ValueError):
    """The stack file cannot be read or edited as asked; the message names the file and the key."""


@dataclass(frozen=True)
class Desired:
    """What a stack file names: the release (None: nothing promoted yet) and the image."""

    release: str | None
    image: str | None
    break_glass: BreakGlass | None = None  # the release runs without its evidence, and why


def repo_dir() -> Path:
    """The Git repository whose stack files are the desired state."""
    return repo_root().resolve()


def path_of(stack: str, repo: Path | None = None) -> Path:
    return stack_file(stack, repo or repo_dir())


def parse(text: str, name: str = "stack file") -> Desired:
    """The desired state in a stack file's text (a file in Git at any commit)."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{name} is not valid YAML: {exc}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{name} has no 'config:' map")
    release, image = config.get(RELEASE_KEY), config.get(IMAGE_KEY)
    return Desired(
        str(release) if release is not None else None,
        str(image) if image is not None else None,
        _break_glass(config.get(BREAK_GLASS_KEY), name),
    )


def _break_glass(value: object, name: str) -> BreakGlass | None:
    if value is None:
        return None
    try:
        return BreakGlass.model_validate(value)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise StackFileError(f"{name}: {BREAK_GLASS_KEY} is not {{release, reason, by}}: {problem}") from None


def flow_value(value: BreakGlass) -> str:
    """One line of JSON (a YAML flow map): '#' escaped so no part of it reads as a comment."""
    return json.dumps(value.model_dump(), ensure_ascii=True).replace("#", "\\u0023")


def read(stack: str, repo: Path | None = None) -> Desired:
    path = path_of(stack, repo)
    if not path.exists():
        raise StackFileError(f"{path} not found: is {stack!r} a stack of {path.parent}?")
    return parse(path.read_text(), path.name)


def _line(key: str) -> re.Pattern[str]:
    # `  living-codex:release: value  # comment`: the value (plain or quoted) and any trailing comment.
    return re.compile(rf"^(?P<indent>[ \t]+){re.escape(key)}:[ \t]*(?P<value>[^#\n]*?)(?P<comment>[ \t]+#.*)?$", re.M)


def set_key(text: str, key: str, value: str | None, *, flow: bool = False) -> str:
    """`text` with `key` set to `value` (None removes the line); every other line as it was. A `flow`
    value is one line of JSON (flow_value); any other must be plain."""
    pattern = _line(key)
    found = pattern.search(text)
    if value is None:
        return text if found is None else text[: found.start()] + text[found.end() + 1 :]
    if not flow and re.search(r"[\s#'\"]", value):
        raise StackFileError(f"{key}: {value!r} is not a plain value (no spaces, quotes or #)")
    if "\n" in value or "#" in value:
        raise StackFileError(f"{key}: a value is one line without '#'")
    if found is not None:
        comment = found.group("comment") or ""
        line = f"{found.group('indent')}{key}: {value}{comment}"
        return text[: found.start()] + line + text[found.end() :]
    image = _line(IMAGE_KEY).search(text) if key != IMAGE_KEY else None
    if image is not None:  # a new release line goes just above the image's
        return text[: image.start()] + f"{image.group('indent')}{key}: {value}\n" + text[image.start() :]
    # Otherwise right after `config:`, indented like the first key beneath it.
    config = re.search(r"^config:[ \t]*\n(?P<indent>[ \t]+)", text, re.M)
    if config is None:
        raise StackFileError(f"no 'config:' map with indented keys to add {key} to")
    at = config.end("indent") - len(config.group("indent"))
    return text[:at] + f"{config.group('indent')}{key}: {value}\n" + text[at:]


def edited(text: str, want: Desired, name: str = "stack file") -> str:
    """The file's text naming `want`; refused unless parsing the result gives back exactly `want`."""
    new = set_key(text, RELEASE_KEY, want.release)
    if want.image is not None:
        new = set_key(new, IMAGE_KEY, want.image)
    glass = flow_value(want.break_glass) if want.break_glass else None
    new = set_key(new, BREAK_GLASS_KEY, glass, flow=True)
    got = parse(new, name)
    same_image = want.image is None or got.image == want.image
    if got.release != want.release or not same_image or got.break_glass != want.break_glass:
        raise StackFileError(f"{name}: editing gave {got}, not {want}; edit the file by hand")
    return new


def write(stack: str, want: Desired, repo: Path | None = None) -> bool:
    """Make the stack file name `want`; False when it already did (nothing written)."""
    path = path_of(stack, repo)
    text = path.read_text()
    new = edited(text, want, path.name)
    if new == text:
        return False
    path.write_text(new)
    return True

"""The version of a source tree: the project version plus what `git describe` says of the checkout.

`0.1.0` on a clean checkout of the tag `v0.1.0`; otherwise `0.1.0.dev<N>+g<sha12>` (N commits since the
last `v*` tag, or since the first commit when there is none), `.dirty` appended for uncommitted changes;
`0.1.0+unknown` outside a git checkout. Every build of a different commit so gets a different version,
and a release id (`<version>+<digest12>`) names its content on top of that.
"""

from __future__ import annotations

import subprocess
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "living-codex-ops"
CHECKOUT = Path(__file__).resolve().parent.parent


def _git(source: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=source, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def project_version(source: Path) -> str:
    """pyproject.toml's version, else the installed distribution's (an image has no pyproject.toml)."""
    try:
        return str(tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            return metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            return "0.0.0"


def describe_version(source: Path) -> str:
    """The PEP 440 version of the tree at `source` (see the module's docstring)."""
    base = project_version(source)
    if _git(source, "rev-parse", "--show-toplevel") != str(source.resolve()):
        return f"{base}+unknown"  # not the root of a checkout (a copied tree, an installed package)
    sha = _git(source, "rev-parse", "--short=12", "HEAD")
    if sha is None:
        return f"{base}+unknown"  # a repository without a commit
    dirty = bool(_git(source, "status", "--porcelain", "--untracked-files=no"))
    described = _git(source, "describe", "--tags", "--match", "v[0-9]*", "--long", "--abbrev=12")
    if described:  # v0.1.0-42-g<sha>
        tag, distance, _ = described.rsplit("-", 2)
        if tag == f"v{base}" and distance == "0" and not dirty:
            return base
        commits = distance
    else:
        commits = _git(source, "rev-list", "--count", "HEAD") or "0"
    return f"{base}.dev{commits}+g{sha}" + (".dirty" if dirty else "")


@cache
def _checkout_version() -> str:
    return describe_version(CHECKOUT)  # once per process: /health must not run git per request


def running_version(release: str | None) -> str:
    """What a process reports: the release the deployer set (CODEX_RELEASE), else its checkout's version."""
    return release or _checkout_version()

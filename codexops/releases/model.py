"""A release: one immutable build of the service, named by version and content digest.

Releases live in the release store, `.local/releases/<version>-<digest12>/release.json` (root
overridable with CODEX_RELEASES_DIR), and are never overwritten once built.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from codexops.paths import local_root

MANIFEST = "release.json"


class ReleaseNotFound(LookupError):
    """No release matches; the message says what to run."""


class AmbiguousRelease(ReleaseNotFound):
    """Several builds match (a version built more than once); the message lists them."""


@dataclass(frozen=True)
class Release:
    id: str  # "<version>+<digest12>"
    version: str
    commit: str  # git commit the release was built from ("unknown" outside a checkout)
    digest: str  # "sha256:<hex>" of the release's content
    built_at: str  # ISO-8601 UTC
    path: Path | None  # the local release directory
    image: str | None  # image reference by digest (docker/kubernetes), when one was built
    schema_head: str  # alembic head revision the release migrates to
    env: dict[str, str] = field(
        default_factory=dict
    )  # baked into the release, set on every replica (tests' bad releases)
    manifest_digest: str = ""  # "sha256:<hex>" of the release folder's files.sha256 (local builds)

    @property
    def short_digest(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        path = data.get("path")
        return cls(
            id=str(data["id"]),
            version=str(data["version"]),
            commit=str(data["commit"]),
            digest=str(data["digest"]),
            built_at=str(data["built_at"]),
            path=Path(path) if path else None,
            image=data.get("image"),
            schema_head=str(data["schema_head"]),
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
            manifest_digest=str(data.get("manifest_digest") or ""),
        )


def release_id(version: str, digest: str) -> str:
    """`<version>+<digest12>`, e.g. 0.1.0.dev208+g0ba330683d00+5899d1a1120c; split it at the last "+"."""
    return f"{version}+{digest.removeprefix('sha256:')[:12]}"


def split_release_id(rid: str) -> tuple[str, str]:
    """(version, digest12) of a release id."""
    version, _, digest = rid.rpartition("+")
    return version, digest


def store_root() -> Path:
    return Path(os.environ.get("CODEX_RELEASES_DIR") or local_root() / "releases")


def read_release(directory: Path) -> Release:
    release = Release.from_json(json.loads((directory / MANIFEST).read_text()))
    # The directory is where it is now (the store may have moved); the manifest's path is informative.
    return replace(release, path=directory) if release.path is not None else release


def list_releases(root: Path | None = None) -> list[Release]:
    """Every release in the store, oldest build first."""
    root = root or store_root()
    if not root.is_dir():
        return []
    found = [read_release(d) for d in root.iterdir() if (d / MANIFEST).is_file()]
    return sorted(found, key=lambda r: (r.built_at, r.id))


def load_release(ref: str, root: Path | None = None) -> Release:
    """A release by id ("0.1.0.dev3+g0ba330683d00+abcdef012345"), digest or digest prefix ("sha256:ab..",
    "abcdef"), version ("0.1.0.dev3+g0ba330683d00", "v0.1.0"), or "latest". A reference that matches
    several builds is refused with their ids, never resolved to one of them silently."""
    releases = list_releases(root)
    if not releases:
        raise ReleaseNotFound(f"no release in {root or store_root()}: run `codexops release build`")
    if ref == "latest":
        return releases[-1]
    bare = ref.removeprefix("sha256:")
    exact = [r for r in releases if ref == r.id]
    matches = exact or [
        r
        for r in releases
        if r.version == ref.removeprefix("v") or (len(bare) >= 6 and r.digest.removeprefix("sha256:").startswith(bare))
    ]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise AmbiguousRelease(
            f"{ref!r} matches {len(matches)} builds: "
            + ", ".join(f"{r.id} (built {r.built_at} from {r.commit[:12]})" for r in matches)
            + "; name one by its id"
        )
    raise ReleaseNotFound(
        f"no release {ref!r}; known: {', '.join(r.id for r in releases[-5:])} (build one with `codexops release build`)"
    )

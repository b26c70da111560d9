"""The release a stack file names, found for a deploy: from the release store, else (a backend that
deploys by image) from the image the file names, else built from its source commit, named in Git by the
commit that first put it in a stack file, when that build gives the same release."""

from __future__ import annotations

import tempfile
from pathlib import Path

from codexops.releases import admission, desired, gitops
from codexops.releases.backend import Progress
from codexops.releases.build import BuildError, build_release
from codexops.releases.desired import Desired
from codexops.releases.model import Release, ReleaseNotFound, load_release, store_root


class ReleaseMissing(LookupError):
    """The named release is not in the store and cannot be built here; the message says what is missing."""


def release_named(want: Desired, say: Progress, *, by_image: bool) -> Release:
    """The release the file names. `by_image`: the backend deploys the file's image, so the image is
    enough (a fresh runner's store is empty); otherwise the release's files are needed."""
    assert want.release is not None
    try:
        return load_release(want.release)
    except ReleaseNotFound:
        pass
    if by_image and want.image:
        digest = want.image.rpartition("@")[2] if "@" in want.image else ""
        return admission.named_release(want.release, digest, want.image)
    return build_from_commit(want.release, say)


def build_from_commit(release_id: str, say: Progress) -> Release:
    repo = desired.repo_dir()
    commit = gitops.release_commit(release_id, repo)
    missing = f"release {release_id} is not in the release store ({store_root()})"
    if commit is None or commit == "unknown" or commit.endswith("-dirty"):
        raise ReleaseMissing(
            f"{missing}, and no commit in Git names a clean source commit for it: copy the release "
            f"directory into the store, or build it at its commit (`codexops release build`)"
        )
    say(f"  {missing}: building it from commit {commit}")
    with tempfile.TemporaryDirectory(prefix="codex-source-") as scratch:
        tree = Path(scratch) / "source"
        try:
            gitops.git(repo, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        except gitops.GitError as exc:
            absent = f"its commit {commit} is not in {repo}: `git fetch` it ({exc})"
            raise ReleaseMissing(f"{missing}, and {absent}") from None
        try:
            built = build_release(say, source=tree)
        except BuildError as exc:
            raise ReleaseMissing(f"{missing}; building it from {commit} failed: {exc}") from None
        finally:
            gitops.git(repo, "worktree", "remove", "--force", str(tree), check=False)
    if built.id != release_id:
        raise ReleaseMissing(
            f"{missing}; commit {commit} builds {built.id}, not {release_id} (not the same content): "
            "copy the original release into the store"
        )
    return built

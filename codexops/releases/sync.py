"""`codexops sync` and `codexops diff`: a stack against what its committed Pulumi.<stack>.yaml names.

sync: make the stack run that release (a no-op when it does), verified like a deploy (checklist and smoke
load; on FAIL what served before is put back and the message says so). The release comes from the release store;
a fresh clone's store lacks it, so it is built from its source commit (named in Git by the commit that
first put it in a stack file) when that build gives the same release, or the message says what is missing.
diff: 0 when the stack serves what its file names, 1 with what differs (local: the serving release;
Pulumi: `preview --expect-no-changes`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codexops.releases import admission, desired, gitops, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.desired import Desired
from codexops.releases.model import Release, ReleaseNotFound, load_release
from codexops.releases.serving import unverified

Confirm = Callable[[Path], None]  # asked before a database backup is restored; raises to refuse


class ReleaseMissing(LookupError):
    """The named release is not in the store and cannot be built here; the message says what is missing."""


@dataclass(frozen=True)
class Drift:
    exit_code: int  # 0 in sync (or nothing named yet), 1 differs
    message: str


def nothing_named(stack: str) -> str:
    return f"Pulumi.{stack}.yaml names no release yet (nothing promoted to {stack})"


def diff(backend: Backend, stack: str) -> Drift:
    want = desired.read(stack)
    from codexops.releases.pulumi_backend import PulumiBackend

    if isinstance(backend, PulumiBackend):
        changes = backend.drift(stack)
        if changes:
            found = f"(pulumi preview --expect-no-changes):\n{changes}"
            return Drift(1, f"{stack} differs from Pulumi.{stack}.yaml {found}")
        matches = Drift(0, f"{stack} matches Pulumi.{stack}.yaml (release {want.release or 'not named'}, {want.image})")
        if want.release is None or want.image is None:
            return matches
        named = admission.named_release(want.release, want.image.rpartition("@")[2], want.image)
        return admitted(stack, named, matches)
    serving = backend.serving(stack)  # asked of every replica, not remembered
    if want.release is None:
        return Drift(0, f"{nothing_named(stack)}: nothing to compare; {stack} serves {serving.describe()}")
    differing = serving.differences(want.release)
    if differing:
        edited = " (uncommitted: commit it, then sync)" if gitops.uncommitted(desired.path_of(stack)) else ""
        found = f"{stack} serves {serving.uniform}" if serving.uniform else "; ".join(differing)
        return Drift(1, f"{stack} differs: Pulumi.{stack}.yaml names {want.release}{edited}; {found}")
    why = unverified(stack, want.release, serving)
    if why:
        return Drift(
            1, f"{stack} serves {want.release}, as Pulumi.{stack}.yaml names, but {why}: `codexops sync {stack}`"
        )
    config = backend.drift(stack)
    if config:
        return Drift(1, f"{stack} serves {want.release}, but its settings differ from Pulumi.{stack}.yaml:\n{config}")
    in_sync = Drift(0, f"{stack} serves {want.release}, as Pulumi.{stack}.yaml names")
    current = backend.current_release(stack)
    return admitted(stack, current, in_sync) if current is not None else in_sync


def admitted(stack: str, serving: Release, drift: Drift) -> Drift:
    """`drift`, unless what serves would not pass the stack's door now, or passed it only by break-glass:
    that is reported (exit 1) until a promotion with evidence replaces it."""
    try:
        door = admission.admit(stack, serving)
    except admission.NotAdmitted as refusal:
        return Drift(1, f"{stack} serves {serving.id} without the evidence its spec requires: {refusal}")
    if door.loud:
        return Drift(1, f"{stack} serves {serving.id} by {door.detail}; promote a release with evidence to end it")
    return drift


def release_named(want: Desired, say: Progress, *, pulumi: bool = False) -> Release:
    """The release the file names: from the store, else (Pulumi) from its image, else built from its commit."""
    assert want.release is not None
    try:
        return load_release(want.release)
    except ReleaseNotFound:
        pass
    if pulumi and want.image:  # the Pulumi backend deploys the file's image; no local build is needed
        digest = want.image.rpartition("@")[2] if "@" in want.image else ""
        version = want.release.partition("+")[0]
        return Release(want.release, version, "unknown", digest, "", None, want.image, "")
    return build_from_commit(want.release, say)


def build_from_commit(release_id: str, say: Progress) -> Release:
    from codexops.releases.build import BuildError, build_release
    from codexops.releases.model import store_root

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


def sync(
    backend: Backend,
    stack: str,
    *,
    confirm: Confirm,
    reports: Path,
    say: Progress,
) -> tuple[int, str, str]:
    """(exit code, verdict, message): make STACK serve its file's release, verified like any deploy."""
    from codexops.releases.promote import ship

    gitops.require_committed(stack)
    want = desired.read(stack)
    if want.release is None:
        return 0, "NOTHING TO SYNC", f"{nothing_named(stack)}: nothing to sync"
    serving = backend.serving(stack)  # every replica asked: a stopped or mixed stack is not in sync
    # A fresh runner's store is empty: the Pulumi stack's exported image names the release too.
    verified = serving.uniform == want.release and not unverified(stack, want.release, serving)
    same_release = verified or (want.image is not None and serving.image == want.image)
    # The desired state is the whole file and the program: settings that changed are applied too.
    if same_release and not backend.drift(stack):
        return 0, "IN SYNC", f"{stack} serves {want.release}, as Pulumi.{stack}.yaml names: nothing to do"
    say(f"==> {stack} serves {serving.describe()}; Pulumi.{stack}.yaml names {want.release}")
    release = release_named(want, say, pulumi=backend.name == "pulumi")
    backend.check_release(release)  # edited bytes are refused before anything stops
    restore_backup_for(backend, stack, release, confirm, say)
    result = ship(backend, stack, release, kind="sync", reports=reports, say=say)
    if result.exit_code != 0:  # put back what served; the file still names the failed release
        fix = f"Pulumi.{stack}.yaml still names {release.id}: revert that commit (git revert) or fix forward"
        return result.exit_code, result.verdict, f"{result.message}; {fix}"
    return result.exit_code, result.verdict, result.message


def restore_backup_for(backend: Backend, stack: str, release: Release, confirm: Confirm, say: Progress) -> None:
    """Going back to a release whose schema is behind: the backup taken when it moved forward, restored first.
    A release that never served this stack is a move forward: nothing to restore."""
    events = history.read(stack)
    if not any(e.in_service and e.release == release.id for e in events):
        return
    backup = history.backup_to_restore(events, release.id)
    if backup:
        confirm(Path(backup))
        say(f"==> restoring the database of {stack} from {backup} (writes since are discarded)")
        backend.restore_backup(stack, Path(backup), say)
        say(f"  database restored from {backup}")

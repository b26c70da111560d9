"""`codexops sync` and `codexops diff`: a stack against what its committed Pulumi.<stack>.yaml names.

sync: make the stack run that release (a no-op when it does), verified like a deploy (shipping.py:
checklist and smoke load; on FAIL what served before is put back and the message says so). The release
comes from the release store, or is found as named.py says (the file's image, or a build of its commit).
diff: 0 when the stack serves what its file names, 1 with what differs. Both ask the backend the same
two questions: what serves (each replica's release, or the image the platform runs) and what else
differs from the desired state (`drift`: local, the spec rendered now; Pulumi, a refreshed preview).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codexops.releases import admission, desired, gitops, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.desired import Desired
from codexops.releases.model import Release
from codexops.releases.named import release_named
from codexops.releases.serving import Serving, unverified
from codexops.releases.shipping import ship

Confirm = Callable[[Path], None]  # asked before a database backup is restored; raises to refuse


@dataclass(frozen=True)
class Drift:
    exit_code: int  # 0 in sync (or nothing named yet), 1 differs
    message: str


def nothing_named(stack: str) -> str:
    return f"Pulumi.{stack}.yaml names no release yet (nothing promoted to {stack})"


def diff(backend: Backend, stack: str) -> Drift:
    want = desired.read(stack)
    serving = backend.serving(stack)  # asked of every replica (or the platform), not remembered
    if want.release is not None:
        differs = release_differs(stack, want, serving)
        if differs:
            return Drift(1, differs)
    settings = backend.drift(stack)  # the rest of the file and the program
    if settings:
        what = f"serves {want.release}" if want.release else "has no release named"
        return Drift(1, f"{stack} {what}, but its settings differ from Pulumi.{stack}.yaml:\n{settings}")
    if want.release is None:
        return Drift(0, f"{nothing_named(stack)}: no release to compare; {stack} serves {serving.describe()}")
    in_sync = Drift(0, f"{stack} serves {want.release}, as Pulumi.{stack}.yaml names")
    served = serving_release(backend, stack, want)
    return admitted(stack, served, in_sync) if served is not None else in_sync


def runs_the_files_image(want: Desired, serving: Serving) -> bool:
    """The platform runs the image the file names (Pulumi's exported image): that is the release, even
    when this runner's store does not know it."""
    return want.image is not None and serving.image == want.image


def release_differs(stack: str, want: Desired, serving: Serving) -> str:
    """Why the stack does not serve the file's release, verified ("" when it does)."""
    assert want.release is not None
    if runs_the_files_image(want, serving):
        return ""
    if serving.uniform != want.release:  # a replica down, edited, mixed, or another release
        edited = " (uncommitted: commit it, then sync)" if gitops.uncommitted(desired.path_of(stack)) else ""
        differing = "; ".join(serving.differences(want.release)) or serving.describe()
        found = f"{stack} serves {serving.uniform}" if serving.uniform else differing
        return f"{stack} differs: Pulumi.{stack}.yaml names {want.release}{edited}; {found}"
    why = unverified(stack, want.release, serving)
    if why:
        return f"{stack} serves {want.release}, as Pulumi.{stack}.yaml names, but {why}: `codexops sync {stack}`"
    return ""


def serving_release(backend: Backend, stack: str, want: Desired) -> Release | None:
    """The release that serves, the file's: as the backend knows it, else as the file's image names it."""
    current = backend.current_release(stack)
    if current is not None and current.id == want.release:
        return current
    if want.release is None or want.image is None:
        return None
    digest = want.image.rpartition("@")[2] if "@" in want.image else ""
    return admission.named_release(want.release, digest, want.image)


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


def sync(
    backend: Backend,
    stack: str,
    *,
    confirm: Confirm,
    reports: Path,
    say: Progress,
) -> tuple[int, str, str]:
    """(exit code, verdict, message): make STACK serve its file's release, verified like any deploy."""
    gitops.require_committed(stack)
    want = desired.read(stack)
    if want.release is None:
        return 0, "NOTHING TO SYNC", f"{nothing_named(stack)}: nothing to sync"
    serving = backend.serving(stack)  # every replica asked: a stopped or mixed stack is not in sync
    # The desired state is the whole file and the program: settings that changed are applied too.
    if not release_differs(stack, want, serving) and not backend.drift(stack):
        return 0, "IN SYNC", f"{stack} serves {want.release}, as Pulumi.{stack}.yaml names: nothing to do"
    say(f"==> {stack} serves {serving.describe()}; Pulumi.{stack}.yaml names {want.release}")
    release = release_named(want, say, by_image=backend.deploys_by_image)
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

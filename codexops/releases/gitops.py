"""Git as the record of desired state: commits of a stack file, and its log read back.

A commit codexops makes changes one stack file only and carries trailers that history reads back:

    promote 0.1.0+0123456789ab to production (from staging)

    Stack: production
    Release: 0.1.0+0123456789ab
    Release-Digest: sha256:...
    Release-Commit: <the commit the release was built from>
    Evidence: sha256:<digest of the evidence>
    Actor: <who>

A commit made by hand (an edit, a `git revert`) has no trailers: its release is read from the file as
that commit left it, its author is who.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codexops.releases import desired, history
from codexops.releases.desired import Desired, StackFileError
from codexops.releases.model import Release

LOG_LIMIT = 200  # stack-file commits read back; enough for any rollback or history page


class GitError(RuntimeError):
    """A git command failed; the message says which and why."""


@dataclass(frozen=True)
class Change:
    """One commit of a stack file, newest first in `log`."""

    commit: str
    at: str  # committer date, ISO 8601
    author: str
    subject: str
    trailers: dict[str, str]
    state: Desired  # what the file named after this commit

    @property
    def actor(self) -> str:
        return self.trailers.get("Actor", self.author)

    @property
    def evidence(self) -> str:
        return self.trailers.get("Evidence", "")


COMMIT_LOCK = "codexops-commit.lock"  # in the repository's git folder


def _git_env() -> dict[str, str]:
    """The environment as it is now, with reads (`git status` above all) taking no optional lock: a
    status refreshing the index holds index.lock, and a deploy of another stack committing at that
    instant would fail on it."""
    return {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}


def git(repo: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60, env=_git_env())
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args[:3])} in {repo} failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return result.stdout


def git_bytes(repo: Path, *args: str) -> bytes:
    """A git command's output as bytes (a file's content at a commit)."""
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=60, env=_git_env())
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args[:3])} in {repo} failed: {result.stderr.decode(errors='replace')[-400:]}")
    return result.stdout


def is_repository(repo: Path) -> bool:
    return git(repo, "rev-parse", "--is-inside-work-tree", check=False).strip() == "true"


def message(subject: str, trailers: dict[str, str]) -> str:
    """Each trailer on one line: a value with a newline (an odd GITHUB_ACTOR) cannot add trailers."""
    lines = [f"{key}: {' '.join(value.split())}" for key, value in trailers.items() if value.strip()]
    return " ".join(subject.split()) + "\n\n" + "\n".join(lines) + "\n"


def release_trailers(stack: str, release: Release, **extra: str) -> dict[str, str]:
    """The trailers of a commit that makes STACK's file name `release`: which build, from which
    source commit (a fresh clone builds it from there), `extra` (e.g. Evidence), and who."""
    return {
        "Stack": stack,
        "Release": release.id,
        "Release-Digest": release.digest,
        "Release-Commit": release.commit,
        **extra,
        "Actor": history.actor(),
    }


def parse_trailers(body: str) -> dict[str, str]:
    """`Key: value` lines of the message's last paragraph."""
    paragraphs = [p for p in body.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found = {}
    for line in paragraphs[-1].splitlines():
        match = re.fullmatch(r"([A-Za-z][A-Za-z-]*): (.+)", line.strip())
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def uncommitted(path: Path, repo: Path | None = None) -> bool:
    """The file differs from what HEAD holds (edited, staged, or never committed)."""
    repo = repo or desired.repo_dir()
    return bool(git(repo, "status", "--porcelain", "--", str(path.resolve().relative_to(repo))).strip())


def require_committed(stack: str) -> None:
    """Desired state is what Git holds: refuse to act on a stack file with uncommitted edits."""
    path = desired.path_of(stack)
    if uncommitted(path):
        raise StackFileError(
            f"{path.name} has uncommitted changes: commit them (git commit {path.name}) or discard them "
            f"(git checkout {path.name}); the desired state is what Git holds"
        )


def commit_file(repo: Path, path: Path, text: str) -> str:
    """Commit only `path` (whatever else is staged stays staged); the new commit's id."""
    return commit_files(repo, [path], text)


def commit_files(repo: Path, paths: list[Path], text: str) -> str:
    """Commit only `paths` (new files are added; whatever else is staged stays staged); the new commit's
    id. Without a git identity configured (a CI runner), the actor commits as <actor>@users.noreply...."""
    relative = [str(path.resolve().relative_to(repo.resolve())) for path in paths]
    identity = []
    if not git(repo, "config", "user.name", check=False).strip():
        who = "-".join(history.actor().split()) or "codexops"
        identity = ["-c", f"user.name={who}", "-c", f"user.email={who}@users.noreply.github.com"]
    with one_commit_at_a_time(repo):
        git(repo, "add", "--", *relative)
        git(repo, *identity, "commit", "--quiet", "--no-verify", "-m", text, "--", *relative)
        return git(repo, "rev-parse", "HEAD").strip()


@contextmanager
def one_commit_at_a_time(repo: Path) -> Iterator[None]:
    """codexops commits in one repository one after another: deploys of two stacks side by side each
    commit their stack file, and the second `git add` would fail on the first one's index.lock."""
    folder = Path(git(repo, "rev-parse", "--absolute-git-dir").strip())
    with open(folder / COMMIT_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def log(stack: str, repo: Path | None = None, limit: int = LOG_LIMIT) -> list[Change]:
    """Every commit of the stack file, newest first, with what the file named after it."""
    repo = repo or desired.repo_dir()
    path = desired.path_of(stack, repo)
    relative = str(path.relative_to(repo))
    raw = git(repo, "log", f"-n{limit}", "--format=%H%x00%cI%x00%an%x00%B%x1e", "--", relative)
    changes = []
    for record in filter(str.strip, raw.split("\x1e")):
        commit, at, author, body = record.strip("\n").split("\x00", 3)
        shown = git(repo, "show", f"{commit}:{relative}", check=False)
        try:
            state = desired.parse(shown, f"{relative} at {commit[:12]}")
        except StackFileError:
            state = Desired(None, None)  # the file was deleted or broken at that commit
        changes.append(Change(commit, at, author, body.strip().splitlines()[0], parse_trailers(body), state))
    return changes


def previous_state(stack: str, repo: Path | None = None) -> Desired | None:
    """B's previous desired state: the newest commit of the file naming another release than it does now."""
    current = desired.read(stack, repo).release
    return next((c.state for c in log(stack, repo) if c.state.release not in (current, None)), None)


def release_commit(release: str, repo: Path | None = None) -> str | None:
    """The source commit of `release`, from the trailers of any stack file's commit that named it."""
    repo = repo or desired.repo_dir()
    raw = git(repo, "log", "--format=%B%x1e", "--fixed-strings", f"--grep=Release: {release}", "--", "Pulumi.*.yaml")
    for body in filter(str.strip, raw.split("\x1e")):
        trailers = parse_trailers(body)
        if trailers.get("Release") == release and trailers.get("Release-Commit"):
            return trailers["Release-Commit"]
    return None

"""A throw-away Git repository holding this checkout's stack files, for commands that commit desired
state (CODEX_REPO_DIR points at it, so no test ever commits into the real checkout)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from infra.spec import ROOT


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def stack_repo(destination: Path) -> Path:
    """A new repository with Pulumi.yaml and every Pulumi.<stack>.yaml of the checkout, committed."""
    destination.mkdir(parents=True, exist_ok=True)
    git(destination, "init", "--quiet", "--initial-branch=main")
    git(destination, "config", "user.name", "Test Operator")
    git(destination, "config", "user.email", "operator@example.test")
    for path in ROOT.glob("Pulumi*.yaml"):
        shutil.copy2(path, destination / path.name)
    git(destination, "add", ".")
    git(destination, "commit", "--quiet", "-m", "stack files")
    return destination


def clone_checkout(destination: Path) -> Path:
    """A clone of the checkout's HEAD (its source too: a release can be built from a commit of it)."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(destination)], check=True)
    git(destination, "config", "user.name", "Test Operator")
    git(destination, "config", "user.email", "operator@example.test")
    return destination

"""`codexops release build`: the service as a wheel with its locked dependencies, installed into an
immutable release directory named by version and content digest.

The version is the project version plus `git describe` (app/version.py), so builds of different
commits differ by version; the content digest covers the wheel's files, the locked requirements and any
baked-in environment, so the same source always gives the same release and a changed one never
overwrites an old release. uv works from its cache first (no package index needed once `make setup`
has run) and asks the index only for what the cache lacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app.version import describe_version
from codexops.releases import bytecode, manifest
from codexops.releases.bytecode import Compiled
from codexops.releases.model import MANIFEST, Release, read_release, release_id, store_root
from infra.spec import ROOT


class BuildError(RuntimeError):
    """The release could not be built; the message says why."""


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _run(command: list[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(command[:4])} failed: {(result.stderr or result.stdout)[-1500:]}")
    return result.stdout


def _run_uv(arguments: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """uv offline (its cache) first, online only when the cache lacks something; both failing says
    what is missing and what to run."""
    base = {**os.environ, **(env or {})}
    try:
        return _run([*_uv(), *arguments], cwd, env={**base, "UV_OFFLINE": "1"})
    except BuildError as offline:
        if base.get("UV_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise BuildError(f"{offline} (UV_OFFLINE is set: the package index was not asked)") from None
        try:
            return _run([*_uv(), *arguments], cwd, env=base)
        except BuildError as online:
            raise BuildError(
                f"uv {arguments[0]} failed from uv's cache and from the package index.\n"
                f"  from the cache: {_last_lines(str(offline))}\n  from the index: {_last_lines(str(online))}\n"
                "uv's cache lacks a package this build needs and the index cannot provide it: run "
                "`make setup` once with network access (it fills the cache), then build again."
            ) from None


def _last_lines(text: str, count: int = 4) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[-count:])


def git_commit(source: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True)
    if result.returncode != 0:
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=source, capture_output=True, text=True).stdout
    return result.stdout.strip() + ("-dirty" if dirty.strip() else "")


def wheel_digest(wheel: Path, requirements: str, env: dict[str, str]) -> str:
    """sha256 over every file of the wheel (by name, not by zip timestamps), the lock and the env."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + hashlib.sha256(archive.read(name)).digest())
    digest.update(requirements.encode())
    digest.update(json.dumps(env, sort_keys=True).encode())
    return "sha256:" + digest.hexdigest()


def schema_head(source: Path) -> str:
    """The alembic head of the source tree's migrations (the release migrates the database to it)."""
    code = "from app.storage.migrate import head_revision; print(head_revision())"
    return _run([sys.executable, "-c", code], cwd=source).strip()


def build_release(
    progress: Callable[[str], None],
    *,
    source: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Release:
    """Build (or find, when the same content was built before) the release of `source`."""
    source = source or ROOT
    env = dict(extra_env or {})
    version = describe_version(source)
    store = store_root()
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store, prefix=".build-") as scratch:
        work = Path(scratch)
        progress(f"  building the wheel of {source}")
        _run_uv(["build", "--wheel", "--out-dir", str(work / "dist"), str(source)], cwd=source)
        wheel = next((work / "dist").glob("*.whl"))
        requirements = _run_uv(
            [
                "export",
                "--frozen",
                "--no-default-groups",  # the service's own dependencies, what app/Dockerfile installs
                "--no-emit-project",
                "--no-hashes",
                "--format",
                "requirements-txt",
            ],
            cwd=source,
        )
        digest = wheel_digest(wheel, requirements, env)
        rid = release_id(version, digest)
        final = store / f"{version}-{digest.removeprefix('sha256:')[:12]}"
        if (final / MANIFEST).exists():
            found = release_differences(read_release(final))
            if not found:
                progress(f"  release {rid} exists already (same content, verified): kept as built")
                return read_release(final)
            aside = quarantine(final)
            progress(
                f"  release {rid} in the store differs from its manifest ({manifest.summary(found)}): "
                f"moved to {aside}, building it again"
            )
        staging = work / "release"
        staging.mkdir()
        (staging / "requirements.txt").write_text(requirements)
        shutil.copy2(wheel, staging / wheel.name)
        # Built in a scratch folder and moved into place whole: the virtualenv must be relocatable.
        progress("  installing the locked dependencies into the release's virtualenv")
        _run(
            [*_uv(), "venv", "--quiet", "--relocatable", "--python", sys.executable, str(staging / "venv")], cwd=source
        )
        python = str(staging / "venv" / "bin" / "python")
        # `uv sync` installs the locked wheels by their URLs, which uv's cache holds after `make setup`;
        # `uv pip install -r` would need the index's pages, which it does not. Same set as the export.
        # Copies, not uv's default hard links into its cache: a linked file is one inode shared with uv's
        # cache, the checkout's .venv and every other release, so one edit would change them all (the
        # rollback target too) and a rebuild would link the edited bytes back in under a fresh manifest.
        copies = {"UV_LINK_MODE": "copy"}
        _run_uv(
            ["sync", "--frozen", "--quiet", "--no-default-groups", "--no-install-project"],
            cwd=source,
            env={**copies, "UV_PROJECT_ENVIRONMENT": str(staging / "venv")},
        )
        _run_uv(
            ["pip", "install", "--quiet", "--no-deps", "--python", python, str(staging / wheel.name)],
            cwd=source,
            env=copies,
        )
        progress("  byte-compiling the release and importing app.main in its virtualenv")
        compiled, head = check_code(staging)
        progress(f"  byte-code: {compiled.reused} modules from the cache, {compiled.compiled} compiled")
        release = Release(
            id=rid,
            version=version,
            commit=git_commit(source),
            digest=digest,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            path=final,
            image=None,
            schema_head=head,
            env=env,
            manifest_digest=manifest.write(staging),  # every file, as built, before it can run once
        )
        (staging / MANIFEST).write_text(json.dumps(release.to_json(), indent=2) + "\n")
        manifest.make_read_only(staging, top=False)  # the folder itself keeps its write bit to be renamed
        try:
            os.rename(staging, final)  # atomic; a concurrent build of the same content wins once
        except OSError:
            if not (final / MANIFEST).exists():
                raise
            progress(f"  release {rid} was built concurrently: kept that one")
        final.chmod(0o555)
        return read_release(final)


def release_differences(release: Release) -> list[str]:
    """What no longer matches in a local release's folder ([] when every byte does): release.json,
    the wheel and requirements.txt against the id's digest, every other file against files.sha256."""
    if release.path is None:
        return []  # an image release: its registry digest is its content
    wheels = sorted(release.path.glob("*.whl"))
    requirements = release.path / "requirements.txt"
    if len(wheels) != 1 or not requirements.is_file():
        return ["the wheel or requirements.txt (missing)"]
    if wheel_digest(wheels[0], requirements.read_text(), release.env) != release.digest:
        return [f"release.json, {wheels[0].name} or requirements.txt (changed: they no longer give {release.digest})"]
    return manifest.differences(release.path, release.manifest_digest)


def quarantine(folder: Path) -> Path:
    """Move a tampered release out of the store's names (kept for inspection), so it can be built again."""
    aside = folder.parent / ".tampered" / f"{folder.name}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    aside.parent.mkdir(exist_ok=True)
    folder.chmod(0o755)  # renaming a folder into another one needs its own write bit
    os.rename(folder, aside)
    return aside


def check_code(release: Path) -> tuple[Compiled, str]:
    """Byte-compile every module of the release's virtualenv (hash-checked .pyc, valid wherever the folder
    is copied; codexops.releases.bytecode) and import app.main with it: a syntax error or a broken import
    is refused here, naming the file and line, before the release has a name. Also the release's own
    alembic head, read by the same interpreter (one start fewer per build)."""
    try:
        compiled = bytecode.compile_tree(release / "venv")
    except bytecode.CompileError as error:
        raise BuildError(f"the source does not compile: {error}") from None
    # From the release's folder, so the checkout's own code cannot be imported instead.
    python = str(release / "venv" / "bin" / "python")
    code = "import app.main; from app.storage.migrate import head_revision; print(head_revision())"
    imported = subprocess.run([python, "-c", code], cwd=release, capture_output=True, text=True, timeout=120)
    if imported.returncode != 0:
        raise BuildError(f"`import app.main` fails in the release's virtualenv: {_last_lines(imported.stderr, 6)}")
    return compiled, imported.stdout.strip()


def _docker_running() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, timeout=20)
    return probe.returncode == 0


def _record(version: str, digest: str, image: str, source: Path) -> Release:
    directory = store_root() / f"{version}-{digest.removeprefix('sha256:')[:12]}"
    if (directory / MANIFEST).exists():
        return read_release(directory)
    release = Release(
        id=release_id(version, digest),
        version=version,
        commit=git_commit(source),
        digest=digest,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        path=None,
        image=image,
        schema_head=schema_head(source),
    )
    directory.mkdir(parents=True)
    (directory / MANIFEST).write_text(json.dumps(release.to_json(), indent=2) + "\n")
    return read_release(directory)


def record_image(reference: str, progress: Callable[[str], None], *, source: Path | None = None) -> Release:
    """A release for an image built and pushed elsewhere (CI), named by its registry digest."""
    source = source or ROOT
    match = re.fullmatch(r"[^@\s]+@(sha256:[0-9a-f]{64})", reference)
    if not match:
        raise BuildError(f"--image {reference!r}: give an image reference by digest, REF@sha256:<64 hex>")
    version = describe_version(source)
    progress(f"  recording image {reference} (not built here)")
    return _record(version, match.group(1), reference, source)


def build_image(progress: Callable[[str], None], *, source: Path | None = None) -> Release:
    """The release for Docker and Kubernetes: the image of app/Dockerfile, referenced by its digest
    (the image ID; a registry's RepoDigest once pushed). Needs a running Docker daemon."""
    source = source or ROOT
    if not _docker_running():
        raise BuildError(
            "an image release needs Docker, and no Docker daemon answers here (`docker version`). "
            "Build the local release instead (`codexops release build`), or run this where Docker runs."
        )
    version = describe_version(source)
    tag = f"living-codex:{version.replace('+', '-')}"  # a Docker tag has no "+"
    progress(f"  docker build -f app/Dockerfile -t {tag} {source}")
    _run(
        ["docker", "build", "-f", str(source / "app" / "Dockerfile"), "-t", tag, str(source)], cwd=source, timeout=1800
    )
    digest = _run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], cwd=source).strip()
    return _record(version, digest, f"living-codex@{digest}", source)

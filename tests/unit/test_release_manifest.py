"""The release manifest (files.sha256): every file's sha256, the manifest's own digest, what differs."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from codexops.releases import launch, manifest


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "release"
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "lib" / "app").mkdir(parents=True)
    (root / "venv" / "lib" / "app" / "main.py").write_text("print('built')\n")
    (root / "venv" / "bin" / "codexops").write_text('#!/bin/sh\necho serving "$@"\n')
    (root / "venv" / "bin" / "codexops").chmod(0o755)
    (root / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    (root / "release.json").write_text("{}")  # checked against the release id, not listed
    return root


def test_the_manifest_lists_every_file_and_a_symlinks_target(folder: Path) -> None:
    digest = manifest.write(folder)
    listed = manifest.parse((folder / manifest.MANIFEST_FILE).read_text())
    assert sorted(listed) == ["venv/bin/codexops", "venv/bin/python", "venv/lib/app/main.py"]
    assert listed["venv/bin/python"] == "symlink:/usr/bin/python3"
    assert digest == manifest.digest_of((folder / manifest.MANIFEST_FILE).read_text())
    assert manifest.differences(folder, digest) == []
    checked = subprocess.run(  # the regular files' lines are sha256sum's own format
        ["sha256sum", "-c", "--quiet", "--ignore-missing", manifest.MANIFEST_FILE], cwd=folder, capture_output=True
    )
    assert checked.returncode == 0, checked.stdout


def test_an_edited_added_or_removed_file_is_named(folder: Path) -> None:
    digest = manifest.write(folder)
    (folder / "venv" / "lib" / "app" / "main.py").write_text("print('injected')\n")
    (folder / "venv" / "lib" / "evil.pth").write_text("import os\n")
    (folder / "venv" / "bin" / "codexops").unlink()
    assert manifest.differences(folder, digest) == [
        "venv/lib/app/main.py (changed)",
        "venv/lib/evil.pth (added)",
        "venv/bin/codexops (missing)",
    ]


def test_a_relinked_symlink_and_an_edited_manifest_are_found(folder: Path) -> None:
    digest = manifest.write(folder)
    (folder / "venv" / "bin" / "python").unlink()
    (folder / "venv" / "bin" / "python").symlink_to("/tmp/python")
    assert manifest.differences(folder, digest) == ["venv/bin/python (changed)"]
    manifest.write(folder)  # the attacker rewrites the manifest to match: its digest is not the one built
    assert manifest.differences(folder, digest) == ["files.sha256 (changed: the manifest itself)"]
    (folder / manifest.MANIFEST_FILE).unlink()
    assert manifest.differences(folder, digest) == ["files.sha256 (missing: built before release manifests)"]


def test_read_only_keeps_the_execute_bit_and_writable_undoes_the_folders(folder: Path) -> None:
    manifest.write(folder)
    manifest.make_read_only(folder)
    mode = {p: stat.S_IMODE(p.lstat().st_mode) for p in folder.rglob("*") if not p.is_symlink()}
    assert mode[folder / "venv" / "bin" / "codexops"] == 0o555
    assert mode[folder / "venv" / "lib" / "app" / "main.py"] == 0o444
    assert mode[folder / "venv"] == 0o555 and stat.S_IMODE(folder.stat().st_mode) == 0o555
    manifest.make_writable(folder)
    assert stat.S_IMODE((folder / "venv" / "lib").stat().st_mode) == 0o755


def test_summary_names_five_and_counts_the_rest() -> None:
    found = [f"f{i} (changed)" for i in range(8)]
    assert manifest.summary(found) == "f0 (changed), f1 (changed), f2 (changed), f3 (changed), f4 (changed) and 3 more"


def test_the_launcher_refuses_a_tampered_folder_and_execs_a_verified_one(folder: Path) -> None:
    digest = manifest.write(folder)
    command = [sys.executable, "-I", "-m", "codexops.releases.launch", str(folder), digest]
    served = subprocess.run([*command, "serve", "--port", "1"], capture_output=True, text=True, timeout=30)
    assert served.returncode == 0 and served.stdout.strip() == "serving serve --port 1", served.stderr
    (folder / "venv" / "lib" / "app" / "main.py").write_text("print('injected')\n")
    refused = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert refused.returncode == launch.REFUSED and "serving" not in refused.stdout
    assert "refused to start" in refused.stderr and "venv/lib/app/main.py (changed)" in refused.stderr
    assert "rebuild the release" in refused.stderr and "Traceback" not in refused.stderr

"""`rollback.sh --version=V` never picks one of several builds of V silently: it refuses, naming them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.fake_backend import make_release

ROOT = Path(__file__).resolve().parents[2]


def test_a_version_built_twice_is_refused_with_its_builds_listed(tmp_path: Path) -> None:
    store = tmp_path / "releases"
    one, two = make_release(store, "0.1.0", "a"), make_release(store, "0.1.0", "b")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CODEX_RELEASES_DIR": str(store),
        "CODEX_STACKS_DIR": str(tmp_path / "stacks"),
        "CODEX_BACKEND": "local",
    }
    result = subprocess.run(
        [str(ROOT / "runbooks" / "rollback.sh"), "--version=0.1.0", "--yes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused: '0.1.0' matches 2 builds" in result.stderr
    assert one.id in result.stderr and two.id in result.stderr
    assert "ROLLED BACK" not in result.stdout

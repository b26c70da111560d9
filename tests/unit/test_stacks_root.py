"""One stacks root: a local stack's folder and its history are below the same CODEX_STACKS_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexops import localenv
from codexops.paths import local_root, stacks_root
from codexops.releases import history


def test_the_local_stack_and_its_history_share_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_STACKS_DIR", raising=False)
    assert stacks_root() == local_root() / "stacks"
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path))  # read at each call, not at import
    assert stacks_root() == tmp_path
    assert localenv.local_stack("staging").runtime == history.stack_dir("staging") == tmp_path / "staging"

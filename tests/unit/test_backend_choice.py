"""One rule chooses the backend, for the release commands and for the gate's targets alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexops.backend_choice import BackendUnavailable, backend_name
from codexops.releases.local_backend import LocalBackend
from codexops.releases.selection import select_backend
from codexops.targets import TargetError, resolve_target


@pytest.fixture(autouse=True)
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))  # a local target reads its stack's state


@pytest.fixture
def pulumi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `pulumi` on PATH (never run: the choice only looks for it)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pulumi").write_text("#!/bin/sh\nexit 99\n")
    (tmp_path / "bin" / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.delenv("CODEX_BACKEND", raising=False)


@pytest.mark.usefixtures("pulumi_on_path")
def test_local_wins_then_the_variable_then_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend_name() == "pulumi"  # nothing said, the CLI is on PATH
    assert backend_name(local=True) == "local"
    monkeypatch.setenv("CODEX_BACKEND", " Local ")  # any case, spaces ignored
    assert backend_name() == "local"
    monkeypatch.setenv("CODEX_BACKEND", "pulumi")
    assert backend_name(local=True) == "local"
    monkeypatch.delenv("CODEX_BACKEND")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert backend_name() == "local"  # no CLI: local


def test_an_unknown_backend_is_refused_by_both_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_BACKEND", "terraform")
    with pytest.raises(BackendUnavailable, match="CODEX_BACKEND='terraform': use one of local, pulumi"):
        select_backend(local=False)
    with pytest.raises(TargetError, match="CODEX_BACKEND='terraform'"):  # never a silent fallback
        resolve_target("staging")
    assert resolve_target("staging", local=True).kind == "local"  # --local wins over it, for both
    assert isinstance(select_backend(local=True), LocalBackend)


@pytest.mark.usefixtures("pulumi_on_path")
def test_the_gate_and_the_release_commands_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("", " local ", "PULUMI"):  # the same answer, spaces and case included
        monkeypatch.setenv("CODEX_BACKEND", value)
        local = backend_name() == "local"
        assert (resolve_target("production").kind == "local") == local, value
        assert (select_backend(local=False).name == "local") == local, value

"""One change per stack at a time: a second one is refused and told who holds the stack."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.synchronize import Event as SyncEvent
from pathlib import Path

import pytest

from codexops.releases.lock import StackBusy, stack_lock


@pytest.fixture(autouse=True)
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("GITHUB_ACTOR", "release-bot")
    return tmp_path / "stacks"


def _hold(ready: SyncEvent, release: SyncEvent) -> None:
    with stack_lock("production", "promote from staging"):
        ready.set()
        release.wait(30)


def test_a_second_change_is_refused_with_the_holder_named() -> None:
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StackBusy) as refused, stack_lock("production", "rollback"):
            pass
        message = str(refused.value)
        assert "promote from staging" in message and "release-bot" in message and f"pid {holder.pid}" in message
        with stack_lock("staging", "deploy"):  # another stack is free
            pass
    finally:
        release.set()
        holder.join(10)
    with stack_lock("production", "rollback"):  # free again once the holder is done
        pass


def test_a_crashed_holder_does_not_keep_the_stack() -> None:
    context = multiprocessing.get_context("fork")
    ready, never = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(ready, never))
    holder.start()
    assert ready.wait(10)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    began = time.monotonic()
    with stack_lock("production", "deploy"):
        assert time.monotonic() - began < 1

"""Full gates on one machine take their load one at a time when CODEX_GATE_LOCK names a file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from codexops.gate import one_full_load_at_a_time


def test_a_second_full_gate_waits_for_the_first_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_GATE_LOCK", str(tmp_path / "lock"))
    said: list[str] = []
    order: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with one_full_load_at_a_time("gate", said.append):
            inside.set()
            deadline = time.monotonic() + 30  # held until the second says it waits, however late it comes
            while not any("waiting for another full gate" in line for line in said) and time.monotonic() < deadline:
                time.sleep(0.02)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    with one_full_load_at_a_time("gate", said.append):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert any("waiting for another full gate" in line for line in said)


def test_smoke_loads_and_unset_lock_do_not_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_GATE_LOCK", str(tmp_path / "lock"))
    with one_full_load_at_a_time("gate", print), one_full_load_at_a_time("smoke", print):
        pass  # a smoke inside a held full-gate lock does not block
    monkeypatch.delenv("CODEX_GATE_LOCK")
    with one_full_load_at_a_time("gate", print), one_full_load_at_a_time("gate", print):
        pass

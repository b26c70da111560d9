"""The gate's checklist runs with the pytest plugins it names and this project's pytest options ignored:
every installed plugin autoloaded (Locust's, schemathesis's, hypothesis's) cost each checklist 2.5 s of CPU."""

from __future__ import annotations

from pathlib import Path

from codexops.gate import run_checklist
from codexops.targets import resolve_target
from tests.support.servers import free_port


def test_the_checklist_runs_every_check_with_its_named_plugins_only(tmp_path: Path) -> None:
    target = resolve_target(f"http://127.0.0.1:{free_port()}")  # nothing listens: each check fails fast
    step = run_checklist(target.save(tmp_path / "target.json"), tmp_path, timeout=120)
    log = (tmp_path / "checklist.log").read_text()
    assert step.figures["tests"] >= 10, log  # collected and run: the fixtures it needs were there
    assert step.status == "fail" and step.figures["failed"] > 0  # against a closed port, as it must
    assert "Unknown config option" not in log and "slowest" not in log, log  # not this project's options

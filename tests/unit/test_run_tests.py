"""make test's shard runner (scripts/run_tests.py): every fixed-port module in exactly one isolated
shard, a signal or a stack left running fails the shard, progress read from pytest's lines."""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codexops import localenv
from infra.spec import ROOT, available_stacks


def _runner() -> Any:
    spec = importlib.util.spec_from_file_location("run_tests", ROOT / "scripts" / "run_tests.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_tests"] = module  # dataclasses resolve the module's annotations through it
    spec.loader.exec_module(module)
    return module


run_tests = _runner()


def _modules(shard: Any) -> set[str]:
    """The test modules a shard runs, as pytest would find them: under its paths, not under an --ignore."""
    found = set()
    for path in shard.paths:
        where = ROOT / path
        candidates = (
            [where] if where.is_file() else [c for pattern in run_tests.TEST_FILES for c in where.rglob(pattern)]
        )
        found |= {str(c.relative_to(ROOT)) for c in candidates}
    ignored = tuple(shard.ignore)
    return {m for m in found if not any(m == i or m.startswith(i + "/") for i in ignored)}


def test_every_module_runs_in_exactly_one_shard_and_fixed_port_ones_only_in_isolated_shards() -> None:
    shards = run_tests.all_shards()
    every = {str(p.relative_to(ROOT)) for pattern in run_tests.TEST_FILES for p in (ROOT / "tests").rglob(pattern)}
    runs = [(shard, _modules(shard)) for shard in shards]
    counted = [module for _, modules in runs for module in modules]
    assert sorted(counted) == sorted(every), "a module runs twice or nowhere"
    fixed = {m for m in every if m.startswith(tuple(d + "/" for d in run_tests.FIXED_PORT_DIRS))}
    assert all(shard.isolated == bool(modules & fixed) for shard, modules in runs)
    assert all(modules <= fixed for shard, modules in runs if shard.isolated)
    rest = next(modules for shard, modules in runs if shard.name == "rest")
    assert set(run_tests.MOVED_TO_REST) <= rest  # a renamed module would run nowhere


def test_each_stack_shard_gets_its_own_port_range_stacks_and_reports_and_rest_is_niced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEX_PORT_BASE", raising=False)
    shards = run_tests.all_shards()
    for shard in shards:
        shard.folder = tmp_path / shard.name
    free = [shard for shard in shards if not shard.isolated]
    isolated = [shard for shard in shards if shard.isolated]
    assert len(free) >= 2 and all(run_tests.command(shard)[:3] == ["nice", "-n", "10"] for shard in free)
    assert all("CODEX_PORT_BASE" not in run_tests.shard_env(shard) for shard in free)
    stack_shard = run_tests.command(isolated[0])
    assert stack_shard[0] == sys.executable and f"--basetemp={tmp_path / isolated[0].name / 'tmp'}" in stack_shard
    envs = [run_tests.shard_env(shard) for shard in isolated]
    assert (
        len({env["CODEX_STACKS_DIR"] for env in envs}) == len({env["CODEX_REPORTS_DIR"] for env in envs}) == len(envs)
    )
    bases = sorted(int(env["CODEX_PORT_BASE"]) for env in envs)
    assert bases[0] >= 1024 and bases[-1] + run_tests.SHARD_PORTS <= 32768  # below the ephemeral ports
    assert localenv.PORT_SLOT * len(available_stacks()) <= run_tests.SHARD_PORTS  # no two shards' stacks meet
    assert all(b - a == run_tests.SHARD_PORTS for a, b in itertools.pairwise(bases))
    monkeypatch.setenv("CODEX_PORT_BASE", "26000")  # a second run beside the first
    assert int(run_tests.shard_env(isolated[0])["CODEX_PORT_BASE"]) == 26000


def _started(tmp_path: Path) -> Any:
    shard = run_tests.Shard("faults", ("tests/resilience/test_faults.py",), folder=tmp_path / "faults")
    shard.folder.mkdir()
    shard.log.write_text("collected 3 items\n\ntests/resilience/test_faults.py .F\n")
    shard.began = time.monotonic()
    return shard


def test_progress_counts_finished_tests_and_failures(tmp_path: Path) -> None:
    assert run_tests.progress(_started(tmp_path)) == "2/3 (1 failed)"


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (1, 1), (5, 5), (-9, 137), (-15, 143)])
def test_the_exit_code_of_a_shard_is_pytests_or_128_plus_the_signal(tmp_path: Path, code: int, expected: int) -> None:
    shard = _started(tmp_path)
    run_tests.finish(shard, code)
    assert shard.code == expected


def test_a_shard_that_leaves_a_stack_running_fails_and_the_stack_is_stopped(tmp_path: Path) -> None:
    shard = _started(tmp_path)
    stack = shard.folder / "stacks" / "staging"
    stack.mkdir(parents=True)
    # A stand-in for a forgotten supervisord: the runner checks the name in the process's command line.
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "supervisord"])
    (stack / "supervisord.pid").write_text(f"{daemon.pid}\n")
    cmdline = Path(f"/proc/{daemon.pid}/cmdline")
    began = time.monotonic()  # the runner recognises it by its command line: wait until the kernel shows it
    while b"supervisord" not in cmdline.read_bytes() and time.monotonic() - began < 30:
        time.sleep(0.05)
    try:
        run_tests.finish(shard, 0)
        assert daemon.wait(60) != 0  # stopped by SIGTERM (60 s: a loaded machine starts Python slowly)
    finally:
        daemon.kill()
    assert shard.code == 1 and str(stack) in shard.note


def test_a_pid_file_of_another_program_is_left_alone(tmp_path: Path) -> None:
    shard = _started(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (shard.folder / "supervisord.pid").write_text(f"{other.pid}\n")
    try:
        run_tests.finish(shard, 0)
        assert other.poll() is None and shard.code == 0
    finally:
        other.kill()


def test_at_most_max_isolated_stack_shards_run_at_once() -> None:
    stacks = [run_tests.Shard(f"s{i}", ("x",)) for i in range(run_tests.MAX_ISOLATED)]
    rest = run_tests.Shard("rest", ("tests",), isolated=False)
    waiting = run_tests.Shard("next", ("y",))
    assert run_tests.may_start(waiting, stacks[:-1])
    assert not run_tests.may_start(waiting, stacks)  # queued until one ends
    assert run_tests.may_start(rest, stacks)  # rest uses free ports: always


CHILDS_SIGINT = "import signal; print('ignored' if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else 'heard')"


def _sigint_a_shard_gets(hear: bool) -> str:
    """What SIGINT is in a process the runner starts, when the runner itself began with SIGINT ignored."""
    script = (
        "import importlib.util, signal, subprocess, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"spec = importlib.util.spec_from_file_location('run_tests', {str(ROOT / 'scripts' / 'run_tests.py')!r})\n"
        "runner = sys.modules['run_tests'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(runner)\n"
        f"if {hear}: runner.hear_interrupts()\n"
        f"subprocess.run([sys.executable, '-c', {CHILDS_SIGINT!r}])\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True).stdout


def test_a_runner_started_with_sigint_ignored_gives_its_shards_the_default() -> None:
    assert _sigint_a_shard_gets(hear=False) == "ignored\n"  # what a background job of a shell passes on
    assert _sigint_a_shard_gets(hear=True) == "heard\n"

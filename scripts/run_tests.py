"""`make test`'s pytest: the suite in shards that run side by side, each with its own log.

Most of the suite's wall-clock time is waiting: fixed-length loads, alert `for:` windows, replicas
draining during rolling deploys. The modules that start local stacks get, per shard, a port range of
their own (CODEX_PORT_BASE: codexops.localenv.stack_ports gives each stack a slot of it) and their own
stacks and reports folders, so they run side by side on the host's loopback, no root, no namespaces;
the rest of the suite uses free ports and runs beside them in four processes (`integration`,
`processes`, `infra`, `rest`), niced, so that the loads the gates judge keep their CPU.

Usage: scripts/run_tests.py [--sequential] [--only SHARD ...]   (plain `pytest` runs the suite in one process)
Exit status: the first failing shard's (pytest's: 1 failures, 5 no test collected, ...; 128+N when a
signal N ended it), else 0. A shard that leaves a local stack running fails too (the stack is stopped).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT = 30.0  # seconds between progress lines
TEARDOWN_GRACE = 180.0  # seconds an interrupted shard gets to stop its stacks
# Stack shards at once: each runs real stacks, release builds and loads, and 2 cores are the limit. Six
# once made every long shard take twice as long (2026-12-07, while the stacks' supervisord busy-looped);
# with five, the sixth long shard (about 330 s) started when the first ended and finished last (657 s,
# efe0bea, 2026-12-08), the machine idle for most of its last minute. CODEX_TEST_SHARDS overrides it.
MAX_ISOLATED = int(os.environ.get("CODEX_TEST_SHARDS") or 6)
FIXED_PORT_DIRS = ("tests/releases", "tests/resilience")  # every module here must be in an isolated shard
TEST_FILES = ("test_*.py", "*_test.py")  # pytest's default python_files: what a folder's modules are
# The rest of the suite (free ports) in four processes, since one pytest process uses one core: alone on
# a quiet machine it took 378 s, of which tests/integration 232 s (2026-12-07). Niced, they make little
# progress while the stack shards run and finish last: in two (integration, rest) they ended 671 and 654 s
# into a run whose stack shards had ended by 477 s (aabd6ff, 2026-12-08). `rest` runs what these leave.
# `processes` takes from integration the modules that start real servers and wait for them to drain (56 s
# of its 182 s alone, 2026-12-08): integration had ended last, 35-100 s after infra and rest, one core idle.
FREE_PORT_SHARDS = {
    "integration": ("tests/integration", "tests/attacks"),
    "processes": (
        "tests/integration/test_server_process.py",
        "tests/integration/test_supervisor_rpc.py",
        "tests/integration/test_shutdown_keepalive.py",
    ),
    "infra": ("tests/infra", "tests/policies"),
}
# Modules of those folders that `rest` runs instead, to balance the shards: with the release builds in it,
# `integration` ended 128 s after `rest` (a clean-clone run at 2389915).
# Not kept: the chaos/memory and supervisor modules in `rest` too. Runs with them there (5fa4a07, 132de9c)
# took 12 min each, and `integration` still ended last. But a run without them (a535a95) took 11 min 54 s,
# so the machine was slower then; the move showed no gain, not a loss.
MOVED_TO_REST = ("tests/integration/test_release_build.py",)
# Stack shard i's CODEX_PORT_BASE: first + SHARD_PORTS * i, first being CODEX_PORT_BASE if set (two runs
# side by side) else FIRST_PORT_BASE, below Linux's ephemeral ports (32768+, where the free-port tests
# and client connections land). SHARD_PORTS: at least a stack slot (localenv.PORT_SLOT) per stack.
FIRST_PORT_BASE, SHARD_PORTS = 11000, 1000
SKIPPED_DIRS = frozenset({"venv", ".venv", ".git", "__pycache__"})  # no stack's supervisord.pid lives in these
OUTCOMES = re.compile(r"^(?:tests/\S+ )?([.FEsxX]+)\s*(?:\[\s*\d+%\])?$", re.MULTILINE)


@dataclass
class Shard:
    name: str
    paths: tuple[str, ...]
    isolated: bool = True  # starts local stacks: its own port range, stacks and reports folders
    ignore: tuple[str, ...] = ()
    folder: Path = Path()
    began: float = 0.0
    took: float = 0.0
    code: int | None = None
    note: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.folder.with_suffix(".log")

    def text(self) -> str:
        if not self.folder.name:  # not started
            return ""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def fixed_port_shards() -> list[Shard]:
    """Started in this order, MAX_ISOLATED at a time, the longest first (by their wall time in a loaded
    run): a module whose fixture builds its own releases and stacks is a shard of its own, so the long
    ones run side by side instead of one after another."""
    return [
        Shard("killed", ("tests/releases/test_killed_promotions.py",)),
        Shard("gitops-changes", ("tests/releases/test_gitops_changes.py",)),
        Shard("promotion", ("tests/releases/test_promotion.py",)),
        Shard("canary", ("tests/releases/test_canary.py",)),
        Shard("gitops", ("tests/releases/test_gitops.py",)),
        Shard("stacks", ("tests/resilience/test_stacks_and_deploy.py",)),
        Shard(
            "faults",
            (
                "tests/resilience/test_faults.py",
                "tests/resilience/test_local_env.py",
                "tests/resilience/test_local_secrets.py",
            ),
        ),
        Shard("bad-releases", ("tests/resilience/test_bad_releases.py",)),
        Shard("integrity", ("tests/releases/test_integrity.py",)),
        Shard("evidence", ("tests/releases/test_evidence_gate.py",)),
    ]


def all_shards() -> list[Shard]:
    """The free-port shards (`rest` last of them) and the fixed-port shards; refuses a fixed-port module that
    no shard (or two) would run."""
    isolated = fixed_port_shards()
    listed = [path for shard in isolated for path in shard.paths]
    twice = sorted({path for path in listed if listed.count(path) > 1})
    if twice:
        sys.exit(f"error: {', '.join(twice)} is in two shards of scripts/run_tests.py")
    modules = {
        str(path.relative_to(ROOT))
        for folder in FIXED_PORT_DIRS
        for pattern in TEST_FILES
        for path in (ROOT / folder).rglob(pattern)
    }
    unassigned = sorted(modules - set(listed))
    if unassigned:
        sys.exit(f"error: {', '.join(unassigned)} may use fixed ports: add it to a shard in scripts/run_tests.py")
    free = [
        Shard(name, paths, isolated=False, ignore=(*MOVED_TO_REST, *_claimed_inside(paths, name)))
        for name, paths in FREE_PORT_SHARDS.items()
    ]
    taken = [path for shard in free for path in shard.paths]
    rest = Shard("rest", ("tests",), isolated=False, ignore=(*FIXED_PORT_DIRS, *_all_but_moved(taken)))
    return [*free, rest, *isolated]


def _claimed_inside(folders: tuple[str, ...], name: str) -> list[str]:
    """The modules another free-port shard names that lie in one of `folders`: this shard skips them."""
    claimed = [path for other, paths in FREE_PORT_SHARDS.items() if other != name for path in paths]
    return [path for path in claimed if any(path.startswith(folder + "/") for folder in folders)]


def _all_but_moved(folders: list[str]) -> list[str]:
    """Each entry of `folders` but the modules moved to `rest` (pytest drops an explicit module that the
    `tests` argument already covers, so `rest` ignores the other entries one by one instead)."""
    ignored = []
    for folder in folders:
        inside = [path for path in MOVED_TO_REST if path.startswith(folder + "/")]
        if not inside:
            ignored.append(folder)
            continue
        for entry in sorted((ROOT / folder).iterdir()):
            relative = str(entry.relative_to(ROOT))
            if relative not in inside and entry.name not in ("__init__.py", "conftest.py", "__pycache__"):
                ignored.append(relative)
    return ignored


def command(shard: Shard) -> list[str]:
    pytest = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",  # shards side by side would overwrite each other's cache
        f"--basetemp={shard.folder / 'tmp'}",
        "--durations=30",  # each shard ends with its 30 slowest: where the wall time goes
        *shard.paths,
        *(f"--ignore={path}" for path in shard.ignore),
    ]
    return pytest if shard.isolated else ["nice", "-n", "10", *pytest]


def shard_env(shard: Shard) -> dict[str, str]:
    """A stack shard's own stacks, reports and port range, whatever the checkout's .local holds."""
    # Full gates in every shard take their load one at a time (codexops.gate.one_full_load_at_a_time).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CODEX_GATE_LOCK": str(shard.folder.parent / "full-gate.lock")}
    if shard.isolated:
        names = [other.name for other in fixed_port_shards()]  # the same range with or without --only
        first = int(os.environ.get("CODEX_PORT_BASE") or FIRST_PORT_BASE)
        env["CODEX_STACKS_DIR"] = str(shard.folder / "stacks")
        env["CODEX_REPORTS_DIR"] = str(shard.folder / "reports")
        env["CODEX_PORT_BASE"] = str(first + SHARD_PORTS * names.index(shard.name))
    return env


def start(shard: Shard, run_dir: Path) -> None:
    shard.folder = run_dir / shard.name
    shard.folder.mkdir()
    shard.began = time.monotonic()
    with shard.log.open("wb") as log:
        shard.process = subprocess.Popen(
            command(shard), cwd=ROOT, env=shard_env(shard), stdout=log, stderr=subprocess.STDOUT
        )
    print(f"==> shard {shard.name}: {' '.join(shard.paths)}", flush=True)


def progress(shard: Shard) -> str:
    """'done/collected' from pytest's progress lines (a test's letter appears when it ends)."""
    text = shard.text()
    collected = re.search(r"collected (\d+) items?", text)
    if not collected:
        return "collecting"
    lines = OUTCOMES.findall(text)
    failed = sum(line.count("F") + line.count("E") for line in lines)
    done = sum(len(line) for line in lines)
    return f"{done}/{collected.group(1)}" + (f" ({failed} failed)" if failed else "")


def stop_leftover_stacks(shard: Shard) -> list[str]:
    """Stop any supervisord (a local stack) the shard left running; the pid files it found."""
    left = []
    for pid_file in _pid_files(shard.folder):
        try:
            pid = int(pid_file.read_text().strip())
            if "supervisord" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                continue
            os.kill(pid, signal.SIGTERM)  # supervisord stops its programs (apps drain), then exits
        except (OSError, ValueError):
            continue
        left.append(str(pid_file.parent))
        for _ in range(90):
            if not _alive(pid):
                break
            time.sleep(1)
    return left


def _pid_files(folder: Path) -> list[Path]:
    """Every supervisord.pid under folder, not looking inside virtualenvs or Git folders: a shard's
    release stores hold thousands of files each (over one run's kept shard folders: 0.06 s of CPU against
    1.03 s for pathlib's rglob; the runner used 15 s of CPU in a run before, 2026-12-08)."""
    found = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        if "supervisord.pid" in names:
            found.append(Path(here) / "supervisord.pid")
    return found


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def finish(shard: Shard, code: int) -> None:
    shard.took = time.monotonic() - shard.began
    shard.code = code if code >= 0 else 128 - code  # killed by signal N: 128+N, as a shell reports it
    left = stop_leftover_stacks(shard) if shard.isolated else []
    if left:
        shard.note = f"left local stacks running (stopped now): {', '.join(left)}"
        shard.code = shard.code or 1
    print(f"\n{'=' * 30} shard {shard.name}: exit {shard.code} in {shard.took:.0f} s {'=' * 30}", flush=True)
    print(shard.text() + (f"\nERROR: {shard.note}" if shard.note else ""), flush=True)


def summary_line(shard: Shard) -> str:
    lines = [line for line in shard.text().splitlines() if " in " in line and "=" in line]
    return shard.note or (lines[-1].strip("= ") if lines else "no summary (see its log above)")


def may_start(shard: Shard, running: list[Shard]) -> bool:
    """Whether `shard` may start beside `running`: at most MAX_ISOLATED stack shards (CPU, not ports)."""
    return not shard.isolated or sum(other.isolated for other in running) < MAX_ISOLATED


def schedule(shards: list[Shard], run_dir: Path, sequential: bool) -> None:
    """Start what may start, poll, print progress, until every shard has ended."""
    waiting, running = list(shards), list[Shard]()
    began = last_beat = time.monotonic()
    while waiting or running:
        for shard in list(waiting):
            if sequential and running:
                break
            if not may_start(shard, running):
                continue
            waiting.remove(shard)
            start(shard, run_dir)
            running.append(shard)
        time.sleep(1)
        for shard in list(running):
            assert shard.process is not None
            code = shard.process.poll()
            if code is not None:
                running.remove(shard)
                finish(shard, code)
        if running and time.monotonic() - last_beat >= HEARTBEAT:
            last_beat = time.monotonic()
            states = ", ".join(f"{shard.name} {progress(shard)}" for shard in running)
            print(f"    [{time.monotonic() - began:4.0f} s] running: {states}", flush=True)


def stop_all(shards: list[Shard]) -> None:
    """Interrupt the running shards as Ctrl-C does (pytest then tears its fixtures down, stopping its
    stacks), wait for them, kill what is still there after TEARDOWN_GRACE."""
    running = [s for s in shards if s.process is not None and s.process.poll() is None]
    for shard in running:
        assert shard.process is not None
        shard.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + TEARDOWN_GRACE
    for shard in running:
        assert shard.process is not None
        try:
            shard.process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            shard.process.kill()
        if shard.isolated:
            stop_leftover_stacks(shard)


def keep_for_ci(shards: list[Shard], run_dir: Path) -> Path:
    """The failing shards' logs and gate reports under reports/ (what CI uploads when a job fails)."""
    kept = ROOT / "reports" / f"test-run-{time.strftime('%Y%m%dT%H%M%S')}"
    for shard in shards:
        if shard.code:
            kept.mkdir(parents=True, exist_ok=True)
            if shard.log.exists():
                shutil.copy2(shard.log, kept / shard.log.name)
            if (shard.folder / "reports").is_dir():
                shutil.copytree(shard.folder / "reports", kept / f"{shard.name}-reports", dirs_exist_ok=True)
    return kept


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM (a cancelled CI job) ends the run as Ctrl-C does


def hear_interrupts() -> None:
    """SIGINT handled here, so every shard and what it starts gets SIGINT's default at exec: a runner
    started with SIGINT ignored (a background job of a non-interactive shell is) passed that on, and then
    neither stop_all's SIGINT nor a release test's Ctrl-C of a deploy reached anyone."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sequential", action="store_true", help="one shard at a time (a quiet machine's figures)")
    parser.add_argument("--only", action="append", default=[], metavar="SHARD", help="run this shard (repeatable)")
    args = parser.parse_args()
    shards = all_shards()
    if args.only:
        unknown = set(args.only) - {shard.name for shard in shards}
        if unknown:
            parser.error(f"no shard {', '.join(sorted(unknown))}; shards: {', '.join(s.name for s in shards)}")
        shards = [shard for shard in shards if shard.name in args.only]
    signal.signal(signal.SIGTERM, _interrupted)
    hear_interrupts()
    run_dir = Path(tempfile.mkdtemp(prefix="codex-tests-"))
    names = ", ".join(shard.name for shard in shards)
    print(f"==> pytest in shards side by side: {names} (logs and temporary files in {run_dir})", flush=True)
    began = time.monotonic()
    try:
        schedule(shards, run_dir, args.sequential)
    except KeyboardInterrupt:
        print("==> interrupted: stopping the shards (their stacks first)", flush=True)
        stop_all(shards)
        print(f"==> interrupted; logs in {run_dir}")
        return 130
    except BaseException:
        stop_all(shards)
        raise
    print(f"\n==> pytest shards, {time.monotonic() - began:.0f} s in all:")
    for shard in shards:
        print(f"    {shard.name:<10} exit {shard.code}  {shard.took:5.0f} s  {summary_line(shard)}")
    code = next((shard.code for shard in shards if shard.code), 0) or 0
    if code == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(f"==> kept {run_dir}; the failing shards' logs and reports are in {keep_for_ci(shards, run_dir)}")
    return code


if __name__ == "__main__":
    sys.exit(main())

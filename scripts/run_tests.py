"""`make test`'s pytest: the suite in shards that run side by side, each with its own log.

Most of the suite's wall-clock time is waiting: fixed-length loads, alert `for:` windows, replicas
draining during rolling deploys. The modules that start local stacks use the stacks' fixed ports
(staging :5002, production's range), so each of those shards runs in a network namespace of its own
(`unshare --net`, as root) with its own stacks and reports folders; the rest of the suite uses free
ports on the host's loopback and runs beside them, niced, so that the loads the gates judge keep their
CPU. Without network namespaces the fixed-port shards run one after another (about 30 minutes).

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
# Stack shards at once: each runs real stacks and loads whose verdicts need CPU; with five at once on 2
# cores a full gate reached 67 of its 150 RPS and FAILed (seen in a clean-clone run), with four it passes.
MAX_ISOLATED = 4
FIXED_PORT_DIRS = ("tests/releases", "tests/resilience")  # every module here must be in an isolated shard
OUTCOMES = re.compile(r"^(?:tests/\S+ )?([.FEsxX]+)\s*(?:\[\s*\d+%\])?$", re.MULTILINE)


@dataclass
class Shard:
    name: str
    paths: tuple[str, ...]
    isolated: bool = True  # fixed ports: its own network namespace
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
    """Balanced by measured wall time (6 to 16 minutes each on 2 cores, side by side); started in this
    order, MAX_ISOLATED at a time (the last starts when the first ends)."""
    return [
        Shard("promotion", ("tests/releases/test_promotion.py",)),
        Shard("gitops", ("tests/releases/test_gitops.py",)),
        Shard("integrity", ("tests/releases/test_integrity.py",)),
        Shard("stacks", ("tests/resilience/test_stacks_and_deploy.py", "tests/releases/test_evidence_gate.py")),
        Shard(
            "faults",
            (
                "tests/resilience/test_faults.py",
                "tests/resilience/test_bad_releases.py",
                "tests/resilience/test_local_env.py",
                "tests/resilience/test_local_secrets.py",
            ),
        ),
    ]


def all_shards() -> list[Shard]:
    """`rest` and the fixed-port shards; refuses a fixed-port module that no shard (or two) would run."""
    isolated = fixed_port_shards()
    listed = [path for shard in isolated for path in shard.paths]
    twice = sorted({path for path in listed if listed.count(path) > 1})
    if twice:
        sys.exit(f"error: {', '.join(twice)} is in two shards of scripts/run_tests.py")
    modules = {
        str(path.relative_to(ROOT))
        for folder in FIXED_PORT_DIRS
        for pattern in ("test_*.py", "*_test.py")
        for path in (ROOT / folder).rglob(pattern)
    }
    unassigned = sorted(modules - set(listed))
    if unassigned:
        sys.exit(f"error: {', '.join(unassigned)} may use fixed ports: add it to a shard in scripts/run_tests.py")
    return [Shard("rest", ("tests",), isolated=False, ignore=FIXED_PORT_DIRS), *isolated]


def why_no_netns() -> str | None:
    """None when a network namespace with a loopback can be made here; else why not."""
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
        if not shutil.which(tool):
            return f"`{tool}` is missing (Debian package {package})"
    probe = subprocess.run(["unshare", "--net", "--", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`unshare --net` is not permitted here (it needs root): {probe.stderr.strip()}"
    return None


def command(shard: Shard, isolate: bool) -> list[str]:
    pytest = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",  # shards side by side would overwrite each other's cache
        f"--basetemp={shard.folder / 'tmp'}",
        *shard.paths,
        *(f"--ignore={path}" for path in shard.ignore),
    ]
    if not shard.isolated:
        return ["nice", "-n", "10", *pytest]
    if isolate:
        return ["unshare", "--net", "--", "bash", "-c", 'ip link set lo up && exec "$@"', "bash", *pytest]
    return pytest


def start(shard: Shard, run_dir: Path, isolate: bool) -> None:
    shard.folder = run_dir / shard.name
    shard.folder.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if shard.isolated:  # its own local stacks and reports, whatever the checkout's .local holds
        env["CODEX_STACKS_DIR"] = str(shard.folder / "stacks")
        env["CODEX_REPORTS_DIR"] = str(shard.folder / "reports")
    shard.began = time.monotonic()
    with shard.log.open("wb") as log:
        shard.process = subprocess.Popen(
            command(shard, isolate), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
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
    for pid_file in shard.folder.rglob("supervisord.pid"):
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


def may_start(shard: Shard, running: list[Shard], isolate: bool) -> bool:
    """Whether `shard` may start beside `running`: without namespaces the fixed ports allow one stack
    shard at a time; with them, MAX_ISOLATED."""
    stacks = sum(other.isolated for other in running)
    if not shard.isolated:
        return True
    return stacks < (MAX_ISOLATED if isolate else 1)


def schedule(shards: list[Shard], run_dir: Path, sequential: bool) -> None:
    """Start what may start (all at once; fixed-port shards one at a time without namespaces), poll,
    print progress, until every shard has ended."""
    why = None if sequential else why_no_netns()
    isolate = not sequential and why is None
    if why:
        print(f"==> no network namespaces: {why}; the fixed-port shards run one after another, beside rest")
    waiting, running = list(shards), list[Shard]()
    began = last_beat = time.monotonic()
    while waiting or running:
        for shard in list(waiting):
            if sequential and running:
                break
            if not may_start(shard, running, isolate):
                continue
            waiting.remove(shard)
            start(shard, run_dir, isolate)
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

"""`make test`'s pytest: the suite in shards that run side by side, each with its own log.

Most of the suite's wall-clock time is waiting: fixed-length loads, alert `for:` windows, replicas
draining during rolling deploys. The modules that start local stacks use the stacks' fixed ports
(staging :5002, production's range), so each of those shards runs in a network namespace of its own
(`unshare --net`: root, or user namespaces) with its own stacks and reports folders; the rest of the
suite uses free ports on the host's loopback and runs beside them, niced, so that the loads the gates
judge are not starved of CPU. Without network namespaces the fixed-port shards run one after another.

Usage: scripts/run_tests.py [--sequential] [--only SHARD ...]   (plain `pytest` runs the suite in one process)
Exit status: the first failing shard's (pytest's: 1 failures, 5 no test collected, ...), else 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT = 30.0  # seconds between progress lines
FIXED_PORT_DIRS = ("tests/releases", "tests/resilience")  # every module here must be in an isolated shard


@dataclass
class Shard:
    name: str
    paths: tuple[str, ...]
    isolated: bool = True  # fixed ports: its own network namespace
    ignore: tuple[str, ...] = ()
    log: Path = Path()
    began: float = 0.0
    took: float = 0.0
    code: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def fixed_port_shards() -> list[Shard]:
    """Balanced by measured wall time (about 6 to 9 minutes each on 2 cores)."""
    return [
        Shard("promotion", ("tests/releases/test_promotion.py",)),
        Shard("gitops", ("tests/releases/test_gitops.py",)),
        Shard("stacks", ("tests/resilience/test_stacks_and_deploy.py", "tests/releases/test_evidence_gate.py")),
        Shard(
            "faults",
            (
                "tests/resilience/test_faults.py",
                "tests/resilience/test_bad_releases.py",
                "tests/resilience/test_local_env.py",
            ),
        ),
    ]


def all_shards() -> list[Shard]:
    isolated = fixed_port_shards()
    taken = {path for shard in isolated for path in shard.paths}
    unassigned = sorted(
        str(path.relative_to(ROOT))
        for folder in FIXED_PORT_DIRS
        for path in (ROOT / folder).glob("test_*.py")
        if str(path.relative_to(ROOT)) not in taken
    )
    if unassigned:
        sys.exit(f"error: {', '.join(unassigned)} may use fixed ports: add it to a shard in scripts/run_tests.py")
    rest = Shard("rest", ("tests",), isolated=False, ignore=tuple(sorted(taken)))
    return [rest, *isolated]


def netns_available() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def command(shard: Shard, run_dir: Path, isolate: bool) -> list[str]:
    pytest = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",  # shards side by side would overwrite each other's cache
        f"--basetemp={run_dir / shard.name / 'tmp'}",
        *shard.paths,
        *(f"--ignore={path}" for path in shard.ignore),
    ]
    if not shard.isolated:
        return ["nice", "-n", "10", *pytest]
    if isolate:
        return ["unshare", "--net", "--", "bash", "-c", 'ip link set lo up && exec "$@"', "bash", *pytest]
    return pytest


def start(shard: Shard, run_dir: Path, isolate: bool) -> None:
    (run_dir / shard.name).mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if shard.isolated:  # its own local stacks and reports, whatever the checkout's .local holds
        env["CODEX_STACKS_DIR"] = str(run_dir / shard.name / "stacks")
        env["CODEX_REPORTS_DIR"] = str(run_dir / shard.name / "reports")
    shard.log = run_dir / f"{shard.name}.log"
    shard.began = time.monotonic()
    with shard.log.open("wb") as log:
        shard.process = subprocess.Popen(
            command(shard, run_dir, isolate), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    print(f"==> shard {shard.name}: {' '.join(shard.paths)}", flush=True)


OUTCOMES = re.compile(r"^(?:tests/\S+ )?([.FEsxX]+)\s*(?:\[\s*\d+%\])?$", re.MULTILINE)


def progress(shard: Shard) -> str:
    """'done/collected' from pytest's progress lines (a test's letter appears when it ends)."""
    text = shard.log.read_text(errors="replace") if shard.log.exists() else ""
    collected = re.search(r"collected (\d+) items?", text)
    if not collected:
        return "collecting"
    failed = sum(line.count("F") + line.count("E") for line in OUTCOMES.findall(text))
    done = sum(len(line) for line in OUTCOMES.findall(text))
    return f"{done}/{collected.group(1)}" + (f" ({failed} failed)" if failed else "")


def finish(shard: Shard) -> None:
    shard.took = time.monotonic() - shard.began
    text = shard.log.read_text(errors="replace")
    print(f"\n{'=' * 30} shard {shard.name}: exit {shard.code} in {shard.took:.0f} s {'=' * 30}", flush=True)
    print(text, flush=True)


def summary_line(shard: Shard) -> str:
    lines = [line for line in shard.log.read_text(errors="replace").splitlines() if " in " in line and "=" in line]
    return lines[-1].strip("= ") if lines else "no summary (see its log above)"


def run(shards: list[Shard], run_dir: Path, sequential: bool) -> int:
    isolate = not sequential and netns_available()
    if not sequential and not isolate:
        print("==> no network namespaces here (unshare --net needs root or user namespaces): the fixed-port shards")
        print("    run one after another, beside the rest")
    waiting = list(shards)
    running: list[Shard] = []
    began, last_beat = time.monotonic(), time.monotonic()
    while waiting or running:
        for shard in list(waiting):
            if sequential and running:
                break
            if shard.isolated and not isolate and any(other.isolated for other in running):
                continue  # the fixed ports are taken: after the one running
            waiting.remove(shard)
            start(shard, run_dir, isolate)
            running.append(shard)
        time.sleep(1)
        for shard in list(running):
            assert shard.process is not None
            code = shard.process.poll()
            if code is not None:
                shard.code = code
                running.remove(shard)
                finish(shard)
        if running and time.monotonic() - last_beat >= HEARTBEAT:
            last_beat = time.monotonic()
            states = ", ".join(f"{shard.name} {progress(shard)}" for shard in running)
            print(f"    [{time.monotonic() - began:4.0f} s] running: {states}", flush=True)
    print(f"\n==> pytest shards, {time.monotonic() - began:.0f} s in all:")
    for shard in shards:
        print(f"    {shard.name:<10} exit {shard.code}  {shard.took:5.0f} s  {summary_line(shard)}")
    return next((shard.code for shard in shards if shard.code), 0) or 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", action="store_true", help="one shard at a time (a quiet machine's figures)")
    parser.add_argument("--only", action="append", default=[], metavar="SHARD", help="run this shard (repeatable)")
    args = parser.parse_args()
    shards = all_shards()
    if args.only:
        unknown = set(args.only) - {shard.name for shard in shards}
        if unknown:
            parser.error(f"no shard {', '.join(sorted(unknown))}; shards: {', '.join(s.name for s in shards)}")
        shards = [shard for shard in shards if shard.name in args.only]
    run_dir = Path(tempfile.mkdtemp(prefix="codex-tests-"))
    names = ", ".join(shard.name for shard in shards)
    print(f"==> pytest in shards side by side: {names} (logs and temporary files in {run_dir})", flush=True)
    try:
        code = run(shards, run_dir, args.sequential)
    except KeyboardInterrupt:
        for shard in shards:
            if shard.process and shard.process.poll() is None:
                shard.process.terminate()
        raise
    if code == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(f"==> kept {run_dir} for the failing shards' files")
    return code


if __name__ == "__main__":
    sys.exit(main())

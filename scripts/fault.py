"""Held-out-style faults on the local stack, for scripts/gate-repeat.sh: `fault.py on|off NAME`.

critical-log     a CRITICAL line in app-1's server.log
redis-frozen     SIGSTOP on Redis's process tree: connections stay open, nothing answers (off: SIGCONT)
postgres-frozen  the same on PostgreSQL's
Off, the replicas restart too: the errors a fault made them log stay in this deployment's logs (the
checklist reads them) until then, and the next run must be judged on its own.
As tests/resilience/test_faults.py and test_bad_releases.py inject them; CODEX_STACKS_DIR applies.
"""

from __future__ import annotations

import sys
from datetime import datetime

import psutil

from codexops import localenv

FAULTS = ("critical-log", "redis-frozen", "postgres-frozen")


def _tree(program: str) -> list[psutil.Process]:
    root = psutil.Process(localenv.supervisor().pid(program))
    return [root, *root.children(recursive=True)]


def switch(state: str, fault: str) -> None:
    stack = localenv.local_stack()
    if fault == "critical-log" and state == "on":
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,000")
        with stack.app_log(stack.apps[0]).open("a") as log:
            log.write(f"{stamp} CRITICAL codex.server injected by scripts/fault.py: a held-out-style fault\n")
    elif fault != "critical-log":
        for process in _tree(fault.removesuffix("-frozen")):
            if state == "on":
                process.suspend()
            else:
                process.resume()
    if state == "off":
        localenv.supervisor(stack).restart(*stack.apps)  # SIGTERM, drain, exit; then a fresh process each


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("on", "off") or sys.argv[2] not in FAULTS:
        sys.exit(f"usage: fault.py on|off {'|'.join(FAULTS)}")
    switch(sys.argv[1], sys.argv[2])

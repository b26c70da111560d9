"""codexops drives a real supervisord over its socket (codexops/supervisor_rpc.py): starts and stops wait
as supervisorctl's do, but supervisord does not spin while a program drains, as it does for
`supervisorctl stop`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexops.local_errors import LocalEnvError
from codexops.supervisor_rpc import Supervisor
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
DRAIN = 3  # seconds the program takes to exit after SIGTERM, as a replica drains


def _program(name: str, autostart: bool) -> str:
    script = f"trap 'sleep {DRAIN}; exit 0' TERM; while true; do sleep 0.1; done"
    return (
        f'[program:{name}]\ncommand=bash -c "{script}"\nautostart={str(autostart).lower()}\n'
        "startsecs=1\nstopwaitsecs=30\n"
    )


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[tuple[Path, Supervisor]]:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={tmp_path}/s.sock\nchmod=0700\n\n"
        f"[supervisord]\npidfile={tmp_path}/s.pid\nlogfile={tmp_path}/s.log\nchildlogdir={tmp_path}\n\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        f"[supervisorctl]\nserverurl=unix://{tmp_path}/s.sock\n\n" + _program("slow", autostart=False)
    )
    subprocess.run([str(BIN / "supervisord"), "-c", str(conf)], check=True, timeout=30)
    # The command returns once it has forked (its socket already listens); the child writes the pid file.
    pid_file = tmp_path / "s.pid"
    wait_until(lambda: pid_file.read_text().strip().isdigit(), 30, "supervisord's pid file written")
    control = Supervisor(tmp_path / "s.sock")
    try:
        yield conf, control
    finally:
        control.shutdown()


def _runnable_seconds(pid: int) -> float:
    """Time on a CPU plus time waiting for one (/proc/PID/schedstat, ns): a spinning process is runnable
    all the time however little CPU a busy machine gives it; one that sleeps in select() is not."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return (int(on_cpu) + int(waiting)) / 1e9


def test_start_waits_until_running_and_stop_until_the_program_has_exited(
    supervisord: tuple[Path, Supervisor],
) -> None:
    _, control = supervisord
    control.start("slow")
    assert control.states()["slow"] == "RUNNING" and control.pid("slow") > 0
    control.stop("slow")  # returns only once it has drained and exited
    assert control.states()["slow"] == "STOPPED" and control.pid("slow") == 0
    control.stop("slow")  # stopping a stopped program is not an error
    assert control.pid("no-such-program") == 0


def test_supervisord_does_not_spin_while_a_program_drains(supervisord: tuple[Path, Supervisor], tmp_path: Path) -> None:
    conf, control = supervisord
    supervisord_pid = int((tmp_path / "s.pid").read_text())
    spent = {}
    for how in ("supervisorctl", "rpc"):
        control.start("slow")
        before = _runnable_seconds(supervisord_pid)
        if how == "supervisorctl":
            subprocess.run([str(BIN / "supervisorctl"), "-c", str(conf), "stop", "slow"], check=True, timeout=60)
        else:
            control.stop("slow")
        spent[how] = round(_runnable_seconds(supervisord_pid) - before, 3)
    print(f"supervisord runnable (CPU + run queue) during a {DRAIN} s drain: {spent}")
    assert spent["supervisorctl"] > DRAIN / 2, spent  # supervisorctl's wait spins supervisord: the measure sees it
    assert spent["rpc"] < DRAIN / 10, spent


def test_update_adds_changes_and_removes_programs_as_supervisorctl_does(supervisord: tuple[Path, Supervisor]) -> None:
    conf, control = supervisord
    base = conf.read_text()
    conf.write_text(base + "\n" + _program("extra", autostart=True))
    control.update("extra")
    control.start("extra")  # added and autostarted: already running, not an error
    assert control.states()["extra"] == "RUNNING"
    first = control.pid("extra")
    conf.write_text(base + "\n" + _program("extra", autostart=True).replace("stopwaitsecs=30", "stopwaitsecs=20"))
    control.update()  # changed: stopped (drained), removed, added again and autostarted
    control.start("extra")
    assert control.pid("extra") not in (0, first)
    conf.write_text(base)
    control.update("extra")  # gone from the file: stopped and removed
    assert "extra" not in control.states()


def test_a_stack_without_supervisord_says_so(tmp_path: Path) -> None:
    with pytest.raises(LocalEnvError, match="does not answer"):
        Supervisor(tmp_path / "none.sock").states()

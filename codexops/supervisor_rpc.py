"""A local stack's supervisord, driven over its XML-RPC socket with calls that return at once.

`supervisorctl start`, `stop` and `update` wait inside supervisord (a deferred call), and supervisord
serves a deferred call by polling its socket in a busy loop: a program draining for 8 s cost
supervisord 4.2 s of CPU under `supervisorctl stop`, 0.03 s here (2026-12-07). Every replica's drain at
every rolling deploy paid that, so the local stacks used a core to wait. Here the calls ask for no wait
and this process polls the program's state every POLL_SECONDS.
"""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import Faults, SupervisorTransport

from codexops.local_errors import LocalEnvError

# Waits poll from FIRST_POLL_SECONDS, half as long again each time, up to POLL_SECONDS: a replica's stop
# takes its drain (seconds), and each poll costs both processes an XML-RPC round trip (a fixed 0.1 s made
# 1,142 calls in one release-test module's commands, 2026-12-07).
FIRST_POLL_SECONDS, POLL_SECONDS = 0.05, 0.25
STOP_TIMEOUT = 120.0  # past every program's stopwaitsecs: supervisord has killed it by then
START_TIMEOUT = 60.0  # past every program's startsecs
DOWN = frozenset({"STOPPED", "EXITED", "FATAL"})  # states of a program that no longer runs


class SupervisorError(LocalEnvError):
    """supervisord did not answer, or refused a call."""


class Supervisor:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        transport = SupervisorTransport(None, None, f"unix://{socket}")
        self._rpc: Any = xmlrpc.client.ServerProxy("http://localhost", transport=transport).supervisor

    def _call(self, method: str, *args: Any, ignore: Iterable[int] = ()) -> Any:
        try:
            return getattr(self._rpc, method)(*args)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode in set(ignore):
                return None
            raise SupervisorError(f"supervisord refused {method}{args}: {fault.faultString}") from None
        except OSError as exc:
            raise SupervisorError(f"supervisord does not answer on {self.socket}: {exc}") from None

    # -- questions -----------------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        """Every program's state (RUNNING, STOPPED, ...), by name."""
        return {info["name"]: info["statename"] for info in self._call("getAllProcessInfo")}

    def pid(self, name: str) -> int:
        """The program's pid; 0 when it does not run or is not configured."""
        info = self._call("getProcessInfo", name, ignore=(Faults.BAD_NAME,))
        return int(info["pid"]) if info else 0

    # -- changes -------------------------------------------------------------------------------------
    def start(self, *names: str, timeout: float = START_TIMEOUT) -> None:
        """Spawn each program not running yet and wait, as `supervisorctl start` does, until none is still
        STARTING (RUNNING after its startsecs, or BACKOFF/EXITED/FATAL: the caller's readiness check says)."""
        for name in names:
            self._call("startProcess", name, False, ignore=(Faults.ALREADY_STARTED,))
        self._wait(names, lambda state: state != "STARTING", timeout, "still starting")

    def stop(self, *names: str, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (the program's stopsignal) each, then wait until none runs."""
        for name in names:
            self._call("stopProcess", name, False, ignore=(Faults.NOT_RUNNING, Faults.BAD_NAME))
        self._wait_down(names, timeout)

    def restart(self, *names: str) -> None:
        """What `supervisorctl restart` does: stop (each drains), then start."""
        self.stop(*names)
        self.start(*names)

    def signal(self, signal: str, *names: str) -> None:
        for name in names:
            self._call("signalProcess", name, signal, ignore=(Faults.NOT_RUNNING,))

    def update(self, *groups: str) -> None:
        """What `supervisorctl update [groups]` does: re-read the configuration, stop and remove the groups
        gone or changed, add the changed and new ones (supervisord starts those with autostart)."""
        added, changed, removed = self._call("reloadConfig")[0]
        wanted = set(groups)

        def chosen(names: list[str]) -> list[str]:
            return [n for n in names if not wanted or n in wanted]

        for group in chosen(removed) + chosen(changed):
            self._call("stopProcessGroup", group, False)
            self._wait_down((group,), STOP_TIMEOUT)
            self._call("removeProcessGroup", group)
        for group in chosen(changed) + chosen(added):
            self._call("addProcessGroup", group)

    def shutdown(self) -> None:
        self._call("shutdown", ignore=(Faults.SHUTDOWN_STATE,))

    def _wait_down(self, names: Iterable[str], timeout: float) -> None:
        self._wait(names, lambda state: state in DOWN, timeout, "still running")

    def _wait(self, names: Iterable[str], done: Callable[[str], bool], timeout: float, failure: str) -> None:
        """Poll until done(state) holds for every name (a name supervisord does not know counts as STOPPED)."""
        waiting, began, pause = set(names), time.monotonic(), FIRST_POLL_SECONDS
        while waiting:
            states = self.states()
            waiting = {n for n in waiting if not done(states.get(n, "STOPPED"))}
            if not waiting:
                return
            if time.monotonic() - began > timeout:
                raise SupervisorError(f"{', '.join(sorted(waiting))} {failure} after {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_SECONDS)

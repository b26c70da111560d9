"""A catalogue entry as a supervisord program of the local environment: its command from the entry's
template (infra/catalogue.py LocalProgram), its folder, log and stop rules."""

from __future__ import annotations

from pathlib import Path

from infra.catalogue import Entry


def supervisor_program(
    name: str,
    command: str,
    *,
    directory: Path,
    logs: Path,
    user: str | None = None,
    autostart: bool = True,
    stopsignal: str = "TERM",
    stopwaitsecs: int = 30,
    final_exit: str | None = None,
) -> str:
    lines = [
        f"[program:{name}]",
        f"command={command}",
        f"directory={directory}",
        f"autostart={'true' if autostart else 'false'}",
        # final_exit: an exit code that is not restarted (a replica's launcher refusing an edited release)
        *(["autorestart=unexpected", f"exitcodes={final_exit}"] if final_exit else ["autorestart=true"]),
        "startsecs=1",
        f"stopsignal={stopsignal}",
        f"stopwaitsecs={stopwaitsecs}",
        "stopasgroup=true",
        "killasgroup=true",
        f"stdout_logfile={logs / f'{name}.out.log'}",
        "redirect_stderr=true",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=2",
    ]
    if user:
        lines.append(f"user={user}")
    return "\n".join(lines) + "\n"


def catalogue_program(
    entry: Entry,
    *,
    binary: str,
    directory: Path,
    private: Path,
    host: str,
    port: int,
    logs: Path,
    user: str | None = None,
) -> str:
    """The entry's program: its command template filled in for this stack."""
    local = entry.local
    assert local is not None, f"{entry.name} is not run by the local environment"
    command = local.command.format(bin=binary, dir=directory, private=private, host=host, port=port)
    return supervisor_program(
        local.program or entry.name,
        command,
        directory=directory,
        logs=logs,
        user=user,
        autostart=local.autostart,
        stopsignal=local.stopsignal,
    )

"""The runbook is executable: every script, codexops command, endpoint and JSON field it names exists,
and the commands that are safe here run against a real `codexops serve`, a real PostgreSQL and a
recorded history. The scripts that start and stop the fixed-port local environment run in
tests/releases/ (under the shared lock)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from codexops import http_client
from codexops.cli import cli
from codexops.releases.history import Event
from infra.alerts import render_alert_rules
from infra.spec import load_spec
from tests.integration.test_server_process import _start
from tests.support.servers import Postgres, free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "runbooks" / "PRODUCTION_RUNBOOK.md"
SCRIPTS = ROOT / "runbooks"
BIN = Path(sys.executable).parent
REQUIRED_SCRIPTS = {
    "start-server.sh",
    "stop-servers.sh",
    "restart-server.sh",
    "deploy-staging.sh",
    "deploy-production.sh",
    "validate-deployment.sh",
    "rollback.sh",
}


def sections() -> dict[str, str]:
    text = RUNBOOK.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def blocks(section: str | None = None) -> list[str]:
    chosen = [sections()[section]] if section else list(sections().values())
    return [
        "\n".join(line.strip() for line in block.splitlines())
        for body in chosen
        for block in re.findall(r"```bash\n(.*?)```", body, re.S)
    ]


def commands(section: str | None = None) -> list[str]:
    """Every command line of the bash blocks, comments dropped; `watch -n N '...'` unwrapped."""
    found = []
    for block in blocks(section):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if not line or line.startswith("#"):
                continue
            watched = re.fullmatch(r"watch -n \d+ '(.*)'", line)
            found.append(watched.group(1) if watched else line)
    return found


def test_every_section_is_kept() -> None:
    names = list(sections())
    for section in (
        "Table of Contents",
        "System Overview",
        "Deployment Procedures",
        "Monitoring & Alerting",
        "Health Checks",
        "Memory Management",
        "Troubleshooting Guide",
        "Incident Response",
        "Rollback Procedures",
        "Performance Optimization",
        "Security Considerations",
        "Maintenance Procedures",
        "Appendix",
    ):
        assert section in names
    text = RUNBOOK.read_text()
    for gone in ("dotnet", "docker-compose.yml", "k8s/", "ASPNETCORE_", "./deploy-", "./start-server"):
        assert gone not in text, f"the runbook still names {gone!r}"


# -- scripts ---------------------------------------------------------------------------------------
def script_calls() -> list[tuple[str, list[str]]]:
    calls = []
    for command in commands():
        for match in re.finditer(r"(?:^|\s)(runbooks/[\w-]+\.sh)([^|;&]*)", command):
            calls.append((match.group(1), shlex.split(match.group(2))))
    return calls


def test_every_required_script_is_in_the_runbook_and_shellcheck_clean() -> None:
    named = {Path(script).name for script, _ in script_calls()}
    assert named >= REQUIRED_SCRIPTS
    on_disk = sorted(str(p.relative_to(ROOT)) for p in SCRIPTS.glob("*.sh"))
    result = subprocess.run(
        [str(BIN / "shellcheck"), "-x", *on_disk], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("script", "arguments"), script_calls(), ids=lambda v: str(v))
def test_script_exists_and_takes_the_arguments_the_runbook_gives(script: str, arguments: list[str]) -> None:
    path = ROOT / script
    assert path.is_file() and os.access(path, os.X_OK), f"{script} is missing or not executable"
    usage = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 0 and usage.stdout.startswith("usage:"), usage.stderr
    for argument in arguments:
        assert argument.split("=")[0] in usage.stdout, f"{script} does not take {argument}"


def test_a_script_refuses_an_unknown_argument() -> None:
    result = subprocess.run([str(SCRIPTS / "rollback.sh"), "--versoin=1"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown argument: --versoin=1" in result.stderr


# -- codexops and make ----------------------------------------------------------------------------
def codexops_calls() -> list[list[str]]:
    calls = [shlex.split(m) for c in commands() for m in re.findall(r"(?:^|[\s(])codexops\s+([^|;)`]*)", c)]
    prose = "\n".join(sections().values())
    calls += [shlex.split(m) for m in re.findall(r"`codexops ([^`]+)`", prose)]
    return calls


@pytest.mark.parametrize("words", codexops_calls(), ids=lambda v: " ".join(v))
def test_codexops_command_and_flags_exist(words: list[str]) -> None:
    command: Any = typer.main.get_command(cli)
    rest = list(words)
    while hasattr(command, "commands"):  # a group: the next word names its subcommand
        name = rest.pop(0)
        assert name in command.commands, f"codexops has no command {name!r}"
        command = command.commands[name]
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"`codexops {' '.join(words)}`: no option {word}"


def test_make_targets_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {m for text in (*commands(), *sections().values()) for m in re.findall(r"`?make (\w+)", text)}
    assert named and named <= targets, named - targets


def test_files_the_runbook_names_exist() -> None:
    text = sections()["Appendix"] + sections()["Monitoring & Alerting"]
    paths = re.findall(r"`((?:app|infra|policies|runbooks|codexops)/[\w./-]*|Pulumi\.\w+\.yaml)`", text)
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), path


def test_alert_names_are_the_generated_rules() -> None:
    rules = yaml.safe_load(render_alert_rules(load_spec("production")))
    generated = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    named = re.findall(r"# (Codex\w+)", sections()["Monitoring & Alerting"])
    assert len(named) == 10
    assert set(named) <= generated, set(named) - generated


def test_environment_block_gives_valid_production_settings(tmp_path: Path) -> None:
    block = blocks("Deployment Procedures")[0]
    assert "export CODEX_ENVIRONMENT=Production" in block
    check = f"{block}\nexec {BIN / 'python'} -c 'from app.config import Settings; print(Settings().environment)'"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "POSTGRES_PASSWORD": "pg-password",
        "REDIS_PASSWORD": "redis-password",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", check], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Production"


# -- commands run against a real process ------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    directory = tmp_path_factory.mktemp("served")
    port = free_port()
    process = _start(directory, port)
    try:
        yield port, directory
    finally:
        process.terminate()
        process.wait(timeout=30)


def curl_commands() -> list[str]:
    return sorted({c for c in commands() if c.startswith("curl")})


@pytest.mark.parametrize("command", curl_commands())
def test_curl_command_answers_and_prints_its_field(served: tuple[int, Path], command: str) -> None:
    port, directory = served
    command = command.replace("localhost:5002", f"127.0.0.1:{port}").replace("curl ", "curl -sf ", 1)
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=directory, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout.strip()
    assert output and output != "null", f"{command} printed {output!r}"


def test_every_endpoint_in_the_tables_answers(served: tuple[int, Path]) -> None:

    port, _ = served
    endpoints = set(re.findall(r"\| `(/[\w/-]+)` \|", sections()["Monitoring & Alerting"]))
    assert len(endpoints) == 4
    for endpoint in endpoints:
        assert http_client.get(f"http://127.0.0.1:{port}{endpoint}", timeout=10).status_code == 200, endpoint


def test_log_commands_find_the_log(served: tuple[int, Path]) -> None:
    _, directory = served
    log_commands = [c for c in commands() if "logs/server.log" in c and not c.startswith("tail -f")]
    assert len(log_commands) >= 3
    for command in log_commands:
        assert (directory / "logs" / "server.log").exists()
        result = subprocess.run(["bash", "-c", command], cwd=directory, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    modules = subprocess.run(
        ["bash", "-c", "grep -i module logs/server.log | tail -n 20"], cwd=directory, capture_output=True, text=True
    )
    assert "module" in modules.stdout.lower()


def test_history_commands_print_what_was_recorded(tmp_path: Path) -> None:
    from codexops.releases import history

    env = {**os.environ, "CODEX_STACKS_DIR": str(tmp_path), "GITHUB_ACTOR": "runbook-test"}
    os.environ["CODEX_STACKS_DIR"] = str(tmp_path)
    try:
        history.append(Event("deploy", "production", "1.0.0+abc", "sha256:abc", "PASS", backup="/b/1.dump"))
    finally:
        del os.environ["CODEX_STACKS_DIR"]
    ran = [c for c in commands() if c.startswith("codexops history")]
    assert ran
    for command in ran:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command.replace("codexops", str(BIN / "codexops"), 1)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "1.0.0+abc" in result.stdout or result.stdout.strip() == "/b/1.dump"
    fields_used = {f for c in ran for f in re.findall(r"\.(\w+)", c.split("|", 1)[-1]) if "|" in c}
    assert fields_used <= {f.name for f in fields(Event)}


def test_database_rollback_block_restores_the_backup(fresh_postgres: Postgres, tmp_path: Path) -> None:
    backup, restore = (c for c in commands("Rollback Procedures") if c.startswith(("pg_dump", "pg_restore")))
    env = {**os.environ, "DATABASE_URL": fresh_postgres.url}

    def run(command: str) -> str:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        return result.stdout

    run('psql -q "$DATABASE_URL" -c "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1)"')
    run(backup)
    (dump,) = tmp_path.glob("backup_*.dump")
    shutil.copy(dump, tmp_path / "backup_previous.dump")
    run('psql -q "$DATABASE_URL" -c "INSERT INTO notes VALUES (2), (3)"')
    run(restore)
    assert run('psql -tA "$DATABASE_URL" -c "SELECT count(*) FROM notes"').strip() == "1"

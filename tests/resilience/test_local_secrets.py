"""The local environment keeps its secrets from other local users (issue 19, part 5): `nobody`, the
account nginx's workers run as, reads no secret from the stack's files or from any process' command
line, cannot reach PostgreSQL's socket, cannot log in as a superuser over TCP, and cannot stop
Prometheus. Run on a real stack whose folder sits under a 0755 parent, so that nobody's scan meets real
modes (pytest's own temporary folders are root-only, which would hide a readable file)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codexops import http_client, localenv
from codexops.postgres_cluster import postgres_bin
from infra.spec import load_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.skipif(os.geteuid() != 0, reason="running a command as nobody (setpriv --reuid) needs root"),
]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# Run as nobody by the system's python (the checkout's virtualenv need not be open to nobody): every
# readable regular file under the given folders, and every process' command line and environment,
# searched for the strings read from stdin. Prints {string: [paths holding it]}.
SCAN = r"""
import json, os, sys
needles = json.load(sys.stdin)
def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""
paths = [os.path.join(d, n) for root in sys.argv[1:] for d, _, names in os.walk(root) for n in names]
paths = [p for p in paths if os.path.isfile(p) and not os.path.islink(p)]
paths += [f"/proc/{pid}/{part}" for pid in os.listdir("/proc") if pid.isdigit() for part in ("cmdline", "environ")]
found = {n: [] for n in needles}
for path in paths:
    data = read(path)
    for n in needles:
        if n.encode() in data:
            found[n].append(path)
print(json.dumps(found))
"""


def _open_folder() -> Path:
    parent = Path(tempfile.mkdtemp(prefix="codex-secrets-", dir="/tmp"))
    parent.chmod(0o755)  # what a checkout's .local/ usually is: open to every local user
    return parent


@pytest.fixture(scope="module")
def stack() -> Iterator[localenv.LocalStack]:
    parent = _open_folder()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEX_STACKS_DIR", str(parent / "stacks"))
        try:
            yield localenv.up(load_spec("staging"), print)
        finally:
            localenv.down(print, purge=True, stack="staging")
            shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def secret_values(stack: localenv.LocalStack) -> list[str]:
    values = localenv.local_secrets(stack)
    assert set(values) == set(localenv.LOCAL_SECRET_KEYS)
    return list(values.values())


def _holders(roots: list[Path], secrets: list[str]) -> list[Path]:
    """As root: every regular file under roots that holds a secret."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and any(s.encode() in path.read_bytes() for s in secrets):
                found.append(path)
    return found


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_the_stack_folder_is_open_to_other_users_so_the_scan_is_real(stack: localenv.LocalStack) -> None:
    for folder in (stack.runtime.parent.parent, stack.runtime.parent, stack.runtime):
        assert stat.S_IMODE(folder.stat().st_mode) & 0o005 == 0o005, f"{folder} is closed to other users"


def test_every_file_holding_a_secret_is_0600_in_a_0700_folder_and_none_is_a_log(
    stack: localenv.LocalStack, secret_values: list[str]
) -> None:
    holders = _holders([stack.runtime, stack.scratch], secret_values)
    assert "secrets.env" in {p.name for p in holders}  # the scan finds what it looks for
    loose = [str(p) for p in holders if not (_private(p) and _private(p.parent))]
    assert loose == [], "secrets readable beyond their owner"
    logs = [str(p) for p in holders if "logs" in p.parts or p.suffix == ".log"]
    assert logs == [], "secrets in logs"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in holders)


def test_nobody_reads_no_secret_from_files_or_command_lines(
    stack: localenv.LocalStack, secret_values: list[str]
) -> None:
    canary = f"identifier=living-codex-{stack.name}"  # in supervisord.conf, which nobody may read
    scan = subprocess.run(
        [*NOBODY, "/usr/bin/python3", "-I", "-c", SCAN, str(stack.runtime), str(stack.scratch)],
        input=json.dumps([canary, *secret_values]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(scan.stdout)
    assert found.pop(canary) == [str(stack.runtime / "supervisord.conf")]  # the scan reads what it may
    assert {path for paths in found.values() for path in paths} == set()
    assert "JWT_SECRET" not in (stack.runtime / "supervisord.conf").read_text()


def _psql(
    stack: localenv.LocalStack, host: str, role: str, *, user: list[str], password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """psql without a password file or prompt (-w), as `user`, with PGPASSWORD when a password is given."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **({"PGPASSWORD": password} if password else {})}
    connect = ["-h", host, "-p", str(stack.ports.postgres), "-U", role, "-d", "livingcodex"]
    return subprocess.run(
        [*user, postgres_bin("psql"), "-X", "-w", *connect, "-tAc", "SELECT 1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_nobody_cannot_connect_to_postgres(stack: localenv.LocalStack) -> None:
    socket_dir = str(stack.postgres_dir)
    for host, role in ((socket_dir, "postgres"), (socket_dir, "codex"), (localenv.HOST, "postgres")):
        attempt = _psql(stack, host, role, user=NOBODY)
        assert attempt.returncode != 0 and attempt.stdout == "", f"nobody connected as {role} via {host}"
    assert stat.S_IMODE(stack.postgres_dir.stat().st_mode) == 0o700  # nobody does not even reach the socket
    assert localenv.sql(stack, "SELECT 1") == "1"  # the cluster's owner still is superuser over the socket


def test_the_socket_asks_everyone_but_the_owner_for_a_password(stack: localenv.LocalStack) -> None:
    """Root passes the folder's mode, so this is pg_hba.conf alone: peer for the owner, scram otherwise."""
    socket_dir, password = str(stack.postgres_dir), localenv.local_secrets(stack)["POSTGRES_PASSWORD"]
    refused = _psql(stack, socket_dir, "codex", user=[])
    assert refused.returncode != 0 and "password" in refused.stderr, refused.stderr
    assert _psql(stack, socket_dir, "codex", user=[], password=password).stdout.strip() == "1"
    as_root = _psql(stack, socket_dir, "postgres", user=[])
    assert as_root.returncode != 0 and "Peer authentication failed" in as_root.stderr, as_root.stderr


def test_the_stack_still_serves_with_its_secrets(stack: localenv.LocalStack) -> None:
    password = localenv.local_secrets(stack)["ADMIN_PASSWORD"]
    login = httpx.post(
        f"{stack.gateway_url()}/api/auth/login", json={"username": "admin", "password": password}, timeout=10
    )
    assert login.status_code == 200, login.text


def _reloads(stack: localenv.LocalStack) -> int:
    """How often Prometheus has loaded its configuration (its log says so each time)."""
    log = stack.runtime / "logs" / "prometheus.out.log"
    return log.read_text().count("Completed loading of configuration file")


def test_prometheus_refuses_quit_and_reload_over_http_and_reloads_on_sighup(stack: localenv.LocalStack) -> None:
    for method, path in (("POST", "/-/quit"), ("PUT", "/-/quit"), ("POST", "/-/reload")):
        answer = httpx.request(method, f"{stack.prometheus_url()}{path}", timeout=5)
        assert answer.status_code in (403, 404, 405), f"{method} {path}: {answer.status_code}"
    assert http_client.get(f"{stack.prometheus_url()}/-/ready", timeout=5).status_code == 200
    before = _reloads(stack)
    localenv.up(stack.spec, print)  # a running stack's `up` re-renders and sends SIGHUP
    began = time.monotonic()
    while _reloads(stack) <= before:
        assert time.monotonic() - began < 30, "Prometheus did not reload its configuration on SIGHUP"
        time.sleep(0.2)


def test_a_scratch_folder_another_user_made_first_is_refused() -> None:
    """Its name under /tmp is predictable; nobody makes it before the stack's first `up`."""
    parent = _open_folder()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEX_STACKS_DIR", str(parent / "stacks"))
        production = localenv.local_stack("production")  # its own ports: the module's staging runs
        production.scratch.mkdir()
        os.chown(production.scratch, 65534, 65534)
        try:
            with pytest.raises(localenv.LocalEnvError, match="not this account's own folder"):
                localenv.up(production.spec, print)
            assert localenv.supervisord_pid(production) is None
        finally:
            localenv.down(print, purge=True, stack=production)
            shutil.rmtree(parent, ignore_errors=True)

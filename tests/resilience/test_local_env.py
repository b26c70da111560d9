"""`codexops up | down | status`: clear refusals, idempotence, nothing left behind."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from codexops import localenv
from codexops.cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
runner = CliRunner()


@pytest.fixture
def occupied_gateway_port() -> Iterator[int]:
    port = localenv.local_stack().ports.gateway  # :5002 without CODEX_PORT_BASE
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((localenv.HOST, port))
        sock.listen()
        yield port


def test_a_taken_port_is_a_clear_error(occupied_gateway_port: int) -> None:
    assert localenv.supervisord_pid() is None
    result = runner.invoke(cli, ["up"])
    assert result.exit_code == 2
    port = occupied_gateway_port
    assert f"{port} (nginx)" in result.output and f"lsof -i :{port}" in result.output


def test_up_is_idempotent_and_down_leaves_nothing_behind() -> None:
    first = runner.invoke(cli, ["up"])
    try:
        assert first.exit_code == 0, first.output
        assert "postgres" in first.output and "ready" in first.output
        again = runner.invoke(cli, ["up"])
        assert again.exit_code == 0 and "already running" in again.output
        status = runner.invoke(cli, ["status"])
        assert status.exit_code == 0, status.output
        assert status.output.count("RUNNING") == len(localenv.local_stack().processes)
    finally:
        stopped = runner.invoke(cli, ["down"])
    assert stopped.exit_code == 0, stopped.output
    assert localenv.supervisord_pid() is None
    assert not [p.name for p in localenv.local_stack().processes if localenv.port_taken(p.port)]
    assert runner.invoke(cli, ["status"]).exit_code == 1

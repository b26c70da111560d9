"""The local environment for the bad-release tests: started once, reconfigured per case, stopped."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexops import gate, localenv
from codexops.targets import resolve_target
from infra.spec import EnvironmentSpec, load_spec


@pytest.fixture(scope="session")
def spec() -> EnvironmentSpec:
    return load_spec("staging")


@pytest.fixture(scope="module")
def local_env(spec: EnvironmentSpec) -> Iterator[None]:
    gateway = localenv.stack_ports(spec).gateway
    if localenv.supervisord_pid(spec.stack) is None and localenv.port_taken(gateway):
        pytest.fail(f"port {gateway} is taken by something other than the local environment; stop it first")
    localenv.up(spec, print)
    try:
        yield
    finally:
        localenv.down(print, stack=spec.stack)


def run_gate(spec: EnvironmentSpec, reports: Path, shape: str = "smoke", scale: float = 0.5) -> gate.GateReport:
    """Half scale by default: a 10 s smoke (about 300 requests) shows each fault plainly. The gate judges
    `spec` itself (its load and thresholds), not the stack file it was read from: a test may change it."""
    target = dataclasses.replace(resolve_target("local", stack=spec.stack), spec=spec)
    return gate.run_gate(target, shape=shape, scale=scale, reports=reports, alert_wait=1.0)

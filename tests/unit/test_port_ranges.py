"""Every local stack's ports come from one base: CODEX_PORT_BASE, the spec's portBase, or the runbook's."""

from __future__ import annotations

import pytest

from codexops.localenv import PORT_BASE_ENV, PORT_SLOT, LocalEnvError, Ports, stack_ports
from infra.spec import available_stacks, load_spec


def _all(ports: Ports) -> set[int]:
    return {ports.gateway, ports.postgres, ports.redis, ports.prometheus, ports.alertmanager, *ports.apps}


def test_without_the_override_staging_keeps_the_runbook_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PORT_BASE_ENV, raising=False)
    assert stack_ports(load_spec("staging")) == Ports(5002, 5433, 6390, 9091, 9095, (5101, 5102), 5100)
    assert stack_ports(load_spec("production")).gateway == load_spec("production").local.portBase == 5200


def test_one_override_gives_each_stack_its_own_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORT_BASE_ENV, "21000")
    ranges = {stack: stack_ports(load_spec(stack)) for stack in available_stacks()}
    for index, stack in enumerate(available_stacks()):
        ports = ranges[stack]
        assert ports.gateway == 21000 + PORT_SLOT * index and ports.alertmanager == ports.gateway + 4
        assert all(ports.gateway <= port < ports.gateway + PORT_SLOT for port in _all(ports))
        others = set().union(*(_all(p) for name, p in ranges.items() if name != stack))
        assert not _all(ports) & others, f"{stack} meets another stack"


def test_two_overrides_a_shard_apart_never_meet(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = []
    for base in (21000, 21000 + PORT_SLOT * len(available_stacks())):
        monkeypatch.setenv(PORT_BASE_ENV, str(base))
        spans.append(set().union(*(_all(stack_ports(load_spec(s))) for s in available_stacks())))
    assert not spans[0] & spans[1]


@pytest.mark.parametrize(("base", "says"), [("65400", "leave 1024-65535"), ("80", "leave 1024-65535"), ("x", "port")])
def test_a_base_out_of_bounds_is_refused(monkeypatch: pytest.MonkeyPatch, base: str, says: str) -> None:
    monkeypatch.setenv(PORT_BASE_ENV, base)
    with pytest.raises(LocalEnvError, match=says):
        stack_ports(load_spec("staging"))


def test_a_port_base_that_meets_another_stack_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PORT_BASE_ENV, raising=False)
    staging = load_spec("staging")
    onto_production = staging.model_copy(update={"local": staging.local.model_copy(update={"portBase": 5203})})
    with pytest.raises(LocalEnvError, match="staging and production both use ports 5203"):
        stack_ports(onto_production)
    many = staging.model_copy(update={"replicas": 100})  # the runbook's apps 5101+ would reach 5200
    with pytest.raises(LocalEnvError, match="5200"):
        stack_ports(many)

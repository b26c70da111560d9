"""The programs of both committed stacks under Pulumi's mocks, evaluated once per session, and a way to
evaluate a variant of a stack file. A stack that names no image yet is declared as if a release had been
promoted (a stand-in digest): the program itself refuses it (tests/infra/test_images_hosts_and_gate_account.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.mock_runtime import Declaration, declare, with_release
from infra.spec import ROOT, load_spec

Variant = Callable[..., Declaration]


@pytest.fixture(scope="session")
def staging() -> Declaration:
    return declare(with_release(load_spec("staging")))


@pytest.fixture(scope="session")
def production() -> Declaration:
    return declare(with_release(load_spec("production")))


@pytest.fixture
def variant(tmp_path: Path) -> Variant:
    """declare() a committed stack file with lines replaced or appended (under `config:`)."""

    def make(stack: str, *replace: tuple[str, str], append: str = "", unsupplied: tuple[str, ...] = ()) -> Declaration:
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        for old, new in replace:
            assert old in text, old
            text = text.replace(old, new, 1)
        (tmp_path / "Pulumi.variant.yaml").write_text(text + append)
        return declare(with_release(load_spec("variant", tmp_path)), unsupplied=unsupplied)

    return make


def pod_spec(declaration: Declaration, type_: str, name: str) -> dict[str, Any]:
    inputs = declaration.one(type_, name).inputs
    return dict(inputs["spec"]["template"]["spec"])


def deployment(declaration: Declaration, name: str) -> dict[str, Any]:
    return dict(declaration.one("kubernetes:apps/v1:Deployment", name).inputs)


def container(declaration: Declaration, name: str) -> dict[str, Any]:
    return dict(declaration.one("docker:index/container:Container", name).inputs)


def docker_env(inputs: dict[str, Any]) -> dict[str, str]:
    return dict(str(e).partition("=")[::2] for e in inputs.get("envs", []))

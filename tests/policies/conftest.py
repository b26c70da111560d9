"""Compliant resources, taken from the real programs, for the policies to pass and be mutated."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from infra.mock_runtime import Declaration, declare, with_release
from infra.spec import load_spec
from policies.evaluate import messages, resource_args, stack_args

Props = dict[str, Any]


@pytest.fixture(scope="session")
def production() -> Declaration:
    return declare(with_release(load_spec("production")))


@pytest.fixture(scope="session")
def staging() -> Declaration:
    return declare(with_release(load_spec("staging")))


def props_of(declaration: Declaration, type_: str, name: str) -> Props:
    resource = next(r for r in declaration.custom() if r.type == type_ and r.name == name)
    return copy.deepcopy(resource.inputs)


def check(policy: Any, type_: str, props: Mapping[str, Any]) -> list[str]:
    return messages(policy, resource_args(type_, "subject", props))


def check_stack(policy: Any, resources: list[tuple[str, str, Props]]) -> list[str]:
    return messages(policy, stack_args(resources))


def mutated(props: Props, change: Callable[[Props], object]) -> Props:
    copy_ = copy.deepcopy(props)
    change(copy_)
    return copy_


def app_container(props: Props) -> Props:
    return dict(props["spec"]["template"]["spec"]["containers"][0])

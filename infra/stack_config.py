"""The spec under Pulumi: every key the engine passes (the stack file, --config, Pulumi ESC), read through
the runtime's config, so values set outside Pulumi.<stack>.yaml are honoured too."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from infra.spec import NAMESPACE, SECRET_KEYS, EnvironmentSpec, spec_from_config

ENCRYPTED = {"secure": "held-by-the-engine"}  # the value itself is read with require_secret


def _value(raw: Any) -> Any:
    """The engine passes every value as a string; objects, lists, numbers and booleans as JSON."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def stack_config() -> dict[str, Any]:
    """Every config key of the running stack with its value; secrets stand as {"secure": ...}."""
    config: dict[str, Any] = {}
    # The language host sets CONFIG from the engine; PULUMI_CONFIG is the older environment hand-off.
    every = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    for key, raw in every.items():
        namespace, _, name = key.partition(":")
        secret_setting = name in SECRET_KEYS or namespace != NAMESPACE  # e.g. kubernetes:kubeconfig
        if secret_setting and runtime_config.is_config_secret(key):
            config[key] = ENCRYPTED
        else:
            config[key] = _value(raw)
    return config


def spec_from_pulumi() -> EnvironmentSpec:
    return spec_from_config(pulumi.get_stack(), stack_config(), f"stack {pulumi.get_stack()} (pulumi config)")
